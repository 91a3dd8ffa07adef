//! SQLite: the upserts and the writes of a fenced transaction.
//!
//! One `INSERT … ON CONFLICT (natural key) DO UPDATE … WHERE (row differs)`
//! per row, inside the caller's `IMMEDIATE` transaction: statements are
//! prepared once per connection and run in-process, so a batch costs no round
//! trips, and SQLite's single writer means no two batches interleave. The
//! database decides insert vs update; `revision` (0 as inserted, +1 per
//! update) tells which in `RETURNING`, since SQLite has no `xmax`. A row the
//! `WHERE … IS NOT` guard left alone returns nothing and is `Unchanged`.
//!
//! Values are stored as on PostgreSQL: NUL removed from text, arrays and
//! address lists as JSON text.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::SqliteConnection;

use super::now;
use crate::domain::{
    AttachmentUpsert, BlobUpsert, LabelUpdate, MessageUpsert, Outcome, ThreadUpsert, UpsertResult,
};
use crate::repo::RepoError;
use crate::repo::batch::distinct_by_key;
use crate::repo::text::{json_without_nul, without_nul};

/// JSON text of a value, NUL-free like everything stored.
pub(super) fn json_text<T: Serialize + ?Sized>(
    operation: &'static str,
    value: &T,
) -> Result<String, RepoError> {
    let encode = |source| RepoError::Encode { operation, source };
    let text = serde_json::to_string(value).map_err(encode)?;
    if !text.contains("\\u0000") {
        return Ok(text);
    }
    let value = serde_json::to_value(value).map_err(encode)?;
    serde_json::to_string(&json_without_nul(&value)).map_err(encode)
}

fn text(value: &Option<String>) -> Option<Cow<'_, str>> {
    value.as_deref().map(without_nul)
}

/// What one row's upsert did: its `RETURNING id, revision = 0` when it wrote
/// (Inserted or Updated); when the `WHERE` guard left the row as it was,
/// Unchanged with the row's id, read by its natural key (`by_key` selects
/// `id` by `?1`, `?2`).
async fn settle(
    conn: &mut SqliteConnection,
    written: Option<(i64, bool)>,
    by_key: &'static str,
    parent: i64,
    key: &str,
    operation: &'static str,
) -> Result<UpsertResult, RepoError> {
    if let Some((id, inserted)) = written {
        let outcome = if inserted {
            Outcome::Inserted
        } else {
            Outcome::Updated
        };
        return Ok(UpsertResult { id, outcome });
    }
    let id: i64 = sqlx::query_scalar(by_key)
        .bind(parent)
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(RepoError::db(operation))?;
    Ok(UpsertResult {
        id,
        outcome: Outcome::Unchanged,
    })
}

/// The results of the distinct rows spread back over the input positions
/// (a key repeated in one batch is written once, its last row winning).
fn spread(positions: &[usize], results: &[UpsertResult]) -> Vec<UpsertResult> {
    positions.iter().map(|&i| results[i]).collect()
}

pub(crate) async fn upsert_threads(
    conn: &mut SqliteConnection,
    rows: &[ThreadUpsert],
) -> Result<Vec<UpsertResult>, RepoError> {
    let at = now();
    let distinct = distinct_by_key(rows);
    let mut results = Vec::with_capacity(distinct.rows.len());
    for row in &distinct.rows {
        results.push(thread_row(conn, row, at).await?);
    }
    Ok(spread(&distinct.positions, &results))
}

async fn thread_row(
    conn: &mut SqliteConnection,
    r: &ThreadUpsert,
    at: DateTime<Utc>,
) -> Result<UpsertResult, RepoError> {
    const OP: &str = "upsert threads";
    let written: Option<(i64, bool)> = sqlx::query_as(
        "INSERT INTO mail_threads AS t (mailbox_id, provider_thread_id, history_id,
                                            complete_since, complete_until, snippet,
                                            created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT (mailbox_id, provider_thread_id) DO UPDATE SET
                 history_id = excluded.history_id,
                 complete_since = excluded.complete_since,
                 complete_until = excluded.complete_until,
                 snippet = coalesce(excluded.snippet, t.snippet),
                 updated_at = excluded.updated_at,
                 revision = t.revision + 1
             WHERE (t.history_id, t.complete_since, t.complete_until, t.snippet)
                   IS NOT (excluded.history_id, excluded.complete_since, excluded.complete_until,
                           coalesce(excluded.snippet, t.snippet))
             RETURNING id, revision = 0",
    )
    .bind(r.mailbox_id)
    .bind(&r.provider_thread_id)
    .bind(r.history_id)
    .bind(r.coverage.since)
    .bind(r.coverage.until)
    .bind(text(&r.snippet))
    .bind(at)
    .fetch_optional(&mut *conn)
    .await
    .map_err(RepoError::db(OP))?;
    settle(
        conn,
        written,
        "SELECT id FROM mail_threads WHERE mailbox_id = ?1 AND provider_thread_id = ?2",
        r.mailbox_id,
        &r.provider_thread_id,
        OP,
    )
    .await
}

pub(crate) async fn upsert_messages(
    conn: &mut SqliteConnection,
    rows: &[MessageUpsert],
) -> Result<Vec<UpsertResult>, RepoError> {
    let at = now();
    let distinct = distinct_by_key(rows);
    let mut results = Vec::with_capacity(distinct.rows.len());
    for row in &distinct.rows {
        results.push(message_row(conn, row, at).await?);
    }
    Ok(spread(&distinct.positions, &results))
}

async fn message_row(
    conn: &mut SqliteConnection,
    r: &MessageUpsert,
    at: DateTime<Utc>,
) -> Result<UpsertResult, RepoError> {
    const OP: &str = "upsert messages";
    let written: Option<(i64, bool)> = sqlx::query_as(
        r#"INSERT INTO mail_messages AS m (
                   mailbox_id, thread_id, provider_message_id, provider_thread_id,
                   rfc822_message_id, in_reply_to, "references", subject, from_addrs, to_addrs,
                   cc_addrs, bcc_addrs, reply_to_addrs, sent_at, internal_date, label_ids,
                   snippet, size_estimate, history_id, body_text, body_html, raw_sha256,
                   raw_size, created_at, updated_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                       ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?24)
               ON CONFLICT (mailbox_id, provider_message_id) DO UPDATE SET
                   thread_id = excluded.thread_id,
                   provider_thread_id = excluded.provider_thread_id,
                   rfc822_message_id = excluded.rfc822_message_id,
                   in_reply_to = excluded.in_reply_to,
                   "references" = excluded."references",
                   subject = excluded.subject,
                   from_addrs = excluded.from_addrs,
                   to_addrs = excluded.to_addrs,
                   cc_addrs = excluded.cc_addrs,
                   bcc_addrs = excluded.bcc_addrs,
                   reply_to_addrs = excluded.reply_to_addrs,
                   sent_at = excluded.sent_at,
                   internal_date = excluded.internal_date,
                   label_ids = excluded.label_ids,
                   snippet = excluded.snippet,
                   size_estimate = excluded.size_estimate,
                   history_id = excluded.history_id,
                   body_text = excluded.body_text,
                   body_html = excluded.body_html,
                   raw_sha256 = excluded.raw_sha256,
                   raw_size = excluded.raw_size,
                   -- Gmail listed it, so it exists: a message seen again is not deleted
                   deleted_at = NULL,
                   updated_at = excluded.updated_at,
                   revision = m.revision + 1
               WHERE (m.thread_id, m.provider_thread_id, m.rfc822_message_id, m.in_reply_to,
                      m."references", m.subject, m.from_addrs, m.to_addrs, m.cc_addrs,
                      m.bcc_addrs, m.reply_to_addrs, m.sent_at, m.internal_date, m.label_ids,
                      m.snippet, m.size_estimate, m.history_id, m.body_text, m.body_html,
                      m.raw_sha256, m.raw_size, m.deleted_at)
                     IS NOT
                     (excluded.thread_id, excluded.provider_thread_id, excluded.rfc822_message_id,
                      excluded.in_reply_to, excluded."references", excluded.subject,
                      excluded.from_addrs, excluded.to_addrs, excluded.cc_addrs,
                      excluded.bcc_addrs, excluded.reply_to_addrs, excluded.sent_at,
                      excluded.internal_date, excluded.label_ids, excluded.snippet,
                      excluded.size_estimate, excluded.history_id, excluded.body_text,
                      excluded.body_html, excluded.raw_sha256, excluded.raw_size, NULL)
               RETURNING id, revision = 0"#,
    )
    .bind(r.mailbox_id)
    .bind(r.thread_id)
    .bind(&r.provider_message_id)
    .bind(&r.provider_thread_id)
    .bind(text(&r.rfc822_message_id))
    .bind(text(&r.in_reply_to))
    .bind(json_text(OP, &r.references)?)
    .bind(text(&r.subject))
    .bind(json_text(OP, &r.from_addrs)?)
    .bind(json_text(OP, &r.to_addrs)?)
    .bind(json_text(OP, &r.cc_addrs)?)
    .bind(json_text(OP, &r.bcc_addrs)?)
    .bind(json_text(OP, &r.reply_to_addrs)?)
    .bind(r.sent_at)
    .bind(r.internal_date)
    .bind(json_text(OP, &r.label_ids)?)
    .bind(text(&r.snippet))
    .bind(r.size_estimate)
    .bind(r.history_id)
    .bind(text(&r.body_text))
    .bind(text(&r.body_html))
    .bind(&r.raw_sha256)
    .bind(r.raw_size)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await
    .map_err(RepoError::db(OP))?;
    settle(
        conn,
        written,
        "SELECT id FROM mail_messages WHERE mailbox_id = ?1 AND provider_message_id = ?2",
        r.mailbox_id,
        &r.provider_message_id,
        OP,
    )
    .await
}

pub(crate) async fn upsert_attachments(
    conn: &mut SqliteConnection,
    rows: &[AttachmentUpsert],
) -> Result<Vec<UpsertResult>, RepoError> {
    let at = now();
    let distinct = distinct_by_key(rows);
    let mut results = Vec::with_capacity(distinct.rows.len());
    for row in &distinct.rows {
        results.push(attachment_row(conn, row, at).await?);
    }
    Ok(spread(&distinct.positions, &results))
}

async fn attachment_row(
    conn: &mut SqliteConnection,
    r: &AttachmentUpsert,
    at: DateTime<Utc>,
) -> Result<UpsertResult, RepoError> {
    const OP: &str = "upsert attachments";
    let written: Option<(i64, bool)> = sqlx::query_as(
        "INSERT INTO mail_attachments AS a (message_id, part_id, filename, mime_type,
                                                content_id, disposition, size, sha256,
                                                created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
             ON CONFLICT (message_id, part_id) DO UPDATE SET
                 filename = excluded.filename,
                 mime_type = excluded.mime_type,
                 content_id = excluded.content_id,
                 disposition = excluded.disposition,
                 size = excluded.size,
                 sha256 = excluded.sha256,
                 updated_at = excluded.updated_at,
                 revision = a.revision + 1
             WHERE (a.filename, a.mime_type, a.content_id, a.disposition, a.size, a.sha256)
                   IS NOT (excluded.filename, excluded.mime_type, excluded.content_id,
                           excluded.disposition, excluded.size, excluded.sha256)
             RETURNING id, revision = 0",
    )
    .bind(r.message_id)
    .bind(&r.part_id)
    .bind(text(&r.filename))
    .bind(without_nul(&r.mime_type))
    .bind(text(&r.content_id))
    .bind(text(&r.disposition))
    .bind(r.size)
    .bind(&r.sha256)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await
    .map_err(RepoError::db(OP))?;
    settle(
        conn,
        written,
        "SELECT id FROM mail_attachments WHERE message_id = ?1 AND part_id = ?2",
        r.message_id,
        &r.part_id,
        OP,
    )
    .await
}

/// Re-derives each thread's subject (its earliest live message's), count and
/// first/last times from its live messages; writes only threads that change.
pub(crate) async fn refresh_threads(
    conn: &mut SqliteConnection,
    thread_ids: &[i64],
) -> Result<u64, RepoError> {
    let mut ids = thread_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let at = now();
    let mut changed = 0;
    for id in ids {
        changed += sqlx::query(
            "UPDATE mail_threads AS t
             SET message_count = s.n, first_message_at = s.first_at, last_message_at = s.last_at,
                 subject = coalesce(s.subject, t.subject), updated_at = ?2,
                 revision = t.revision + 1
             FROM (SELECT count(*) AS n, min(internal_date) AS first_at,
                          max(internal_date) AS last_at,
                          (SELECT subject FROM mail_messages
                           WHERE thread_id = ?1 AND deleted_at IS NULL
                           ORDER BY internal_date, id LIMIT 1) AS subject
                   FROM mail_messages WHERE thread_id = ?1 AND deleted_at IS NULL) AS s
             WHERE t.id = ?1
               AND (t.message_count, t.first_message_at, t.last_message_at, t.subject)
                   IS NOT (s.n, s.first_at, s.last_at, coalesce(s.subject, t.subject))",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(RepoError::db("refresh threads"))?
        .rows_affected();
    }
    Ok(changed)
}

/// Records stored objects: the catalogue row (`blobs`, shared by every org;
/// never rewritten, its bytes are its hash) and the copy row of the mailbox's
/// org (`blob_copies`). A copy gc purged (or is purging) is set back to
/// `present`: `Inserted` for a new copy, `Updated` for such a rescued one, or
/// `Unchanged`. Another org's copy is never touched.
pub(crate) async fn upsert_blobs(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    rows: &[BlobUpsert],
) -> Result<Vec<Outcome>, RepoError> {
    const OP: &str = "upsert blobs";
    let at = now();
    let mut written: HashMap<&str, Outcome> = HashMap::new();
    for r in rows {
        if written.contains_key(r.sha256.as_str()) {
            continue;
        }
        sqlx::query(
            "INSERT INTO blobs (sha256, size, storage_key, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&r.sha256)
        .bind(r.size)
        .bind(&r.storage_key)
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        let new: Option<String> = sqlx::query_scalar(
            "INSERT INTO blob_copies (org_id, sha256, created_at)
             SELECT org_id, ?2, ?3 FROM mailboxes WHERE id = ?1
             ON CONFLICT (org_id, sha256) DO NOTHING RETURNING sha256",
        )
        .bind(mailbox_id)
        .bind(&r.sha256)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        let outcome = if new.is_some() {
            Outcome::Inserted
        } else {
            let rescued = sqlx::query(
                "UPDATE blob_copies SET state = 'present', purged_at = NULL
                 WHERE org_id = (SELECT org_id FROM mailboxes WHERE id = ?1)
                   AND sha256 = ?2 AND state <> 'present'",
            )
            .bind(mailbox_id)
            .bind(&r.sha256)
            .execute(&mut *conn)
            .await
            .map_err(RepoError::db(OP))?
            .rows_affected();
            if rescued > 0 {
                Outcome::Updated
            } else {
                Outcome::Unchanged
            }
        };
        written.insert(r.sha256.as_str(), outcome);
    }
    // A hash repeated in one batch is written once: its first occurrence.
    let mut reported: HashSet<&str> = HashSet::new();
    Ok(rows
        .iter()
        .map(|r| match written.get(r.sha256.as_str()) {
            Some(outcome) if reported.insert(r.sha256.as_str()) => *outcome,
            _ => Outcome::Unchanged,
        })
        .collect())
}

/// Sets the labels (and message historyId) of stored messages; returns the
/// provider ids whose row changed. Unknown ids are ignored.
pub(crate) async fn update_labels(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    updates: &[LabelUpdate],
) -> Result<Vec<String>, RepoError> {
    const OP: &str = "update labels";
    let mut last: HashMap<&str, &LabelUpdate> = HashMap::new();
    for u in updates {
        last.insert(u.provider_message_id.as_str(), u);
    }
    let mut distinct: Vec<&LabelUpdate> = last.into_values().collect();
    distinct.sort_by(|a, b| a.provider_message_id.cmp(&b.provider_message_id));
    let at = now();
    let mut changed = Vec::new();
    for u in distinct {
        let id: Option<String> = sqlx::query_scalar(
            "UPDATE mail_messages
             SET label_ids = ?3, history_id = coalesce(?4, history_id), updated_at = ?5,
                 revision = revision + 1
             WHERE mailbox_id = ?1 AND provider_message_id = ?2
               AND (label_ids, history_id) IS NOT (?3, coalesce(?4, history_id))
             RETURNING provider_message_id",
        )
        .bind(mailbox_id)
        .bind(&u.provider_message_id)
        .bind(json_text(OP, &u.label_ids)?)
        .bind(u.history_id)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        changed.extend(id);
    }
    Ok(changed)
}

/// Soft-deletes messages (row and blobs kept); returns the ids that were live until now.
pub(crate) async fn soft_delete_messages(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
    deleted_at: DateTime<Utc>,
) -> Result<Vec<String>, RepoError> {
    let at = now();
    let mut seen = HashSet::new();
    let mut deleted = Vec::new();
    for id in provider_message_ids {
        if !seen.insert(id) {
            continue;
        }
        let done: Option<String> = sqlx::query_scalar(
            "UPDATE mail_messages SET deleted_at = ?3, updated_at = ?4, revision = revision + 1
             WHERE mailbox_id = ?1 AND provider_message_id = ?2 AND deleted_at IS NULL
             RETURNING provider_message_id",
        )
        .bind(mailbox_id)
        .bind(id)
        .bind(deleted_at)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await
        .map_err(RepoError::db("soft delete messages"))?;
        deleted.extend(done);
    }
    Ok(deleted)
}

/// The thread row ids of the given stored messages.
pub(crate) async fn thread_ids_of_messages(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
) -> Result<Vec<i64>, RepoError> {
    sqlx::query_scalar(
        "SELECT DISTINCT thread_id FROM mail_messages
         WHERE mailbox_id = ?1 AND provider_message_id IN (SELECT value FROM json_each(?2))",
    )
    .bind(mailbox_id)
    .bind(json_text(
        "read thread ids of messages",
        provider_message_ids,
    )?)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("read thread ids of messages"))
}
