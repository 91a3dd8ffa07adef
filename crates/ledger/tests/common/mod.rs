//! Fixtures shared by the ledger's database tests: mailboxes, runs, events, raw rows.
#![allow(dead_code)] // each test binary uses a different subset

use ledger::canonical::canonical_json;
use ledger::{EventType, HashInput, NewEvent, Subject, event_hash};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult = Result<(), BoxError>;

pub async fn mailbox(pool: &PgPool, email: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO mailboxes (org_id, provider_email) VALUES ('org', $1) RETURNING id",
    )
    .bind(email)
    .fetch_one(pool)
    .await
}

/// A run in status 'running' (one per mailbox at a time).
pub async fn running_run(pool: &PgPool, mailbox_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO sync_runs (mailbox_id, kind) VALUES ($1, 'backfill') RETURNING id",
    )
    .bind(mailbox_id)
    .fetch_one(pool)
    .await
}

/// Move a run to a finished status.
pub async fn finish_run(pool: &PgPool, run_id: i64, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sync_runs SET status = $2, finished_at = now() WHERE id = $1")
        .bind(run_id)
        .bind(status)
        .execute(pool)
        .await?;
    Ok(())
}

pub fn ev(event_type: EventType, subject: Subject, payload: Value) -> NewEvent {
    NewEvent::new(event_type, subject, payload)
}

pub fn message(id: &str) -> Subject {
    Subject::Message(id.to_owned())
}

/// `n` message.ingested events about messages `{prefix}-{i}`.
pub fn messages(prefix: &str, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| {
            ev(
                EventType::MessageIngested,
                Subject::Message(format!("{prefix}-{i}")),
                json!({"thread": format!("t-{prefix}"), "size": i, "labels": ["INBOX", "UNREAD"]}),
            )
        })
        .collect()
}

/// Append `events` in a transaction of their own and commit.
pub async fn append_committed(
    pool: &PgPool,
    mailbox_id: i64,
    run_id: i64,
    events: &[NewEvent],
) -> Result<ledger::Appended, BoxError> {
    let mut tx = pool.begin().await?;
    let appended = ledger::append(&mut tx, mailbox_id, run_id, events).await?;
    tx.commit().await?;
    Ok(appended)
}

/// Insert a row directly (bypassing `append`) with a correctly computed hash, as someone
/// with plain INSERT rights could. Returns its hash.
pub async fn insert_raw(
    conn: &mut PgConnection,
    mailbox_id: i64,
    seq: i64,
    run_id: i64,
    event_type: EventType,
    prev_hash: &str,
) -> Result<String, BoxError> {
    let payload = json!({"raw": true, "n": 1.25});
    let created_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&mut *conn)
        .await?;
    let canonical = canonical_json(&payload).map_err(|p| p.to_string())?;
    let hash = event_hash(
        prev_hash,
        &HashInput {
            mailbox_id,
            seq,
            run_id,
            event_type: event_type.as_str(),
            subject_key: "raw",
            payload_canonical: &canonical,
            created_at_micros: created_at.timestamp_micros(),
        },
    )
    .map_err(|_| "bad prev hash")?;
    sqlx::query(
        "INSERT INTO ledger_events \
             (mailbox_id, seq, run_id, event_type, subject_key, payload, created_at, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, 'raw', $5::jsonb, $6, $7, $8)",
    )
    .bind(mailbox_id)
    .bind(seq)
    .bind(run_id)
    .bind(event_type.as_str())
    .bind(&canonical)
    .bind(created_at)
    .bind(prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(hash)
}

/// Run `sql` (bound to `mailbox_id` and `seq`) with user triggers off, as a superuser
/// could, and require it to touch exactly one row.
pub async fn tamper(pool: &PgPool, sql: &'static str, mailbox_id: i64, seq: i64) -> TestResult {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query(sql)
        .bind(mailbox_id)
        .bind(seq)
        .execute(&mut *conn)
        .await;
    sqlx::query("SET session_replication_role = DEFAULT")
        .execute(&mut *conn)
        .await?;
    let affected = done?.rows_affected();
    if affected != 1 {
        return Err(format!("tamper changed {affected} rows").into());
    }
    Ok(())
}

pub async fn row_count(pool: &PgPool, mailbox_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM ledger_events WHERE mailbox_id = $1")
        .bind(mailbox_id)
        .fetch_one(pool)
        .await
}

/// (seq, prev_hash, hash) of every row of the chain, in seq order.
pub async fn links(
    pool: &PgPool,
    mailbox_id: i64,
) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, prev_hash, hash FROM ledger_events WHERE mailbox_id = $1 ORDER BY seq",
    )
    .bind(mailbox_id)
    .fetch_all(pool)
    .await
}
