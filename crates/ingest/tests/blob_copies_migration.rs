//! The migration that made a blob's state each org's own
//! (`20261208000010_blob_copies.sql`, issue 26) on a database holding mail of
//! two orgs, on both backends: every existing blob goes to the orgs whose
//! rows reference it, with the state it had; one no row references goes to
//! every org (so no org's gc removes it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ingest::repo::DatabaseTarget;
use sha2::{Digest, Sha384};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgPool, SqliteConnection};

const BLOB_COPIES: i64 = 20261208000010;

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
const D: &str = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

/// Two orgs' mail: A held by both, B by org b alone, C (purged) by org a
/// alone, D by no row.
fn mail() -> String {
    format!(
        "INSERT INTO mailboxes (org_id, provider_email) VALUES ('a', 'ann@example.com');
         INSERT INTO mailboxes (org_id, provider_email) VALUES ('b', 'bob@example.com');
         INSERT INTO blobs (sha256, size, storage_key) VALUES
             ('{A}', 1, 'k/{A}'), ('{B}', 1, 'k/{B}'), ('{C}', 1, 'k/{C}'), ('{D}', 1, 'k/{D}');
         UPDATE blobs SET state = 'purged', purged_at = '2026-12-01T00:00:00.000+00:00'
             WHERE sha256 = '{C}';
         INSERT INTO mail_threads (mailbox_id, provider_thread_id) VALUES (1, 't1'), (2, 't2');
         INSERT INTO mail_messages
             (mailbox_id, thread_id, provider_message_id, provider_thread_id, internal_date, raw_sha256, raw_size)
         VALUES
             (1, (SELECT id FROM mail_threads WHERE provider_thread_id = 't1'), 'm1', 't1', '2026-12-01T00:00:00.000+00:00', '{A}', 1),
             (2, (SELECT id FROM mail_threads WHERE provider_thread_id = 't2'), 'm2', 't2', '2026-12-01T00:00:00.000+00:00', '{A}', 1),
             (2, (SELECT id FROM mail_threads WHERE provider_thread_id = 't2'), 'm3', 't2', '2026-12-01T00:00:00.000+00:00', '{B}', 1),
             (1, (SELECT id FROM mail_threads WHERE provider_thread_id = 't1'), 'm4', 't1', '2026-12-01T00:00:00.000+00:00', '{C}', 1);"
    )
}

fn want() -> Vec<(String, String, String)> {
    [
        ("a", A, "present"),
        ("a", C, "purged"),
        ("a", D, "present"),
        ("b", A, "present"),
        ("b", B, "present"),
        ("b", D, "present"),
    ]
    .into_iter()
    .map(|(o, s, st)| (o.to_owned(), s.to_owned(), st.to_owned()))
    .collect()
}

const COPIES: &str = "SELECT org_id, sha256, state FROM blob_copies ORDER BY org_id, sha256";

/// The backend's migration files before `BLOB_COPIES`, in order, with
/// (version, description, text).
fn earlier(backend: &str) -> Vec<(i64, String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(backend);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|file| {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let (version, rest) = name.split_once('_').unwrap();
            let version: i64 = version.parse().unwrap();
            (version < BLOB_COPIES).then(|| {
                (
                    version,
                    rest.trim_end_matches(".sql").replace('_', " "),
                    std::fs::read_to_string(&file).unwrap(),
                )
            })
        })
        .collect()
}

#[sqlx::test(migrations = false)]
async fn postgres_blobs_go_to_the_orgs_that_reference_them(pool: PgPool) {
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
    .execute(&pool)
    .await
    .unwrap();
    for (version, description, text) in earlier("postgres") {
        sqlx::raw_sql(sqlx::AssertSqlSafe(text.clone()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ($1, $2, TRUE, $3, 1000)",
        )
        .bind(version)
        .bind(description)
        .bind(Sha384::digest(text.as_bytes()).to_vec())
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(mail()))
        .execute(&pool)
        .await
        .unwrap();

    ingest::schema::migrate(&pool).await.expect("migrate");
    let copies: Vec<(String, String, String)> =
        sqlx::query_as(COPIES).fetch_all(&pool).await.unwrap();
    assert_eq!(copies, want());
    let purged_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT purged_at FROM blob_copies WHERE org_id = 'a' AND sha256 = $1")
            .bind(C)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(purged_at.is_some());
    let state_left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns
         WHERE table_name = 'blobs' AND column_name IN ('state', 'purged_at')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(state_left, 0, "the state moved off the catalogue");
}

#[tokio::test]
async fn sqlite_blobs_go_to_the_orgs_that_reference_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailingest.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    let connect = || SqliteConnection::connect_with(&options);
    let mut conn = connect().await.unwrap();
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
    for (version, description, text) in earlier("sqlite") {
        sqlx::raw_sql(sqlx::AssertSqlSafe(text.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"));
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
    sqlx::raw_sql(sqlx::AssertSqlSafe(mail()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    DatabaseTarget::parse(&format!("sqlite:{}", path.display()))
        .unwrap()
        .open(2)
        .await
        .expect("open and migrate");
    let mut conn = connect().await.unwrap();
    let copies: Vec<(String, String, String)> =
        sqlx::query_as(COPIES).fetch_all(&mut conn).await.unwrap();
    assert_eq!(copies, want());
    let purged_at: Option<String> =
        sqlx::query_scalar("SELECT purged_at FROM blob_copies WHERE org_id = 'a' AND sha256 = ?")
            .bind(C)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(purged_at.is_some());
    conn.close().await.unwrap();
}
