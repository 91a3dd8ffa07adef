//! The change feed's reads, once for both backends: the org's mailboxes with
//! their ledger heads, a mailbox's events after a position with their
//! message's stored facts, the label names, and every consumer's position.
//! The consumer lock and the fenced acknowledgement differ per backend and
//! live in `pg/feed.rs` and `sqlite/feed.rs`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use ledger::{EventType, Subject};

use super::{Db, Dialect, IdList, on_either};
use crate::repo::{ConsumerPosition, FeedMailbox, FeedRow, RepoError};

/// The max(seq) of a mailbox is one probe of the primary key's index on both.
const HEAD: &str =
    "coalesce((SELECT max(e.seq) FROM ledger_events e WHERE e.mailbox_id = m.id), 0)";

pub(crate) async fn feed_mailboxes(db: Db<'_>, org: &str) -> Result<Vec<FeedMailbox>, RepoError> {
    let sql = format!(
        "SELECT m.id, m.provider_email, {HEAD} FROM mailboxes m WHERE m.org_id = $1 ORDER BY m.id"
    );
    let rows: Vec<(i64, String, i64)> =
        on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(org)
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("read the feed's mailboxes"))?;
    Ok(rows
        .into_iter()
        .map(|(id, email, head)| FeedMailbox { id, email, head })
        .collect())
}

type EventTuple = (i64, i64, i64, String, String, String, DateTime<Utc>, String);

pub(crate) async fn feed_events(
    db: Db<'_>,
    mailbox_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<FeedRow>, RepoError> {
    let payload = match db.dialect() {
        Dialect::Postgres => "payload::text",
        Dialect::Sqlite => "payload",
    };
    let sql = format!(
        "SELECT mailbox_id, seq, run_id, event_type, subject_key, {payload}, created_at, hash
         FROM ledger_events WHERE mailbox_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    );
    let tuples: Vec<EventTuple> =
        on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(mailbox_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("read ledger events for the feed"))?;
    let mut rows = tuples
        .into_iter()
        .map(feed_row)
        .collect::<Result<Vec<_>, _>>()?;
    add_message_facts(db, mailbox_id, &mut rows).await?;
    Ok(rows)
}

fn feed_row(
    (mailbox_id, seq, run_id, event_type, subject_key, payload, created_at, hash): EventTuple,
) -> Result<FeedRow, RepoError> {
    let event_type: EventType = event_type.parse().map_err(|_| {
        RepoError::Corrupt(format!(
            "ledger event {mailbox_id}/{seq}: unknown type {event_type:?}"
        ))
    })?;
    let payload = serde_json::from_str(&payload).map_err(|e| {
        RepoError::Corrupt(format!("ledger event {mailbox_id}/{seq}: payload: {e}"))
    })?;
    Ok(FeedRow {
        mailbox_id,
        seq,
        run_id,
        event_type,
        subject_key,
        payload,
        created_at,
        hash,
        thread_id: None,
        raw_sha256: None,
        raw_store_key: None,
        part_store_key: None,
    })
}

fn payload_str(payload: &serde_json::Value, key: &str) -> Option<String> {
    payload.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

/// Fills each event's thread, raw sha256 and store keys: two reads per
/// batch, whatever its size. The sha256 an event recorded wins over the
/// row's (the event says what was stored then).
async fn add_message_facts(
    db: Db<'_>,
    mailbox_id: i64,
    rows: &mut [FeedRow],
) -> Result<(), RepoError> {
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.subject_key.parse::<Subject>().ok())
        .filter_map(|s| s.message_id().map(str::to_owned))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT provider_message_id, provider_thread_id, raw_sha256 FROM mail_messages
         WHERE mailbox_id = $1 AND {}",
        db.dialect().in_list("provider_message_id", "$2")
    );
    let found: Vec<(String, String, String)> =
        on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(mailbox_id)
            .bind(IdList(&ids))
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("read the feed's messages"))?;
    let messages: HashMap<String, (String, String)> = found
        .into_iter()
        .map(|(id, thread, sha)| (id, (thread, sha)))
        .collect();
    for row in rows.iter_mut() {
        let Some(id) = row
            .subject_key
            .parse::<Subject>()
            .ok()
            .and_then(|s| s.message_id().map(str::to_owned))
        else {
            continue;
        };
        let stored = messages.get(&id);
        row.thread_id = payload_str(&row.payload, "thread_id").or(stored.map(|m| m.0.clone()));
        row.raw_sha256 = payload_str(&row.payload, "raw_sha256").or(stored.map(|m| m.1.clone()));
    }
    let shas: Vec<String> = rows
        .iter()
        .flat_map(|r| [r.raw_sha256.clone(), part_sha256(r)])
        .flatten()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let sql = format!(
        "SELECT sha256, storage_key FROM blobs WHERE {}",
        db.dialect().in_list("sha256", "$1")
    );
    let keys: Vec<(String, String)> =
        on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(IdList(&shas))
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("read the feed's store keys"))?;
    let keys: HashMap<String, String> = keys.into_iter().collect();
    for row in rows.iter_mut() {
        row.raw_store_key = row.raw_sha256.as_ref().and_then(|s| keys.get(s).cloned());
        row.part_store_key = part_sha256(row).and_then(|s| keys.get(&s).cloned());
    }
    Ok(())
}

/// The blob an `attachment.saved` event recorded.
fn part_sha256(row: &FeedRow) -> Option<String> {
    (row.event_type == EventType::AttachmentSaved)
        .then(|| payload_str(&row.payload, "sha256"))
        .flatten()
}

/// The names `mailbox_labels` holds for `label_ids` (a deleted label keeps
/// its last name); an id it lacks (a label never listed) stays its own name.
/// The whole mailbox's labels are read: a few hundred rows at most, one
/// statement per batch, and no id list to bind.
pub(crate) async fn label_names(
    db: Db<'_>,
    mailbox_id: i64,
    label_ids: &[String],
) -> Result<HashMap<String, String>, RepoError> {
    let rows: Vec<(String, String)> = on_either!(db, |pool| sqlx::query_as(
        "SELECT label_id, name FROM mailbox_labels WHERE mailbox_id = $1"
    )
    .bind(mailbox_id)
    .fetch_all(pool)
    .await)
    .map_err(RepoError::db("read label names"))?;
    let mut known: HashMap<String, String> = rows.into_iter().collect();
    Ok(label_ids
        .iter()
        .map(|id| {
            let name = known.remove(id).unwrap_or_else(|| id.clone());
            (id.clone(), name)
        })
        .collect())
}

type PositionTuple = (
    String,
    String,
    String,
    i64,
    i64,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

pub(crate) async fn consumer_positions(
    db: Db<'_>,
    org: &str,
) -> Result<Vec<ConsumerPosition>, RepoError> {
    let sql = format!(
        "SELECT c.org_id, c.name, m.provider_email, coalesce(p.seq, 0), {HEAD}, p.acked_at,
                (SELECT e.created_at FROM ledger_events e
                 WHERE e.mailbox_id = m.id AND e.seq = coalesce(p.seq, 0) + 1)
         FROM feed_consumers c
         JOIN mailboxes m ON m.org_id = c.org_id
         LEFT JOIN feed_positions p ON p.consumer_id = c.id AND p.mailbox_id = m.id
         WHERE c.org_id = $1
         ORDER BY c.org_id, c.name, m.provider_email"
    );
    let rows: Vec<PositionTuple> =
        on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(org)
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("read consumer positions"))?;
    Ok(rows
        .into_iter()
        .map(
            |(org, consumer, mailbox, seq, head, acked_at, oldest_pending_at)| ConsumerPosition {
                org,
                consumer,
                mailbox,
                seq,
                head,
                acked_at,
                oldest_pending_at,
            },
        )
        .collect())
}
