//! Ledger benchmark: append throughput in batches of 500 and verify time over the chain.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p ledger --bench append`
//! Creates its own database `ledger_bench_<pid>` on that server and drops it afterwards.
//! `LEDGER_BENCH_EVENTS` sets the chain length (default 1,000,000).
//! `LEDGER_BENCH_PROPOSED_CHECKS=1` swaps the schema's `~ '^[0-9a-f]{64}$'` hash CHECKs for
//! the equivalent `octet_length(x) = 64 AND x ~ '^[0-9a-f]+$'` in the bench database only,
//! to measure that proposed schema change (the bounded-repeat regex dominates insert cost).

use std::time::{Duration, Instant};

use ledger::{EventType, NewEvent, Subject, TerminalOutcome};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const BATCH: usize = 500;

// One thread: the client is a single sequential writer, cross-thread wakeups only add latency.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let total: usize = match std::env::var("LEDGER_BENCH_EVENTS") {
        Ok(v) => v.parse()?,
        Err(_) => 1_000_000,
    };
    let db = format!("ledger_bench_{}", std::process::id());
    let mut admin = PgConnection::connect(&admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut admin)
        .await?;

    // Same server and options, other database: swap the path, keep any `?query`.
    let (no_query, query) = match admin_url.split_once('?') {
        Some((u, q)) => (u, format!("?{q}")),
        None => (admin_url.as_str(), String::new()),
    };
    let bench_url = match no_query.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}{query}"),
        None => return Err("DATABASE_URL has no database path".into()),
    };
    let outcome = run(&bench_url, total).await;

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    outcome
}

async fn run(url: &str, total: usize) -> Result<(), BoxError> {
    let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
    sqlx::migrate!("../../migrations/postgres")
        .run(&pool)
        .await?;
    if std::env::var("LEDGER_BENCH_PROPOSED_CHECKS").is_ok_and(|v| v == "1") {
        sqlx::query(
            "ALTER TABLE ledger_events \
               DROP CONSTRAINT ledger_events_hash_check, \
               DROP CONSTRAINT ledger_events_prev_hash_check, \
               ADD CONSTRAINT ledger_events_hash_check \
                   CHECK (octet_length(hash) = 64 AND hash ~ '^[0-9a-f]+$'), \
               ADD CONSTRAINT ledger_events_prev_hash_check \
                   CHECK (octet_length(prev_hash) = 64 AND prev_hash ~ '^[0-9a-f]+$')",
        )
        .execute(&pool)
        .await?;
        println!("schema: proposed hash CHECKs (octet_length + unbounded regex)");
    } else {
        println!("schema: migrations as committed");
    }
    let mailbox_id: i64 = sqlx::query_scalar(
        "INSERT INTO mailboxes (org_id, provider_email) VALUES ('bench', 'bench@example.com') RETURNING id",
    )
    .fetch_one(&pool)
    .await?;
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO sync_runs (mailbox_id, kind) VALUES ($1, 'backfill') RETURNING id",
    )
    .bind(mailbox_id)
    .fetch_one(&pool)
    .await?;

    let (appended, elapsed) = append_all(&pool, mailbox_id, run_id, total).await?;
    println!(
        "append: {appended} events in batches of {BATCH}, one transaction per batch: {:.2} s, {:.0} events/s",
        elapsed.as_secs_f64(),
        appended as f64 / elapsed.as_secs_f64()
    );

    let mut tx = pool.begin().await?;
    let end = ledger::append_terminal(
        &mut tx,
        mailbox_id,
        run_id,
        NewEvent::new(EventType::SyncCompleted, Subject::Run(run_id), json!({})),
    )
    .await?;
    if !matches!(end, TerminalOutcome::Recorded { .. }) {
        return Err("terminal event not recorded".into());
    }
    sqlx::query("UPDATE sync_runs SET status = 'completed', finished_at = now() WHERE id = $1")
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let report = ledger::verify(&mut conn, mailbox_id).await?;
    let took = started.elapsed();
    println!(
        "verify: {} events in {:.2} s ({:.0} events/s), ok = {}",
        report.events,
        took.as_secs_f64(),
        report.events as f64 / took.as_secs_f64(),
        report.is_ok()
    );
    if !report.is_ok() {
        return Err(format!("chain did not verify: {:?}", report.first_fault).into());
    }
    Ok(())
}

/// Append `total` message.ingested events, `BATCH` per transaction; time only the appends.
async fn append_all(
    pool: &PgPool,
    mailbox_id: i64,
    run_id: i64,
    total: usize,
) -> Result<(usize, Duration), BoxError> {
    // One connection for the whole load, as an ingest worker holds one.
    let mut conn = pool.acquire().await?;
    let mut appended = 0;
    let mut elapsed = Duration::ZERO;
    while appended < total {
        let n = BATCH.min(total - appended);
        let events: Vec<NewEvent> = (appended..appended + n)
            .map(|i| {
                NewEvent::new(
                    EventType::MessageIngested,
                    Subject::Message(format!("{:016x}", i as u64 * 0x9E37_79B9)),
                    json!({
                        "thread_id": format!("{:016x}", i / 3),
                        "size": 1000 + i % 50_000,
                        "labels": ["INBOX", "CATEGORY_UPDATES"],
                        "raw_sha256": format!("{:064x}", i),
                        "internal_date_ms": 1_763_000_000_000_i64 + i as i64,
                    }),
                )
            })
            .collect();
        let started = Instant::now();
        let mut tx = conn.begin().await?;
        ledger::append(&mut tx, mailbox_id, run_id, &events).await?;
        tx.commit().await?;
        elapsed += started.elapsed();
        appended += n;
    }
    Ok((appended, elapsed))
}
