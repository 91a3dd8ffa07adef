//! Incremental sync benchmark (not a timed test): run with
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p ingest --bench sync`.
//!
//! 1. After a backfill, 500 new messages arrive: the sync's quota units must be
//!    exactly history.list × pages + messages.get × 500 at the quota table's costs (no
//!    re-listing of the window).
//! 2. 100 mailboxes with 10 new messages each, synced 8 at a time through the
//!    same engine call the worker makes: mailboxes/s and messages/s.

use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, stream};
use gmail::{AuthSpec, ClientConfig, GmailClient, QuotaConfig};
use gmail_emulator::{Emulator, EmulatorConfig};
use ingest::engine::{
    BackfillRequest, Engine, EngineOptions, MailboxRef, Progress, SyncRequest, Window,
};
use ingest::repo::{PgRepository, Repository};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

fn raw(n: usize, mailbox: &str) -> Vec<u8> {
    format!(
        "From: Bench <bench{n}@example.org>\r\nTo: {mailbox}\r\nSubject: bench {n}\r\n\
         Message-ID: <bench-{n}-{mailbox}>\r\nDate: {}\r\nContent-Type: text/plain\r\n\r\n{}\r\n",
        chrono::Utc::now().to_rfc2822(),
        "lorem ipsum dolor sit amet ".repeat(40)
    )
    .into_bytes()
}

async fn engine(db_url: &str, emulator: &Emulator, store: &std::path::Path) -> Engine {
    let pool = PgPoolOptions::new()
        .max_connections(24)
        .connect(db_url)
        .await
        .expect("db");
    let repo = PgRepository::new(pool);
    repo.migrate().await.expect("migrate");
    let mut config = ClientConfig::new(AuthSpec::None).with_endpoint(emulator.url());
    config.quota = QuotaConfig::per_second(1_000_000.0);
    Engine {
        repo: Arc::new(repo),
        gmail: GmailClient::new(config).await.expect("client"),
        store: store::BlobStore::from_url(&store.to_string_lossy(), "bench")
            .await
            .expect("store"),
        org: "bench".into(),
        options: EngineOptions::default(),
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("mi_bench_sync_{}", std::process::id());
    let admin_pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
        .expect("admin");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&admin_pool)
        .await
        .expect("create db");
    let db_url = format!(
        "{}/{db}",
        admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin)
    );
    let store_dir = tempfile::tempdir().expect("tmp");

    // 1. One mailbox, 500 new messages.
    let mailbox = "bench@example.com".to_string();
    let emulator = Emulator::start(EmulatorConfig {
        seed: 1,
        messages: 200,
        days: 6,
        mailboxes: vec![mailbox.clone()],
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let e = engine(&db_url, &emulator, store_dir.path()).await;
    let progress = Progress::default();
    let window = Window::last_days(7, chrono::Utc::now()).expect("window");
    e.backfill(
        BackfillRequest {
            mailbox: MailboxRef::address(&mailbox),
            window,
            include_spam_trash: false,
        },
        CancellationToken::new(),
        &progress,
    )
    .await
    .expect("backfill");
    for i in 0..500 {
        emulator
            .insert_raw(&mailbox, &raw(i, &mailbox), &["INBOX"], None)
            .expect("insert");
    }
    let started = Instant::now();
    let run = e
        .sync(
            SyncRequest {
                mailbox: MailboxRef::address(&mailbox),
                fallback_days: 7,
            },
            CancellationToken::new(),
            &progress,
        )
        .await
        .expect("sync");
    let wall = started.elapsed();
    let pages = run.tally.history_pages;
    let units = run.api.total.quota_units;
    let table = gmail::QuotaTable::default();
    let (history, get) = (
        u64::from(table.cost(gmail::Method::HistoryList)),
        u64::from(table.cost(gmail::Method::MessagesGet)),
    );
    println!(
        "sync of 500 new messages ({table} quota table): inserted {} | history pages {pages} | quota units {units} (expected {history}×{pages} + {get}×500 = {}) | {:.2}s wall, {:.0} msg/s",
        run.tally.messages.inserted,
        history * pages + get * 500,
        wall.as_secs_f64(),
        500.0 / wall.as_secs_f64()
    );
    emulator.shutdown().await;

    // 2. 100 mailboxes × 10 new messages, 8 syncs at a time.
    let mailboxes: Vec<String> = (0..100).map(|i| format!("m{i}@example.com")).collect();
    let emulator = Emulator::start(EmulatorConfig {
        seed: 2,
        messages: 0,
        days: 6,
        mailboxes: mailboxes.clone(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let e = Arc::new(engine(&db_url, &emulator, store_dir.path()).await);
    // First sync of each: no cursor, an (empty) window backfill sets one.
    for m in &mailboxes {
        e.sync(
            SyncRequest {
                mailbox: MailboxRef::address(m),
                fallback_days: 7,
            },
            CancellationToken::new(),
            &progress,
        )
        .await
        .expect("initial sync");
    }
    for (k, m) in mailboxes.iter().enumerate() {
        for i in 0..10 {
            emulator
                .insert_raw(m, &raw(k * 100 + i, m), &["INBOX"], None)
                .expect("insert");
        }
    }
    let started = Instant::now();
    let inserted: u64 = stream::iter(mailboxes.clone())
        .map(|m| {
            let e = e.clone();
            async move {
                let p = Progress::default();
                e.sync(
                    SyncRequest {
                        mailbox: MailboxRef::address(&m),
                        fallback_days: 7,
                    },
                    CancellationToken::new(),
                    &p,
                )
                .await
                .expect("sync")
                .tally
                .messages
                .inserted
            }
        })
        .buffer_unordered(8)
        .fold(0, |a, b| async move { a + b })
        .await;
    let wall = started.elapsed().as_secs_f64();
    println!(
        "worker path, 100 mailboxes × 10 new messages, concurrency 8: inserted {inserted} in {wall:.2}s → {:.1} mailboxes/s, {:.0} msg/s",
        100.0 / wall,
        inserted as f64 / wall
    );
    emulator.shutdown().await;
    drop(e);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
    )))
    .execute(&admin_pool)
    .await;
}
