//! PostgreSQL: the batch upserts and the writes of a fenced transaction.
//!
//! A batch travels as one `jsonb` parameter unpacked with `jsonb_to_recordset`
//! (message bodies beside it as `text[]` parameters zipped in with `ROWS FROM`):
//! one round trip and one statement per batch whatever its size, and no limit
//! on bind parameters. Inserted vs updated comes from the system column `xmax`
//! (0 for a row this statement inserted); rows the `WHERE … IS DISTINCT FROM`
//! guard left alone return nothing and are reported `Unchanged`, their ids read
//! afterwards in a second statement that sees every committed row.
//!
//! Reads by natural key inside the transaction use the lateral form of
//! `repo::sql::Dialect::rows_by_key` (see there why never `key = ANY($n)`).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use tracing::instrument;

use crate::domain::{
    AttachmentUpsert, BlobUpsert, LabelUpdate, MessageUpsert, Outcome, ThreadUpsert, UpsertResult,
};
use crate::repo::RepoError;
use crate::repo::batch::{Keyed, NaturalKey, distinct_by_key};
use crate::repo::text::{json_without_nul, without_nul};

impl Keyed for ThreadUpsert {
    fn natural_key(&self) -> NaturalKey {
        (self.mailbox_id, self.provider_thread_id.clone())
    }
}

impl Keyed for MessageUpsert {
    fn natural_key(&self) -> NaturalKey {
        (self.mailbox_id, self.provider_message_id.clone())
    }
}

impl Keyed for AttachmentUpsert {
    fn natural_key(&self) -> NaturalKey {
        (self.message_id, self.part_id.clone())
    }
}

/// Long text columns bound as `text[]` parameters `$2, $3, …` beside the jsonb
/// batch in `$1`: message bodies are most of a batch's bytes, and as array
/// elements they are neither JSON-escaped here nor JSON-parsed by Postgres.
trait LongText {
    const LONG_TEXT_COLUMNS: usize = 0;
    fn long_text(&self, _column: usize) -> Option<&str> {
        None
    }
}

impl LongText for ThreadUpsert {}
impl LongText for AttachmentUpsert {}

impl LongText for MessageUpsert {
    const LONG_TEXT_COLUMNS: usize = 2;
    fn long_text(&self, column: usize) -> Option<&str> {
        match column {
            0 => self.body_text.as_deref(),
            _ => self.body_html.as_deref(),
        }
    }
}

/// A batch as JSON text for a `$n::jsonb` parameter, NUL-free (Postgres text
/// and jsonb cannot hold U+0000). Serialised straight to text; only a batch
/// that does contain an escaped NUL goes through a `Value` to be cleaned.
pub(super) fn json_payload<T: Serialize>(
    operation: &'static str,
    rows: &T,
) -> Result<String, RepoError> {
    let encode = |source| RepoError::Encode { operation, source };
    let text = serde_json::to_string(rows).map_err(encode)?;
    if !text.contains("\\u0000") {
        return Ok(text);
    }
    let value = serde_json::to_value(rows).map_err(encode)?;
    serde_json::to_string(&json_without_nul(&value)).map_err(encode)
}

/// The two statements behind one upsert: the write, and the id lookup for
/// rows the write left unchanged. Both return `(id, key_a, key_b[, inserted])`.
struct UpsertSql {
    operation: &'static str,
    upsert: &'static str,
    lookup: &'static str,
}

const THREADS: UpsertSql = UpsertSql {
    operation: "upsert threads",
    upsert: r#"
        INSERT INTO mail_threads AS t (mailbox_id, provider_thread_id, history_id,
                                       complete_since, complete_until, snippet)
        SELECT mailbox_id, provider_thread_id, history_id, complete_since, complete_until, snippet
        FROM jsonb_to_recordset($1::jsonb) AS x(mailbox_id bigint, provider_thread_id text,
                                         history_id bigint, complete_since timestamptz,
                                         complete_until timestamptz, snippet text)
        ON CONFLICT (mailbox_id, provider_thread_id) DO UPDATE SET
            history_id = EXCLUDED.history_id,
            complete_since = EXCLUDED.complete_since,
            complete_until = EXCLUDED.complete_until,
            snippet = coalesce(EXCLUDED.snippet, t.snippet),
            updated_at = now()
        WHERE (t.history_id, t.complete_since, t.complete_until, t.snippet)
              IS DISTINCT FROM (EXCLUDED.history_id, EXCLUDED.complete_since,
                                EXCLUDED.complete_until, coalesce(EXCLUDED.snippet, t.snippet))
        RETURNING t.id, t.mailbox_id, t.provider_thread_id, (t.xmax = 0) AS inserted"#,
    lookup: r#"
        SELECT t.id, t.mailbox_id, t.provider_thread_id
        FROM unnest($1::bigint[], $2::text[]) AS k(a, b)
        CROSS JOIN LATERAL (
            SELECT id, mailbox_id, provider_thread_id FROM mail_threads
            WHERE mailbox_id = k.a AND provider_thread_id = k.b LIMIT 1) t"#,
};

const MESSAGES: UpsertSql = UpsertSql {
    operation: "upsert messages",
    upsert: r#"
        INSERT INTO mail_messages AS m (
            mailbox_id, thread_id, provider_message_id, provider_thread_id, rfc822_message_id,
            in_reply_to, "references", subject, from_addrs, to_addrs, cc_addrs, bcc_addrs,
            reply_to_addrs, sent_at, internal_date, label_ids, snippet, size_estimate, history_id,
            body_text, body_html, raw_sha256, raw_size)
        SELECT mailbox_id, thread_id, provider_message_id, provider_thread_id, rfc822_message_id,
               in_reply_to, "references", subject, from_addrs, to_addrs, cc_addrs, bcc_addrs,
               reply_to_addrs, sent_at, internal_date, label_ids, snippet, size_estimate, history_id,
               body_text, body_html, raw_sha256, raw_size
        FROM ROWS FROM (
            jsonb_to_recordset($1::jsonb) AS (
                mailbox_id bigint, thread_id bigint, provider_message_id text,
                provider_thread_id text, rfc822_message_id text, in_reply_to text,
                "references" text[], subject text, from_addrs jsonb, to_addrs jsonb,
                cc_addrs jsonb, bcc_addrs jsonb, reply_to_addrs jsonb, sent_at timestamptz,
                internal_date timestamptz, label_ids text[], snippet text, size_estimate bigint,
                history_id bigint, raw_sha256 text, raw_size bigint),
            unnest($2::text[]),
            unnest($3::text[])
        ) AS x(mailbox_id, thread_id, provider_message_id, provider_thread_id, rfc822_message_id,
               in_reply_to, "references", subject, from_addrs, to_addrs, cc_addrs, bcc_addrs,
               reply_to_addrs, sent_at, internal_date, label_ids, snippet, size_estimate,
               history_id, raw_sha256, raw_size, body_text, body_html)
        ON CONFLICT (mailbox_id, provider_message_id) DO UPDATE SET
            thread_id = EXCLUDED.thread_id,
            provider_thread_id = EXCLUDED.provider_thread_id,
            rfc822_message_id = EXCLUDED.rfc822_message_id,
            in_reply_to = EXCLUDED.in_reply_to,
            "references" = EXCLUDED."references",
            subject = EXCLUDED.subject,
            from_addrs = EXCLUDED.from_addrs,
            to_addrs = EXCLUDED.to_addrs,
            cc_addrs = EXCLUDED.cc_addrs,
            bcc_addrs = EXCLUDED.bcc_addrs,
            reply_to_addrs = EXCLUDED.reply_to_addrs,
            sent_at = EXCLUDED.sent_at,
            internal_date = EXCLUDED.internal_date,
            label_ids = EXCLUDED.label_ids,
            snippet = EXCLUDED.snippet,
            size_estimate = EXCLUDED.size_estimate,
            history_id = EXCLUDED.history_id,
            body_text = EXCLUDED.body_text,
            body_html = EXCLUDED.body_html,
            raw_sha256 = EXCLUDED.raw_sha256,
            raw_size = EXCLUDED.raw_size,
            -- Gmail listed it, so it exists: a message seen again is not deleted
            deleted_at = NULL,
            updated_at = now()
        WHERE (m.thread_id, m.provider_thread_id, m.rfc822_message_id, m.in_reply_to, m."references",
               m.subject, m.from_addrs, m.to_addrs, m.cc_addrs, m.bcc_addrs, m.reply_to_addrs,
               m.sent_at, m.internal_date, m.label_ids, m.snippet, m.size_estimate, m.history_id,
               m.body_text, m.body_html, m.raw_sha256, m.raw_size, m.deleted_at)
              IS DISTINCT FROM
              (EXCLUDED.thread_id, EXCLUDED.provider_thread_id, EXCLUDED.rfc822_message_id,
               EXCLUDED.in_reply_to, EXCLUDED."references", EXCLUDED.subject, EXCLUDED.from_addrs,
               EXCLUDED.to_addrs, EXCLUDED.cc_addrs, EXCLUDED.bcc_addrs, EXCLUDED.reply_to_addrs,
               EXCLUDED.sent_at, EXCLUDED.internal_date, EXCLUDED.label_ids, EXCLUDED.snippet,
               EXCLUDED.size_estimate, EXCLUDED.history_id, EXCLUDED.body_text, EXCLUDED.body_html,
               EXCLUDED.raw_sha256, EXCLUDED.raw_size, NULL::timestamptz)
        RETURNING m.id, m.mailbox_id, m.provider_message_id, (m.xmax = 0) AS inserted"#,
    lookup: r#"
        SELECT m.id, m.mailbox_id, m.provider_message_id
        FROM unnest($1::bigint[], $2::text[]) AS k(a, b)
        CROSS JOIN LATERAL (
            SELECT id, mailbox_id, provider_message_id FROM mail_messages
            WHERE mailbox_id = k.a AND provider_message_id = k.b LIMIT 1) m"#,
};

const ATTACHMENTS: UpsertSql = UpsertSql {
    operation: "upsert attachments",
    upsert: r#"
        INSERT INTO mail_attachments AS a (message_id, part_id, filename, mime_type, content_id,
                                           disposition, size, sha256)
        SELECT message_id, part_id, filename, mime_type, content_id, disposition, size, sha256
        FROM jsonb_to_recordset($1::jsonb) AS x(message_id bigint, part_id text, filename text,
                                         mime_type text, content_id text, disposition text,
                                         size bigint, sha256 text)
        ON CONFLICT (message_id, part_id) DO UPDATE SET
            filename = EXCLUDED.filename,
            mime_type = EXCLUDED.mime_type,
            content_id = EXCLUDED.content_id,
            disposition = EXCLUDED.disposition,
            size = EXCLUDED.size,
            sha256 = EXCLUDED.sha256,
            updated_at = now()
        WHERE (a.filename, a.mime_type, a.content_id, a.disposition, a.size, a.sha256)
              IS DISTINCT FROM
              (EXCLUDED.filename, EXCLUDED.mime_type, EXCLUDED.content_id, EXCLUDED.disposition,
               EXCLUDED.size, EXCLUDED.sha256)
        RETURNING a.id, a.message_id, a.part_id, (a.xmax = 0) AS inserted"#,
    lookup: r#"
        SELECT a.id, a.message_id, a.part_id
        FROM unnest($1::bigint[], $2::text[]) AS k(a, b)
        CROSS JOIN LATERAL (
            SELECT id, message_id, part_id FROM mail_attachments
            WHERE message_id = k.a AND part_id = k.b LIMIT 1) a"#,
};

/// Runs one upsert statement for a batch and reports, in input order, what
/// happened to each row and the id of the stored row.
async fn upsert<T: Keyed + LongText + Serialize>(
    conn: &mut PgConnection,
    sql: &UpsertSql,
    rows: &[T],
) -> Result<Vec<UpsertResult>, RepoError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let distinct = distinct_by_key(rows);
    let payload = json_payload(sql.operation, &distinct.rows)?;
    let long_text: Vec<Vec<Option<Cow<'_, str>>>> = (0..T::LONG_TEXT_COLUMNS)
        .map(|column| {
            distinct
                .rows
                .iter()
                .map(|row| row.long_text(column).map(without_nul))
                .collect()
        })
        .collect();

    let mut query = sqlx::query(sql.upsert).bind(payload);
    for column in &long_text {
        let column: Vec<Option<&str>> = column.iter().map(|v| v.as_deref()).collect();
        query = query.bind(column);
    }
    let written = query
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db(sql.operation))?;

    let mut by_key: HashMap<NaturalKey, UpsertResult> = HashMap::with_capacity(written.len());
    for row in &written {
        let key = (row.try_get::<i64, _>(1), row.try_get::<String, _>(2));
        let (Ok(a), Ok(b)) = key else {
            return Err(RepoError::UnexpectedRow {
                operation: sql.operation,
                key: "<undecodable>".into(),
            });
        };
        let id: i64 = row.try_get(0).map_err(RepoError::db(sql.operation))?;
        let inserted: bool = row.try_get(3).map_err(RepoError::db(sql.operation))?;
        let outcome = if inserted {
            Outcome::Inserted
        } else {
            Outcome::Updated
        };
        by_key.insert((a, b), UpsertResult { id, outcome });
    }

    let missing: Vec<NaturalKey> = distinct
        .rows
        .iter()
        .map(|r| r.natural_key())
        .filter(|k| !by_key.contains_key(k))
        .collect();
    if !missing.is_empty() {
        let (parents, ids): (Vec<i64>, Vec<String>) = missing.into_iter().unzip();
        let found = sqlx::query(sql.lookup)
            .bind(&parents)
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(RepoError::db(sql.operation))?;
        for row in &found {
            let id: i64 = row.try_get(0).map_err(RepoError::db(sql.operation))?;
            let a: i64 = row.try_get(1).map_err(RepoError::db(sql.operation))?;
            let b: String = row.try_get(2).map_err(RepoError::db(sql.operation))?;
            by_key.insert(
                (a, b),
                UpsertResult {
                    id,
                    outcome: Outcome::Unchanged,
                },
            );
        }
    }

    let per_distinct: Vec<UpsertResult> = distinct
        .rows
        .iter()
        .map(|r| {
            let key = r.natural_key();
            by_key
                .get(&key)
                .copied()
                .ok_or_else(|| RepoError::UnexpectedRow {
                    operation: sql.operation,
                    key: format!("({}, {})", key.0, key.1),
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(distinct
        .positions
        .iter()
        .map(|&i| per_distinct[i])
        .collect())
}

/// Upserts threads; one result per input row, in input order.
#[instrument(skip_all, fields(rows = rows.len()))]
pub async fn upsert_threads(
    conn: &mut PgConnection,
    rows: &[ThreadUpsert],
) -> Result<Vec<UpsertResult>, RepoError> {
    upsert(conn, &THREADS, rows).await
}

/// Upserts messages; one result per input row, in input order.
#[instrument(skip_all, fields(rows = rows.len()))]
pub async fn upsert_messages(
    conn: &mut PgConnection,
    rows: &[MessageUpsert],
) -> Result<Vec<UpsertResult>, RepoError> {
    upsert(conn, &MESSAGES, rows).await
}

/// Upserts attachments; one result per input row, in input order.
#[instrument(skip_all, fields(rows = rows.len()))]
pub async fn upsert_attachments(
    conn: &mut PgConnection,
    rows: &[AttachmentUpsert],
) -> Result<Vec<UpsertResult>, RepoError> {
    upsert(conn, &ATTACHMENTS, rows).await
}

/// Derives each thread's subject (its earliest live message's), message count
/// and first/last message times from the stored, not deleted, messages.
/// Writes only threads whose derived values changed; returns how many.
#[instrument(skip_all, fields(threads = thread_ids.len()))]
pub async fn refresh_threads(
    conn: &mut PgConnection,
    thread_ids: &[i64],
) -> Result<u64, RepoError> {
    if thread_ids.is_empty() {
        return Ok(0);
    }
    let mut ids = thread_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let result = sqlx::query(
        r#"
        WITH live AS (
            -- per thread, so each aggregate reads only its thread's rows (see module docs)
            SELECT t.id, s.message_count, s.first_at, s.last_at, s.subject
            FROM unnest($1::bigint[]) AS t(id)
            CROSS JOIN LATERAL (
                SELECT count(*)::int AS message_count,
                       min(m.internal_date) AS first_at,
                       max(m.internal_date) AS last_at,
                       (array_agg(m.subject ORDER BY m.internal_date, m.id))[1] AS subject
                FROM mail_messages m
                WHERE m.thread_id = t.id AND m.deleted_at IS NULL) s)
        UPDATE mail_threads t
        SET message_count = live.message_count, first_message_at = live.first_at,
            last_message_at = live.last_at, subject = coalesce(live.subject, t.subject),
            updated_at = now()
        FROM live
        WHERE t.id = live.id
          AND (t.message_count, t.first_message_at, t.last_message_at, t.subject)
              IS DISTINCT FROM
              (live.message_count, live.first_at, live.last_at, coalesce(live.subject, t.subject))"#,
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(RepoError::db("refresh threads"))?;
    Ok(result.rows_affected())
}

/// Records stored objects: the catalogue row (`blobs`, shared by every org:
/// a blob's bytes are fixed by its hash, so it is never rewritten) and the
/// copy row of the mailbox's org (`blob_copies`: the object under the org's
/// prefix). A copy gc purged (or is purging) is set back to `present`:
/// `Inserted` for a new copy, `Updated` for such a rescued one, `Unchanged`
/// otherwise. Another org's copy is never touched.
///
/// Every existing copy row is locked `FOR KEY SHARE` until commit: writers
/// sharing a blob do not wait for each other, but gc's purge, which locks
/// `FOR UPDATE` before its last check, waits for this transaction and then
/// sees what it recorded (`crate::gc`).
#[instrument(skip_all, fields(rows = rows.len()))]
pub async fn upsert_blobs(
    conn: &mut PgConnection,
    mailbox_id: i64,
    rows: &[BlobUpsert],
) -> Result<Vec<Outcome>, RepoError> {
    const OP: &str = "upsert blobs";
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // Sorted and distinct: concurrent batches then take row locks in one order.
    let mut distinct: Vec<&BlobUpsert> = rows.iter().collect();
    distinct.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    distinct.dedup_by(|a, b| a.sha256 == b.sha256);
    let payload = json_payload(OP, &distinct)?;
    sqlx::query(
        r#"
        INSERT INTO blobs (sha256, size, storage_key)
        SELECT sha256, size, storage_key
        FROM jsonb_to_recordset($1::jsonb) AS x(sha256 text, size bigint, storage_key text)
        ORDER BY sha256
        ON CONFLICT (sha256) DO NOTHING"#,
    )
    .bind(&payload)
    .execute(&mut *conn)
    .await
    .map_err(RepoError::db(OP))?;
    let inserted: HashSet<String> = sqlx::query_scalar(
        r#"
        INSERT INTO blob_copies (org_id, sha256)
        SELECT (SELECT org_id FROM mailboxes WHERE id = $2), sha256
        FROM jsonb_to_recordset($1::jsonb) AS x(sha256 text)
        ORDER BY sha256
        ON CONFLICT (org_id, sha256) DO NOTHING
        RETURNING sha256"#,
    )
    .bind(&payload)
    .bind(mailbox_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db(OP))?
    .into_iter()
    .collect();
    let existing: Vec<&str> = distinct
        .iter()
        .map(|b| b.sha256.as_str())
        .filter(|sha| !inserted.contains(*sha))
        .collect();
    let mut rescued: HashSet<String> = HashSet::new();
    if !existing.is_empty() {
        let states: Vec<(String, String)> = sqlx::query_as(
            "SELECT sha256, state FROM blob_copies
             WHERE org_id = (SELECT org_id FROM mailboxes WHERE id = $2) AND sha256 = ANY($1)
             ORDER BY sha256 FOR KEY SHARE",
        )
        .bind(&existing)
        .bind(mailbox_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        let gone: Vec<&str> = states
            .iter()
            .filter(|(_, state)| state != "present")
            .map(|(sha, _)| sha.as_str())
            .collect();
        if !gone.is_empty() {
            // Locked in hash order first, as everyone else locks copy rows.
            rescued = sqlx::query_scalar(
                "WITH back AS (
                     SELECT org_id, sha256 FROM blob_copies
                     WHERE org_id = (SELECT org_id FROM mailboxes WHERE id = $2)
                       AND sha256 = ANY($1) AND state <> 'present'
                     ORDER BY sha256 FOR NO KEY UPDATE
                 )
                 UPDATE blob_copies c SET state = 'present', purged_at = NULL FROM back
                 WHERE c.org_id = back.org_id AND c.sha256 = back.sha256 AND c.state <> 'present'
                 RETURNING c.sha256",
            )
            .bind(&gone)
            .bind(mailbox_id)
            .fetch_all(&mut *conn)
            .await
            .map_err(RepoError::db(OP))?
            .into_iter()
            .collect();
        }
    }
    // A hash repeated in one batch is written once: its first occurrence.
    let mut reported: HashSet<&str> = HashSet::new();
    Ok(rows
        .iter()
        .map(|r| {
            let first = reported.insert(r.sha256.as_str());
            if first && inserted.contains(&r.sha256) {
                Outcome::Inserted
            } else if first && rescued.contains(&r.sha256) {
                Outcome::Updated
            } else {
                Outcome::Unchanged
            }
        })
        .collect())
}

/// Sets the labels (and message historyId) of stored messages; returns the
/// provider ids whose row actually changed. Unknown ids are ignored.
#[instrument(skip_all, fields(rows = updates.len()))]
pub async fn update_labels(
    conn: &mut PgConnection,
    mailbox_id: i64,
    updates: &[LabelUpdate],
) -> Result<Vec<String>, RepoError> {
    const OP: &str = "update labels";
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let mut last: HashMap<&str, &LabelUpdate> = HashMap::new();
    for u in updates {
        last.insert(u.provider_message_id.as_str(), u);
    }
    let mut distinct: Vec<&LabelUpdate> = last.into_values().collect();
    distinct.sort_by(|a, b| a.provider_message_id.cmp(&b.provider_message_id));
    let payload = json_payload(OP, &distinct)?;
    sqlx::query_scalar(
        r#"
        UPDATE mail_messages AS m
        SET label_ids = x.label_ids,
            history_id = COALESCE(x.history_id, m.history_id),
            updated_at = now()
        FROM jsonb_to_recordset($2::jsonb) AS x(provider_message_id text, label_ids text[], history_id bigint)
        WHERE m.mailbox_id = $1
          AND m.provider_message_id = x.provider_message_id
          AND (m.label_ids, m.history_id) IS DISTINCT FROM (x.label_ids, COALESCE(x.history_id, m.history_id))
        RETURNING m.provider_message_id"#,
    )
    .bind(mailbox_id)
    .bind(payload)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db(OP))
}

/// Soft-deletes messages (row and blobs kept); returns the provider ids that
/// were live until now. Already-deleted and unknown ids are ignored.
#[instrument(skip_all, fields(rows = provider_message_ids.len()))]
pub async fn soft_delete_messages(
    conn: &mut PgConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
    deleted_at: DateTime<Utc>,
) -> Result<Vec<String>, RepoError> {
    if provider_message_ids.is_empty() {
        return Ok(Vec::new());
    }
    // Keyed probes, as every natural-key read here (see the module docs).
    sqlx::query_scalar(
        "WITH target AS (
             SELECT DISTINCT m.id FROM unnest($2::text[]) AS k(id)
             CROSS JOIN LATERAL (
                 SELECT id FROM mail_messages
                 WHERE mailbox_id = $1 AND provider_message_id = k.id AND deleted_at IS NULL
                 LIMIT 1) m)
         UPDATE mail_messages m SET deleted_at = $3, updated_at = now()
         FROM target WHERE m.id = target.id
         RETURNING m.provider_message_id",
    )
    .bind(mailbox_id)
    .bind(provider_message_ids)
    .bind(deleted_at)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("soft delete messages"))
}

/// The thread row ids of the given stored messages.
pub async fn thread_ids_of_messages(
    conn: &mut PgConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
) -> Result<Vec<i64>, RepoError> {
    if provider_message_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "SELECT DISTINCT m.thread_id
         FROM unnest($2::text[]) AS k(id)
         CROSS JOIN LATERAL (
             SELECT thread_id FROM mail_messages
             WHERE mailbox_id = $1 AND provider_message_id = k.id LIMIT 1) m",
    )
    .bind(mailbox_id)
    .bind(provider_message_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("read thread ids of messages"))
}
