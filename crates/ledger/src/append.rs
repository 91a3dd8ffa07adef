//! Appending events to a mailbox's chain, inside the caller's transaction.
//!
//! Per call: take the chain lock (see `lock`), read the head and the database clock in one
//! statement, hash the batch in Rust, insert it with one `INSERT … SELECT FROM UNNEST(…)`.
//! Three round trips however large the batch. Everything that can be checked without the
//! database is checked first, so a bad event never aborts the caller's transaction.
//!
//! The transaction must have been begun through sqlx (`pool.begin()`, `conn.begin()`): sqlx's
//! bookkeeping is how `append` knows it is inside one (a `BEGIN` sent as plain SQL is not
//! seen, and the call is refused with `NotInTransaction` rather than run unserialised).
//!
//! The caller's transaction must be READ COMMITTED (Postgres' default): each statement then
//! sees the chain as left by the previous lock holder. Under REPEATABLE READ the snapshot can
//! predate the lock; the primary key still refuses a fork, reported as `ChainConflict`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Connection, PgConnection, Row};
use tracing::instrument;

use crate::canonical::canonical_json;
use crate::error::LedgerError;
use crate::event::{EventType, NewEvent};
use crate::hash::{GENESIS_HASH, HashInput, decode_hash, event_hash_bytes, truncate_to_micros};
use crate::lock::lock_chain;
use crate::read::ChainHead;

/// What `append` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// Events written (the batch length).
    pub count: usize,
    /// Seq of the first event written; `None` for an empty batch.
    pub first_seq: Option<i64>,
    /// The chain head after the append; `None` for an empty batch (nothing was read).
    pub head: Option<ChainHead>,
}

/// What `append_terminal` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TerminalOutcome {
    /// The run's terminal event is now at `seq`.
    Recorded { seq: i64 },
    /// The run already had a terminal event; nothing was written and the chain is unchanged.
    AlreadyRecorded,
}

/// An event validated and rendered, ready to hash.
pub(crate) struct Prepared {
    pub(crate) event_type: EventType,
    pub(crate) subject_key: String,
    pub(crate) payload: String,
}

pub(crate) fn prepare(index: usize, event: &NewEvent) -> Result<Prepared, LedgerError> {
    // Only keys that parse back to their subject are stored (this also keeps out U+0000,
    // which Postgres text cannot store).
    event
        .subject
        .validate()
        .map_err(|e| LedgerError::InvalidEvent {
            index,
            reason: e.to_string(),
        })?;
    let payload = canonical_json(&event.payload).map_err(|p| LedgerError::InvalidEvent {
        index,
        reason: p.to_string(),
    })?;
    Ok(Prepared {
        event_type: event.event_type,
        subject_key: event.subject.to_string(),
        payload,
    })
}

/// A batch of non-terminal events, validated and rendered: terminal events
/// go through `append_terminal`, which makes a second one a no-op.
pub(crate) fn prepare_batch(events: &[NewEvent]) -> Result<Vec<Prepared>, LedgerError> {
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            if event.event_type.is_terminal() {
                return Err(LedgerError::TerminalInBatch {
                    index,
                    event_type: event.event_type.as_str(),
                });
            }
            prepare(index, event)
        })
        .collect()
}

/// Where the next event goes: its seq, its prev_hash, and the timestamp to stamp it with.
pub(crate) struct Start {
    pub(crate) next_seq: i64,
    pub(crate) prev_hash: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) created_at_micros: i64,
}

impl Start {
    /// The head's hash as bytes; the schema's CHECK makes a failure here a corrupt row.
    pub(crate) fn prev_bytes(&self) -> Result<[u8; 32], LedgerError> {
        decode_hash(&self.prev_hash).map_err(|_| LedgerError::MalformedRow {
            seq: self.next_seq - 1,
            reason: "stored hash is not 64 lowercase hex digits".into(),
        })
    }
}

/// Read the chain head and the clock (after the lock is held) and check the run belongs to
/// the mailbox. The database clock, not the host's, so every worker stamps the same timeline.
#[instrument(skip_all)]
async fn read_start(
    conn: &mut PgConnection,
    mailbox_id: i64,
    run_id: i64,
) -> Result<Start, LedgerError> {
    let row = sqlx::query(
        "SELECT r.mailbox_id, h.seq, h.hash, clock_timestamp() \
         FROM (SELECT 1) AS one \
         LEFT JOIN sync_runs r ON r.id = $2 \
         LEFT JOIN LATERAL (SELECT seq, hash FROM ledger_events WHERE mailbox_id = $1 \
                            ORDER BY seq DESC LIMIT 1) h ON true",
    )
    .bind(mailbox_id)
    .bind(run_id)
    .fetch_one(conn)
    .await?;
    let run_mailbox: Option<i64> = row.try_get(0)?;
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
    let head_seq: Option<i64> = row.try_get(1)?;
    let head_hash: Option<String> = row.try_get(2)?;
    let now: DateTime<Utc> = row.try_get(3)?;
    let (created_at, created_at_micros) = truncate_to_micros(now);
    Ok(Start {
        next_seq: head_seq.unwrap_or(0) + 1,
        prev_hash: head_hash.unwrap_or_else(|| GENESIS_HASH.to_owned()),
        created_at,
        created_at_micros,
    })
}

/// The rows to insert, column by column (the UNNEST arrays).
pub(crate) struct Columns {
    pub(crate) seqs: Vec<i64>,
    pub(crate) types: Vec<&'static str>,
    pub(crate) subjects: Vec<String>,
    pub(crate) payloads: Vec<String>,
    pub(crate) prev_hashes: Vec<String>,
    pub(crate) hashes: Vec<String>,
}

pub(crate) fn chain_batch(
    mailbox_id: i64,
    run_id: i64,
    start: &Start,
    batch: Vec<Prepared>,
) -> Result<Columns, LedgerError> {
    let n = batch.len();
    let mut cols = Columns {
        seqs: Vec::with_capacity(n),
        types: Vec::with_capacity(n),
        subjects: Vec::with_capacity(n),
        payloads: Vec::with_capacity(n),
        prev_hashes: Vec::with_capacity(n),
        hashes: Vec::with_capacity(n),
    };
    let mut prev = start.prev_bytes()?;
    let mut prev_hex = start.prev_hash.clone();
    for (offset, event) in batch.into_iter().enumerate() {
        let seq = start.next_seq + offset as i64;
        let input = HashInput {
            mailbox_id,
            seq,
            run_id,
            event_type: event.event_type.as_str(),
            subject_key: &event.subject_key,
            payload_canonical: &event.payload,
            created_at_micros: start.created_at_micros,
        };
        let hash = event_hash_bytes(&prev, &input);
        let hash_hex = hex::encode(hash);
        cols.seqs.push(seq);
        cols.types.push(event.event_type.as_str());
        cols.subjects.push(event.subject_key);
        cols.payloads.push(event.payload);
        cols.prev_hashes
            .push(std::mem::replace(&mut prev_hex, hash_hex.clone()));
        cols.hashes.push(hash_hex);
        prev = hash;
    }
    Ok(cols)
}

/// A primary-key clash means another writer extended the chain after this transaction's
/// snapshot: not READ COMMITTED (see module docs).
fn map_insert_error(err: sqlx::Error, mailbox_id: i64) -> LedgerError {
    if let sqlx::Error::Database(db) = &err
        && db.constraint() == Some("ledger_events_pkey")
    {
        return LedgerError::ChainConflict { mailbox_id };
    }
    LedgerError::Database(err)
}

/// Append a batch of non-terminal events for `run_id` to `mailbox_id`'s chain, inside the
/// caller's transaction (commit it to keep them, roll it back and they never existed).
///
/// Terminal events (`sync.completed`, `sync.failed`, `sync.interrupted`) are refused here:
/// use [`append_terminal`], which makes a second one a no-op instead of an error.
#[instrument(skip_all, fields(mailbox_id = mailbox_id, run_id = run_id, events = events.len()))]
pub async fn append(
    conn: &mut PgConnection,
    mailbox_id: i64,
    run_id: i64,
    events: &[NewEvent],
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

    lock_chain(conn, mailbox_id).await?;
    let start = read_start(conn, mailbox_id, run_id).await?;
    let count = batch.len();
    let cols = chain_batch(mailbox_id, run_id, &start, batch)?;
    let head = ChainHead {
        seq: cols.seqs.last().copied().unwrap_or(start.next_seq),
        hash: cols.hashes.last().cloned().unwrap_or_default(),
    };

    sqlx::query(
        "INSERT INTO ledger_events \
             (mailbox_id, seq, run_id, event_type, subject_key, payload, created_at, prev_hash, hash) \
         SELECT $1, e.seq, $2, e.event_type, e.subject_key, e.payload::jsonb, $3, e.prev_hash, e.hash \
         FROM UNNEST($4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) \
              AS e(seq, event_type, subject_key, payload, prev_hash, hash)",
    )
    .bind(mailbox_id)
    .bind(run_id)
    .bind(start.created_at)
    .bind(&cols.seqs)
    .bind(&cols.types)
    .bind(&cols.subjects)
    .bind(&cols.payloads)
    .bind(&cols.prev_hashes)
    .bind(&cols.hashes)
    .execute(&mut *conn)
    .await
    .map_err(|e| map_insert_error(e, mailbox_id))?;

    Ok(Appended {
        count,
        first_seq: Some(start.next_seq),
        head: Some(head),
    })
}

/// Append the terminal event of `run_id`. If the run already has one (of any terminal type),
/// nothing is written, the chain head does not move, the caller's transaction stays usable,
/// and the result is [`TerminalOutcome::AlreadyRecorded`].
#[instrument(skip_all, fields(mailbox_id = mailbox_id, run_id = run_id, event_type = event.event_type.as_str()))]
pub async fn append_terminal(
    conn: &mut PgConnection,
    mailbox_id: i64,
    run_id: i64,
    event: NewEvent,
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

    lock_chain(conn, mailbox_id).await?;
    let start = read_start(conn, mailbox_id, run_id).await?;
    let prev = start.prev_bytes()?;
    let hash = hex::encode(event_hash_bytes(
        &prev,
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

    // ON CONFLICT names the partial unique index (its predicate repeated, as Postgres
    // requires) so a second terminal event is skipped rather than raising a unique violation,
    // which would abort the caller's whole transaction. Any other conflict still errors.
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO ledger_events \
             (mailbox_id, seq, run_id, event_type, subject_key, payload, created_at, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9) \
         ON CONFLICT (run_id) \
             WHERE event_type IN ('sync.completed', 'sync.failed', 'sync.interrupted') \
         DO NOTHING \
         RETURNING seq",
    )
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
