//! Reads: a chain's head, the events of a run, and a run's counts by type.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use tracing::instrument;

use crate::error::LedgerError;
use crate::event::{Event, EventType};

/// The last event of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// The head of `mailbox_id`'s chain; `None` when it has no events yet.
#[instrument(skip_all, fields(mailbox_id = mailbox_id))]
pub async fn chain_head(
    conn: &mut PgConnection,
    mailbox_id: i64,
) -> Result<Option<ChainHead>, LedgerError> {
    let row = sqlx::query(
        "SELECT seq, hash FROM ledger_events WHERE mailbox_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(mailbox_id)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => Ok(Some(ChainHead {
            seq: row.try_get(0)?,
            hash: row.try_get(1)?,
        })),
        None => Ok(None),
    }
}

const EVENT_COLUMNS: &str =
    "mailbox_id, seq, run_id, event_type, subject_key, payload, created_at, prev_hash, hash";

/// Every event of `run_id`, in chain order.
#[instrument(skip_all, fields(run_id = run_id))]
pub async fn run_events(conn: &mut PgConnection, run_id: i64) -> Result<Vec<Event>, LedgerError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM ledger_events WHERE run_id = $1 ORDER BY seq");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(run_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(event_from_row).collect()
}

/// How many events of each type `run_id` has, keyed by the dotted type name.
#[instrument(skip_all, fields(run_id = run_id))]
pub async fn counts_by_type(
    conn: &mut PgConnection,
    run_id: i64,
) -> Result<BTreeMap<String, i64>, LedgerError> {
    let rows = sqlx::query(
        "SELECT event_type, count(*) FROM ledger_events WHERE run_id = $1 GROUP BY event_type",
    )
    .bind(run_id)
    .fetch_all(conn)
    .await?;
    let mut counts = BTreeMap::new();
    for row in rows {
        counts.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
    }
    Ok(counts)
}

fn event_from_row(row: &PgRow) -> Result<Event, LedgerError> {
    let seq: i64 = row.try_get(1)?;
    let type_text: String = row.try_get(3)?;
    let event_type: EventType = type_text.parse().map_err(|_| LedgerError::MalformedRow {
        seq,
        reason: format!("unknown event type {type_text:?}"),
    })?;
    let Json(payload): Json<serde_json::Value> = row.try_get(5)?;
    let created_at: DateTime<Utc> = row.try_get(6)?;
    Ok(Event {
        mailbox_id: row.try_get(0)?,
        seq,
        run_id: row.try_get(2)?,
        event_type,
        subject_key: row.try_get(4)?,
        payload,
        created_at,
        prev_hash: row.try_get(7)?,
        hash: row.try_get(8)?,
    })
}
