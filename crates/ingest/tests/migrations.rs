//! Migrations are immutable once on main: sqlx refuses every database that
//! applied a migration whose file has changed since. This file holds the two
//! halves of that rule: every migration file's checksum against the committed
//! list (`migrations/CHECKSUMS`), and databases created by each text an
//! edited migration once had (fixtures under `tests/fixtures/migrations/`:
//! SQLite's 20261204000001_schema.sql, PostgreSQL's
//! 20261204000001_ledger_as_of.sql) opening and upgrading to a fresh
//! database's schema.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ingest::repo::DatabaseTarget;
use sha2::{Digest, Sha384};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgPool, Row, SqliteConnection};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// sqlx's checksum of a migration: SHA-384 of the file's text.
fn checksum(text: &str) -> String {
    hex::encode(Sha384::digest(text.as_bytes()))
}

#[test]
fn no_migration_changes_after_it_is_committed() {
    let root = workspace();
    let listed = std::fs::read_to_string(root.join("migrations/CHECKSUMS")).unwrap();
    let listed: Vec<(String, String)> = listed
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (sum, path) = l.split_once("  ").expect("line: <sha384 hex>  <path>");
            (path.to_owned(), sum.to_owned())
        })
        .collect();
    let mut found = Vec::new();
    for backend in ["postgres", "sqlite"] {
        for entry in std::fs::read_dir(root.join("migrations").join(backend)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sql") {
                let name = format!(
                    "migrations/{backend}/{}",
                    path.file_name().unwrap().to_string_lossy()
                );
                found.push((name, checksum(&std::fs::read_to_string(&path).unwrap())));
            }
        }
    }
    found.sort();
    for (path, sum) in &found {
        match listed.iter().find(|(p, _)| p == path) {
            None => panic!(
                "{path} is not in migrations/CHECKSUMS: a new migration adds its line \
                 (sha384sum {path}) in the same commit"
            ),
            Some((_, want)) => assert_eq!(
                sum, want,
                "{path} changed after it was committed. sqlx refuses every database that \
                 applied it (\"previously applied but has been modified\"): put back its \
                 committed text and add a new migration with the change instead"
            ),
        }
    }
    for (path, _) in &listed {
        assert!(
            found.iter().any(|(p, _)| p == path),
            "{path} is listed in migrations/CHECKSUMS but gone: a database that applied it \
             is refused (\"previously applied but is missing\"); put it back"
        );
    }
}

/// A text 20261204000001_schema.sql had on main, and what a database it
/// created recorded.
struct Shape {
    commit: &'static str,
    fixture: &'static str,
    /// Later migrations applied beside it (quota days came after the last edit).
    with_quota_days: bool,
}

const SHAPES: &[Shape] = &[
    Shape {
        commit: "8cf8c10",
        fixture: "schema_8cf8c10.sql",
        with_quota_days: false,
    },
    Shape {
        commit: "9e9d95c",
        fixture: "schema_9e9d95c.sql",
        with_quota_days: false,
    },
    Shape {
        commit: "287ac7c",
        fixture: "schema_287ac7c.sql",
        with_quota_days: false,
    },
    Shape {
        commit: "287ac7c + quota days (db7e930)",
        fixture: "schema_287ac7c.sql",
        with_quota_days: true,
    },
];

const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const HASH1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const HASH2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const HASH3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30)),
    )
    .await
    .unwrap()
}

/// Creates the database as the release of `shape` did: its schema text, the
/// migration records sqlx wrote (real checksums), and a little mail.
async fn build(path: &Path, shape: &Shape) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations/sqlite");
    let schema = std::fs::read_to_string(fixtures.join(shape.fixture)).unwrap();
    let mut conn = raw(path).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(schema.clone()))
        .execute(&mut conn)
        .await
        .unwrap();
    // the table as sqlx 0.9 creates it
    sqlx::raw_sql(
        "CREATE TABLE _sqlx_migrations (
             version BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
             success BOOLEAN NOT NULL,
             checksum BLOB NOT NULL,
             execution_time BIGINT NOT NULL
         )",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let mut applied = vec![(20261204000001_i64, "schema", schema)];
    if shape.with_quota_days {
        let text = std::fs::read_to_string(
            workspace().join("migrations/sqlite/20261207000001_quota_days.sql"),
        )
        .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(text.clone()))
            .execute(&mut conn)
            .await
            .unwrap();
        applied.push((20261207000001, "quota days", text));
    }
    for (version, description, text) in applied {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?, ?, TRUE, ?, 1000)",
        )
        .bind(version)
        .bind(description)
        .bind(Sha384::digest(text.as_bytes()).to_vec())
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO mailboxes (id, org_id, provider_email) VALUES (1, 'org', 'a@example.com');
         INSERT INTO blobs (sha256, size, storage_key) VALUES ('{SHA}', 3, 'k/{SHA}');
         INSERT INTO sync_runs (id, mailbox_id, kind, status, finished_at)
             VALUES (1, 1, 'backfill', 'completed', '2026-12-04T10:00:00.000+00:00');
         INSERT INTO ledger_events (mailbox_id, seq, run_id, event_type, subject_key, created_at, prev_hash, hash)
             VALUES (1, 1, 1, 'sync.started', 'run:1', '2026-12-04T09:00:00.000+00:00', '{z}', '{HASH1}'),
                    (1, 2, 1, 'sync.completed', 'run:1', '2026-12-04T10:00:00.000+00:00', '{HASH1}', '{HASH2}');",
        z = "0".repeat(64)
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// The schema as SQLite holds it, less sqlx's own table.
async fn schema_of(conn: &mut SqliteConnection) -> Vec<(String, String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema
         WHERE name NOT LIKE 'sqlite_autoindex_%' AND name <> '_sqlx_migrations'
         ORDER BY type, name",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

/// What sqlx recorded, less when and how long.
async fn records_of(conn: &mut SqliteConnection) -> Vec<(i64, String, bool, Vec<u8>)> {
    sqlx::query_as(
        "SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn open(path: &Path) -> Result<(), String> {
    DatabaseTarget::parse(&format!("sqlite:{}", path.display()))
        .unwrap()
        .open(2)
        .await
        .map(drop)
        .map_err(|e| format!("{e:#} ({e:?})"))
}

#[tokio::test]
async fn every_released_sqlite_schema_upgrades_to_a_fresh_databases_schema() {
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = fresh_dir.path().join("mailingest.db");
    open(&fresh).await.expect("fresh database");
    let mut conn = raw(&fresh).await;
    let want_schema = schema_of(&mut conn).await;
    let want_records = records_of(&mut conn).await;
    conn.close().await.unwrap();

    for shape in SHAPES {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailingest.db");
        build(&path, shape).await;
        // a connection that read the old schema before the upgrade
        let mut before = raw(&path).await;
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_runs")
            .fetch_one(&mut before)
            .await
            .unwrap();

        open(&path)
            .await
            .unwrap_or_else(|e| panic!("{}: open and migrate: {e}", shape.commit));
        // again: nothing left to do
        open(&path).await.unwrap();

        let mut conn = raw(&path).await;
        let c = shape.commit;
        assert_eq!(schema_of(&mut conn).await, want_schema, "{c}: schema");
        assert_eq!(records_of(&mut conn).await, want_records, "{c}: records");
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(check, "ok", "{c}");
        let dangling = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert!(dangling.is_empty(), "{c}: foreign keys");

        // the data is intact
        let mailbox: String =
            sqlx::query_scalar("SELECT provider_email FROM mailboxes WHERE id = 1")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(mailbox, "a@example.com", "{c}");
        let blob = sqlx::query("SELECT size, storage_key, state, purged_at FROM blobs")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(blob.get::<i64, _>(0), 3, "{c}");
        assert_eq!(blob.get::<String, _>(1), format!("k/{SHA}"), "{c}");
        assert_eq!(blob.get::<String, _>(2), "present", "{c}");
        assert_eq!(blob.get::<Option<String>, _>(3), None, "{c}");
        // a blob no row references is every org's copy (issue 26)
        let copies: Vec<(String, String, String)> =
            sqlx::query_as("SELECT org_id, sha256, state FROM blob_copies")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            copies,
            vec![("org".into(), SHA.into(), "present".into())],
            "{c}"
        );
        let events: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT seq, event_type, hash FROM ledger_events ORDER BY seq")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            events,
            vec![
                (1, "sync.started".into(), HASH1.into()),
                (2, "sync.completed".into(), HASH2.into())
            ],
            "{c}"
        );

        // what the later texts added works, on the connection that read the
        // old schema too (the upgrade bumped the schema cookie)
        sqlx::query(
            "INSERT INTO sync_runs (id, mailbox_id, kind, lock_token)
             VALUES (2, 1, 'gc', '0123456789abcdef0123456789abcdef')",
        )
        .execute(&mut before)
        .await
        .unwrap_or_else(|e| panic!("{c}: gc run: {e}"));
        sqlx::query(
            "INSERT INTO ledger_events (mailbox_id, seq, run_id, event_type, subject_key, created_at, prev_hash, hash)
             VALUES (1, 3, 2, 'blob.removed', 'blob:x', '2026-12-05T00:00:00.000+00:00', ?, ?)",
        )
        .bind(HASH2)
        .bind(HASH3)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{c}: blob.removed: {e}"));
        sqlx::query(
            "UPDATE blobs SET state = 'purged', purged_at = '2026-12-05T00:00:00.000+00:00'",
        )
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{c}: purge: {e}"));
        // and the constraints the later texts brought hold
        for refused in [
            "UPDATE blobs SET purged_at = NULL",
            "UPDATE sync_runs SET lock_token = 'x' WHERE id = 2",
            "INSERT INTO sync_runs (mailbox_id, kind) VALUES (1, 'repair')",
        ] {
            assert!(
                sqlx::query(refused).execute(&mut conn).await.is_err(),
                "{c}: {refused} was accepted"
            );
        }
        before.close().await.unwrap();
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn an_unknown_checksum_is_refused_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailingest.db");
    build(&path, &SHAPES[0]).await;
    let mut conn = raw(&path).await;
    let unknown = vec![7_u8; 48];
    sqlx::query("UPDATE _sqlx_migrations SET checksum = ? WHERE version = 20261204000001")
        .bind(&unknown)
        .execute(&mut conn)
        .await
        .unwrap();

    let err = open(&path).await.expect_err("a modified migration");
    assert!(
        err.contains("20261204000001 was previously applied but has been modified"),
        "{err}"
    );
    let records = records_of(&mut conn).await;
    assert_eq!(records.len(), 1, "nothing recorded");
    assert_eq!(records[0].3, unknown, "the checksum is left alone");
    conn.close().await.unwrap();
}

/// Creates a PostgreSQL database as a release did: the migrations up to and
/// including `through`, 20261204000001_ledger_as_of.sql as `ledger_as_of`
/// (one of its texts), with the records sqlx wrote.
async fn build_pg(pool: &PgPool, ledger_as_of: &str, through: i64) {
    let dir = workspace().join("migrations/postgres");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    sqlx::raw_sql(
        "CREATE TABLE _sqlx_migrations (
             version BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
             success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL,
             execution_time BIGINT NOT NULL
         )",
    )
    .execute(pool)
    .await
    .unwrap();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let (version, rest) = name.split_once('_').unwrap();
        let version: i64 = version.parse().unwrap();
        // the split-out migrations did not exist when these databases were made
        if version > through || version == 20261204000002 {
            continue;
        }
        let text = if version == 20261204000001 {
            ledger_as_of.to_owned()
        } else {
            std::fs::read_to_string(&file).unwrap()
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(text.clone()))
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ($1, $2, TRUE, $3, 1000)",
        )
        .bind(version)
        .bind(rest.trim_end_matches(".sql").replace('_', " "))
        .bind(Sha384::digest(text.as_bytes()).to_vec())
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query("INSERT INTO mailboxes (org_id, provider_email) VALUES ('org', 'a@example.com')")
        .execute(pool)
        .await
        .unwrap();
}

/// Migrates through the public path and shows the database is a fresh one's:
/// the records are the tree's migrations, the function is the last edited
/// text's (now 20261204000002_ledger_as_of_replay.sql).
async fn upgrades_pg(pool: &PgPool) {
    ingest::schema::migrate(pool).await.expect("migrate");
    ingest::schema::migrate(pool).await.expect("migrate again");
    let records: Vec<(i64, String, bool, Vec<u8>)> = sqlx::query_as(
        "SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let want: Vec<(i64, String, bool, Vec<u8>)> = ingest::schema::MIGRATOR
        .iter()
        .map(|m| {
            (
                m.version,
                m.description.to_string(),
                true,
                m.checksum.to_vec(),
            )
        })
        .collect();
    assert_eq!(records, want);
    let source: String =
        sqlx::query_scalar("SELECT prosrc FROM pg_proc WHERE proname = 'mailbox_state_as_of'")
            .fetch_one(pool)
            .await
            .unwrap();
    // the function as the last edited text defined it
    assert_eq!(
        Some(source.as_str()),
        ledger_as_of("9e9d95c").split("$$").nth(1)
    );
    let mailboxes: i64 = sqlx::query_scalar("SELECT count(*) FROM mailboxes")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(mailboxes, 1);
}

/// A text 20261204000001_ledger_as_of.sql had on main.
fn ledger_as_of(commit: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "tests/fixtures/migrations/postgres/ledger_as_of_{commit}.sql"
    )))
    .unwrap()
}

/// Made at cfc4c85: ledger_as_of's first text.
#[sqlx::test(migrations = false)]
async fn pg_database_of_the_first_ledger_as_of_upgrades(pool: PgPool) {
    build_pg(&pool, &ledger_as_of("cfc4c85"), 20261204000001).await;
    upgrades_pg(&pool).await;
}

/// Made at 9e9d95c: ledger_as_of edited, before gc.
#[sqlx::test(migrations = false)]
async fn pg_database_of_the_edited_ledger_as_of_upgrades(pool: PgPool) {
    build_pg(&pool, &ledger_as_of("9e9d95c"), 20261204000001).await;
    upgrades_pg(&pool).await;
}

/// Made by today's main before this change: the edited text and every later
/// migration.
#[sqlx::test(migrations = false)]
async fn pg_database_of_the_edited_ledger_as_of_and_later_migrations_upgrades(pool: PgPool) {
    build_pg(&pool, &ledger_as_of("9e9d95c"), i64::MAX).await;
    upgrades_pg(&pool).await;
}
