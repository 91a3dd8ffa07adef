//! Issue 26, finding 5, through the binary on both backends: gc after a
//! database restore must not remove the only copy of mail written after the
//! backup. The database is snapshotted, three messages are synced, Gmail
//! deletes them and a sync records that, the snapshot is restored: their
//! objects are now unrecorded (and old), and Gmail no longer has them. gc
//! removes nothing and says why in one line (exit 1); a dry run exits 0 and
//! warns; `--accept-restored-database` is the operator's way past.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::{Backend, TestBed, admin_url, small_mailbox};
use sqlx::Connection;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

on_both_backends!(gc_after_a_database_restore_removes_nothing);

const OLD: Duration = Duration::from_secs(2 * 86400);

/// Every object file under `<root>/<org>/sha256` (the trash and the ledger
/// heads are elsewhere).
fn object_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read store dir").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn set_age(path: &Path, age: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now() - age))
        .unwrap_or_else(|e| panic!("age {}: {e}", path.display()));
}

/// The database as a backup holds it, and putting it back.
enum Snapshot {
    /// A copy of the SQLite file.
    Sqlite { file: PathBuf, copy: PathBuf },
    /// A PostgreSQL database made from the test's as a template.
    Postgres { db: String, copy: String },
}

impl Snapshot {
    async fn take(bed: &TestBed) -> Snapshot {
        match bed.backend() {
            Backend::Sqlite => {
                let file = PathBuf::from(bed.db_url.strip_prefix("sqlite:").expect("sqlite url"));
                let copy = file.with_extension("backup");
                // A consistent copy of the file, whatever its WAL still holds.
                let mut conn =
                    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&file))
                        .await
                        .expect("open the database file");
                sqlx::query("VACUUM INTO ?1")
                    .bind(copy.display().to_string())
                    .execute(&mut conn)
                    .await
                    .expect("copy the database file");
                conn.close().await.expect("close");
                Snapshot::Sqlite { file, copy }
            }
            Backend::Postgres => {
                let db = bed.db_name.clone();
                let copy = format!("{db}_backup");
                // A template may have no other session: the bed's pool reconnects later.
                admin(&[
                    &format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{db}' AND pid <> pg_backend_pid()"
                    ),
                    &format!("CREATE DATABASE {copy} TEMPLATE {db}"),
                ])
                .await;
                Snapshot::Postgres { db, copy }
            }
        }
    }

    async fn restore(&self) {
        match self {
            Snapshot::Sqlite { file, copy } => {
                for side in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{side}", file.display()));
                }
                std::fs::copy(copy, file).expect("restore the database file");
            }
            Snapshot::Postgres { db, copy } => {
                admin(&[
                    &format!("DROP DATABASE {db} WITH (FORCE)"),
                    &format!("CREATE DATABASE {db} TEMPLATE {copy}"),
                ])
                .await;
            }
        }
    }

    async fn drop_copy(&self) {
        if let Snapshot::Postgres { copy, .. } = self {
            admin(&[&format!("DROP DATABASE IF EXISTS {copy}")]).await;
        }
    }
}

async fn admin(statements: &[&str]) {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url())
        .await
        .expect("connect to the server");
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    pool.close().await;
}

fn raw_message(mailbox: &str, i: usize) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.com>\r\nTo: {mailbox}\r\n\
         Subject: written after the backup {i}\r\nMessage-ID: <after-backup-{i}@example.com>\r\n\
         Date: Mon, 07 Dec 2026 09:00:00 +0000\r\n\r\nthe only copy, {i}\r\n"
    )
    .into_bytes()
}

async fn gc_after_a_database_restore_removes_nothing(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(6)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let snapshot = Snapshot::take(&bed).await;

    // After the backup: three messages arrive and are synced...
    let ids: Vec<String> = (0..3)
        .map(|i| {
            bed.emulator
                .insert_raw(
                    &bed.mailbox,
                    &raw_message(&bed.mailbox, i),
                    &["INBOX"],
                    None,
                )
                .expect("insert")
        })
        .collect();
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["messages"]["inserted"], 3, "{run}");
    // ...then Gmail deletes them, and a sync records that.
    for id in &ids {
        bed.emulator
            .delete_message(&bed.mailbox, id)
            .expect("delete");
    }
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");

    snapshot.restore().await;
    // Two days pass: every object is older than the grace period.
    let root = bed.store_path();
    let objects = object_files(&root);
    for path in &objects {
        set_age(path, OLD);
    }

    let out = bed.run(&["gc"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the database is behind the store"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert_eq!(object_files(&root), objects, "nothing removed");

    // Also with a purge asked for, and after a sync of the restored database
    // (whose chain then goes on from the backup with other hashes).
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    let out = bed.run(&["gc", "--purge-deleted-older-than", "1d"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the database is behind the store"),
        "{stderr}"
    );
    assert_eq!(object_files(&root), objects, "nothing removed");

    // A dry run says so and lists what would go; it removes nothing.
    let out = bed.run(&["gc", "--dry-run"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the database is behind the store"),
        "{stderr}"
    );
    assert_eq!(object_files(&root), objects, "nothing removed");

    // The operator accepts the database as it is: the three objects only the
    // lost rows recorded go to the trash (gc --restore-all brings them back).
    let (code, report) = bed.run_json(&["gc", "--accept-restored-database"]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["removed"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert!(
        report["heads"]["lacking"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
    let (code, report) = bed.run_json(&["gc"]).await;
    assert_eq!(code, 0, "the heads left now match: {report}");
    bed.assert_verify_clean().await;
    snapshot.drop_copy().await;
}
