//! The ledger on SQLite, the embedded backend: the same chain, hashes, events and rules
//! as on PostgreSQL (`append`, `verify`), over a `SqliteConnection`.
//!
//! What differs is serialisation. SQLite has one writer at a time and no advisory locks:
//! the caller's transaction must hold the write lock before the head is read, which a
//! transaction begun with `BEGIN IMMEDIATE` does (the repository begins every write
//! transaction so). Two appenders can then never read the same head; the primary key
//! `(mailbox_id, seq)` still refuses a fork should one try (`ChainConflict`). The clock is
//! the host's: an embedded database has one host.
//!
//! Append-only and one terminal event per run are enforced by the schema
//! (`migrations/sqlite`): triggers that `RAISE(ABORT)` on UPDATE and DELETE, and the
//! partial unique index `ledger_events_one_terminal`.

use std::collections::BTreeMap;

use chrono::Utc;
use futures::TryStreamExt;
use sqlx::{Connection, Row, SqliteConnection};
use tracing::instrument;

use crate::append::{Appended, Start, TerminalOutcome, chain_batch, prepare, prepare_batch};
use crate::error::LedgerError;
use crate::hash::{GENESIS_HASH, HashInput, event_hash_bytes, truncate_to_micros};
use crate::read::ChainHead;
use crate::verify::{ChainReport, RunState, StoredRow, Walk};

/// The head of `mailbox_id`'s chain; `None` when it has no events yet.
pub async fn chain_head(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
) -> Result<Option<ChainHead>, LedgerError> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, hash FROM ledger_events WHERE mailbox_id = ?1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(mailbox_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(seq, hash)| ChainHead { seq, hash }))
}

/// Reads the head and checks the run belongs to the mailbox (the write lock is held).
async fn read_start(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    run_id: i64,
) -> Result<Start, LedgerError> {
    let run_mailbox: Option<i64> =
        sqlx::query_scalar("SELECT mailbox_id FROM sync_runs WHERE id = ?1")
            .bind(run_id)
            .fetch_optional(&mut *conn)
            .await?;
    match run_mailbox {
        None => return Err(LedgerError::RunNotFound { run_id }),
        Some(m) if m != mailbox_id => {
            return Err(LedgerError::RunMailboxMismatch {
                run_id,
                run_mailbox_id: m,
                mailbox_id,
            });
        }
        Some(_) => {}
    }
    let head = chain_head(conn, mailbox_id).await?;
    let (created_at, created_at_micros) = truncate_to_micros(Utc::now());
    Ok(Start {
        next_seq: head.as_ref().map_or(0, |h| h.seq) + 1,
        prev_hash: head.map_or_else(|| GENESIS_HASH.to_owned(), |h| h.hash),
        created_at,
        created_at_micros,
    })
}

/// A unique violation on insert means another writer extended the chain: the caller's
/// transaction did not hold the write lock when it read the head (see module docs).
fn map_insert_error(err: sqlx::Error, mailbox_id: i64) -> LedgerError {
    if let sqlx::Error::Database(db) = &err
        && db.is_unique_violation()
    {
        return LedgerError::ChainConflict { mailbox_id };
    }
    LedgerError::Database(err)
}

const INSERT: &str = "INSERT INTO ledger_events \
     (mailbox_id, seq, run_id, event_type, subject_key, payload, created_at, prev_hash, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Appends a batch of non-terminal events for `run_id` to `mailbox_id`'s chain inside the
/// caller's transaction; see [`crate::append()`] for the contract.
#[instrument(skip_all, fields(mailbox_id = mailbox_id, run_id = run_id, events = events.len()))]
pub async fn append(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    run_id: i64,
    events: &[crate::NewEvent],
) -> Result<Appended, LedgerError> {
    let batch = prepare_batch(events)?;
    if batch.is_empty() {
        return Ok(Appended {
            count: 0,
            first_seq: None,
            head: None,
        });
    }
    if !conn.is_in_transaction() {
        return Err(LedgerError::NotInTransaction);
    }
    let start = read_start(conn, mailbox_id, run_id).await?;
    let count = batch.len();
    let cols = chain_batch(mailbox_id, run_id, &start, batch)?;
    for i in 0..count {
        sqlx::query(INSERT)
            .bind(mailbox_id)
            .bind(cols.seqs[i])
            .bind(run_id)
            .bind(cols.types[i])
            .bind(&cols.subjects[i])
            .bind(&cols.payloads[i])
            .bind(start.created_at)
            .bind(&cols.prev_hashes[i])
            .bind(&cols.hashes[i])
            .execute(&mut *conn)
            .await
            .map_err(|e| map_insert_error(e, mailbox_id))?;
    }
    Ok(Appended {
        count,
        first_seq: Some(start.next_seq),
        head: Some(ChainHead {
            seq: start.next_seq + count as i64 - 1,
            hash: cols.hashes.last().cloned().unwrap_or_default(),
        }),
    })
}

/// Appends the terminal event of `run_id`; a second one is a no-op reported as
/// [`TerminalOutcome::AlreadyRecorded`], as on PostgreSQL.
#[instrument(skip_all, fields(mailbox_id = mailbox_id, run_id = run_id, event_type = event.event_type.as_str()))]
pub async fn append_terminal(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    run_id: i64,
    event: crate::NewEvent,
) -> Result<TerminalOutcome, LedgerError> {
    if !event.event_type.is_terminal() {
        return Err(LedgerError::NotTerminal {
            event_type: event.event_type.as_str(),
        });
    }
    let prepared = prepare(0, &event)?;
    if !conn.is_in_transaction() {
        return Err(LedgerError::NotInTransaction);
    }
    let start = read_start(conn, mailbox_id, run_id).await?;
    let hash = hex::encode(event_hash_bytes(
        &start.prev_bytes()?,
        &HashInput {
            mailbox_id,
            seq: start.next_seq,
            run_id,
            event_type: prepared.event_type.as_str(),
            subject_key: &prepared.subject_key,
            payload_canonical: &prepared.payload,
            created_at_micros: start.created_at_micros,
        },
    ));
    // The conflict target names the partial unique index, so a second terminal event is
    // skipped instead of failing the caller's transaction.
    let inserted: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "{INSERT} ON CONFLICT (run_id) \
             WHERE event_type IN ('sync.completed', 'sync.failed', 'sync.interrupted') \
         DO NOTHING RETURNING seq"
    )))
    .bind(mailbox_id)
    .bind(start.next_seq)
    .bind(run_id)
    .bind(prepared.event_type.as_str())
    .bind(&prepared.subject_key)
    .bind(&prepared.payload)
    .bind(start.created_at)
    .bind(&start.prev_hash)
    .bind(&hash)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| map_insert_error(e, mailbox_id))?;
    Ok(match inserted {
        Some(seq) => TerminalOutcome::Recorded { seq },
        None => TerminalOutcome::AlreadyRecorded,
    })
}

/// Walks `mailbox_id`'s chain and checks it; see [`crate::verify()`] for what is checked.
/// Outside a transaction the walk reads one snapshot (a deferred read transaction).
#[instrument(skip_all, fields(mailbox_id = mailbox_id))]
pub async fn verify(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
) -> Result<ChainReport, LedgerError> {
    if conn.is_in_transaction() {
        return verify_in(conn, mailbox_id).await;
    }
    let mut tx = conn.begin().await?;
    let report = verify_in(&mut tx, mailbox_id).await?;
    tx.rollback().await?;
    Ok(report)
}

async fn verify_in(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
) -> Result<ChainReport, LedgerError> {
    let mut runs = BTreeMap::new();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, status FROM sync_runs WHERE mailbox_id = ?1")
            .bind(mailbox_id)
            .fetch_all(&mut *conn)
            .await?;
    for (id, status) in rows {
        runs.insert(
            id,
            RunState {
                status,
                terminal: None,
            },
        );
    }
    let mut walk = Walk::new(mailbox_id);
    let mut rows = sqlx::query(
        "SELECT seq, run_id, event_type, subject_key, payload, created_at, prev_hash, hash \
         FROM ledger_events WHERE mailbox_id = ?1 ORDER BY seq",
    )
    .bind(mailbox_id)
    .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let stored = StoredRow {
            seq: row.try_get(0)?,
            run_id: row.try_get(1)?,
            event_type: row.try_get(2)?,
            subject_key: row.try_get(3)?,
            payload: row.try_get(4)?,
            created_at: row.try_get(5)?,
            prev_hash: row.try_get(6)?,
            hash: row.try_get(7)?,
        };
        walk.step(&stored, &mut runs);
    }
    drop(rows);
    Ok(walk.report(runs))
}
