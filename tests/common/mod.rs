//! The end-to-end test bed: a fresh database (PostgreSQL, or an SQLite file
//! for the embedded backend), a temporary store directory and an in-process
//! Gmail emulator, with the real `mailingest` binary pointed at all three.
#![allow(dead_code)]

pub mod http;
pub mod tcp_proxy;
pub mod two_orgs;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use gmail_emulator::{Emulator, EmulatorConfig};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{PgPool, SqlitePool};
use tempfile::TempDir;

/// The server every test database is created on.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/{db}")
}

/// Each case (an `async fn(Backend)`) once per backend, as `case::postgres`
/// and `case::sqlite`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$case($crate::common::Backend::Postgres).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case($crate::common::Backend::Sqlite).await
            }
        }
    )*};
}

/// Which database the binary is pointed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];
}

/// The test's own handle on the database the binary writes.
pub enum TestDb {
    Postgres(PgPool),
    /// The pool, and the directory holding the database file.
    Sqlite(SqlitePool, TempDir),
}

pub struct TestBed {
    /// The PostgreSQL database's name, or a unique name for the SQLite bed.
    pub db_name: String,
    pub db_url: String,
    pub store: TempDir,
    pub emulator: Emulator,
    pub mailbox: String,
    pub db: TestDb,
    /// Gmail's quota table the binary charges and paces by
    /// (`MAILINGEST_QUOTA_TABLE`); the emulator's is set apart (`on_table`).
    pub quota_table: gmail::QuotaTable,
}

impl TestBed {
    /// A bed on PostgreSQL.
    pub async fn new(config: EmulatorConfig) -> TestBed {
        TestBed::on(Backend::Postgres, config).await
    }

    pub async fn on(backend: Backend, config: EmulatorConfig) -> TestBed {
        let mailbox = config.mailboxes[0].clone();
        let emulator = Emulator::start(config).await.expect("start emulator");
        let store = tempfile::tempdir().expect("store dir");
        match backend {
            Backend::Postgres => {
                let (db_name, db_url, pool) = fresh_postgres().await;
                TestBed {
                    db_name,
                    db_url,
                    store,
                    emulator,
                    mailbox,
                    db: TestDb::Postgres(pool),
                    quota_table: gmail::QuotaTable::default(),
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("database dir");
                let path = dir.path().join("mailingest.db");
                // The test reads the file the binary creates and migrates.
                let pool = SqlitePool::connect_lazy_with(
                    SqliteConnectOptions::new()
                        .filename(&path)
                        .busy_timeout(Duration::from_secs(30)),
                );
                TestBed {
                    db_name: format!("mi_e2e_sqlite_{}_{}", std::process::id(), rand_suffix()),
                    db_url: format!("sqlite:{}", path.display()),
                    store,
                    emulator,
                    mailbox,
                    db: TestDb::Sqlite(pool, dir),
                    quota_table: gmail::QuotaTable::default(),
                }
            }
        }
    }

    /// A PostgreSQL bed whose binary and emulator both use Gmail's quota `table`.
    pub async fn on_table(table: gmail::QuotaTable, mut config: EmulatorConfig) -> TestBed {
        config.quota.table = table
            .name()
            .parse()
            .expect("the emulator knows every table");
        let mut bed = TestBed::new(config).await;
        bed.quota_table = table;
        bed
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            TestDb::Postgres(_) => Backend::Postgres,
            TestDb::Sqlite(..) => Backend::Sqlite,
        }
    }

    /// The PostgreSQL pool of a Postgres bed (tests of Postgres-only behaviour).
    pub fn pg(&self) -> &PgPool {
        match &self.db {
            TestDb::Postgres(pool) => pool,
            TestDb::Sqlite(..) => panic!("this test needs the PostgreSQL bed"),
        }
    }

    /// Runs a statement on either backend; returns the rows it touched.
    pub async fn execute(&self, sql: &str) -> u64 {
        let q = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.db {
            TestDb::Postgres(pool) => sqlx::query(q)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            TestDb::Sqlite(pool, _) => sqlx::query(q)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of every row of `sql` as text, on either backend.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        let q = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.db {
            TestDb::Postgres(pool) => sqlx::query_scalar(q).fetch_all(pool).await,
            TestDb::Sqlite(pool, _) => sqlx::query_scalar(q).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// provider id → label set of every live (not deleted) stored message.
    pub async fn live_labels(&self) -> BTreeMap<String, BTreeSet<String>> {
        const SQL: &str =
            "SELECT provider_message_id, label_ids FROM mail_messages WHERE deleted_at IS NULL";
        let rows: Vec<(String, Vec<String>)> = match &self.db {
            TestDb::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await.unwrap(),
            TestDb::Sqlite(pool, _) => {
                let rows: Vec<(String, String)> =
                    sqlx::query_as(SQL).fetch_all(pool).await.unwrap();
                rows.into_iter()
                    .map(|(id, labels)| (id, serde_json::from_str(&labels).expect("a JSON array")))
                    .collect()
            }
        };
        rows.into_iter()
            .map(|(id, labels)| (id, labels.into_iter().collect()))
            .collect()
    }

    /// Runs a count query on either backend; `Err` while the schema is not there yet.
    pub async fn try_count(&self, sql: &str) -> Result<i64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.db {
            TestDb::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            TestDb::Sqlite(pool, _) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
    }
}

async fn fresh_postgres() -> (String, String, PgPool) {
    let db_name = format!("mi_e2e_{}_{}", std::process::id(), rand_suffix());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url())
        .await
        .expect("connect to the test server (run scripts/test.sh)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let db_url = with_database(&admin_url(), &db_name);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&db_url)
        .await
        .expect("connect to the test database");
    (db_name, db_url, pool)
}

impl TestBed {
    pub fn store_path(&self) -> PathBuf {
        self.store.path().to_path_buf()
    }

    /// The binary with the test bed's environment.
    pub fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailingest"));
        cmd.env("DATABASE_URL", &self.db_url)
            .env("MAILINGEST_STORE", self.store.path())
            .env("GMAIL_ENDPOINT", self.emulator.url())
            .env("MAILINGEST_QUOTA_UNITS_PER_SEC", "100000")
            .env("MAILINGEST_QUOTA_TABLE", self.quota_table.name())
            .env("RUST_LOG", "warn")
            .env_remove("MAILINGEST_ORG")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .await
            .expect("run mailingest")
    }

    /// Runs with `--json` appended and parses stdout.
    pub async fn run_json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let out = self.run(&all).await;
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "mailingest {args:?} exit {code}: stdout is not JSON ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, value)
    }

    pub async fn backfill(&self, extra: &[&str]) -> (i32, serde_json::Value) {
        let mut args = vec!["backfill", "--mailbox", self.mailbox.as_str()];
        args.extend_from_slice(extra);
        self.run_json(&args).await
    }

    pub async fn sync(&self) -> (i32, serde_json::Value) {
        self.run_json(&["sync", "--mailbox", self.mailbox.as_str()])
            .await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.try_count(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `mailingest verify` must be clean.
    /// Waits until `sql` (a count) reaches `at_least`; panics after `deadline`.
    /// Errors count as zero: the schema may not exist yet while the binary migrates.
    pub async fn wait_for_count(&self, sql: &str, at_least: i64, deadline: Duration) {
        let start = std::time::Instant::now();
        while start.elapsed() < deadline {
            let n = self.try_count(sql).await.unwrap_or(0);
            if n >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {sql} >= {at_least}");
    }

    pub async fn assert_verify_clean(&self) {
        let out = self.run(&["verify", "--deep"]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "verify not clean:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Our Gmail client, pointed at the emulator.
    pub async fn gmail(&self) -> gmail::GmailClient {
        gmail::GmailClient::new(
            gmail::ClientConfig::new(gmail::AuthSpec::None).with_endpoint(self.emulator.url()),
        )
        .await
        .expect("gmail client")
    }

    /// What a default backfill stores: the ids of every message not in SPAM
    /// or TRASH, and of their threads. Resets the emulator's statistics.
    pub async fn expected_ids(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let gmail = self.gmail().await;
        let mut messages = BTreeSet::new();
        let mut threads = BTreeSet::new();
        for id in self.emulator.message_ids(&self.mailbox) {
            let m = gmail
                .message_minimal(&self.mailbox, &id)
                .await
                .expect("minimal");
            if !m.label_ids.iter().any(|l| l == "SPAM" || l == "TRASH") {
                threads.insert(m.thread_id);
                messages.insert(id);
            }
        }
        self.emulator.reset_stats();
        (messages, threads)
    }

    /// Calls of one Gmail method for the test mailbox since the last reset.
    pub fn calls(&self, method: &str) -> u64 {
        self.emulator
            .stats()
            .mailboxes
            .get(&self.mailbox)
            .and_then(|m| m.get(method))
            .map(|s| s.calls)
            .unwrap_or(0)
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        if self.backend() == Backend::Sqlite {
            return; // its directory goes with the TempDir
        }
        let name = self.db_name.clone();
        // Best effort, on its own runtime: Drop cannot be async.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async move {
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&admin_url())
                    .await
                    .ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await
                .ok()
            })
        })
        .join();
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    nanos ^ (COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 48)
}

/// A small emulator mailbox for fast tests. Its mail spans 6 days, so a
/// default 7-day backfill covers all of it however long the test takes.
pub fn small_mailbox(messages: usize) -> EmulatorConfig {
    EmulatorConfig {
        seed: 7,
        messages,
        days: 6,
        mailboxes: vec!["ann@example.com".into()],
        ..EmulatorConfig::default()
    }
}
