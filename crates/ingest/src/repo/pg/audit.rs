//! PostgreSQL: the queries behind `verify` and `repair` (`AuditReads`).
//!
//! Ledger subjects are compared as whole keys built by `ledger::Subject`, never
//! cut apart in SQL: the prefix is bound, so the format has one owner.

use async_trait::async_trait;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use ledger::Subject;
use sqlx::PgPool;

use crate::domain::Window;
use crate::repo::shared::{DUPLICATE_CHECKS, message_id_of};
use crate::repo::{DuplicateKey, MailboxCounts, RepoError};

pub(crate) async fn duplicate_keys(pool: &PgPool) -> Result<Vec<DuplicateKey>, RepoError> {
    let mut found = Vec::new();
    for (table, sql) in DUPLICATE_CHECKS {
        let dups: Vec<(String, i64)> = sqlx::query_as(sql)
            .fetch_all(pool)
            .await
            .map_err(RepoError::db("duplicate check"))?;
        found.extend(
            dups.into_iter()
                .map(|(key, count)| DuplicateKey { table, key, count }),
        );
    }
    Ok(found)
}

pub(crate) async fn mailboxes_to_verify(
    pool: &PgPool,
    email: Option<&str>,
) -> Result<Vec<(i64, String)>, RepoError> {
    sqlx::query_as(
        "SELECT id, provider_email FROM mailboxes
         WHERE $1::text IS NULL OR provider_email = lower($1) ORDER BY id",
    )
    .bind(email)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("list mailboxes"))
}

pub(crate) async fn mailbox_counts(
    pool: &PgPool,
    mailbox_id: i64,
) -> Result<MailboxCounts, RepoError> {
    let c: (i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT
            (SELECT count(*) FROM mail_threads WHERE mailbox_id = $1),
            (SELECT count(*) FROM mail_messages WHERE mailbox_id = $1),
            (SELECT count(*) FROM mail_messages WHERE mailbox_id = $1 AND deleted_at IS NOT NULL),
            (SELECT count(*) FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id WHERE m.mailbox_id = $1),
            (SELECT count(DISTINCT sha256) FROM (
                SELECT raw_sha256 AS sha256 FROM mail_messages WHERE mailbox_id = $1
                UNION ALL
                SELECT a.sha256 FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id WHERE m.mailbox_id = $1) s),
            (SELECT count(*) FROM sync_runs WHERE mailbox_id = $1),
            (SELECT count(*) FROM ledger_events WHERE mailbox_id = $1)",
    )
    .bind(mailbox_id)
    .fetch_one(pool)
    .await
    .map_err(RepoError::db("count rows"))?;
    Ok(MailboxCounts {
        threads: c.0,
        messages: c.1,
        messages_deleted: c.2,
        attachments: c.3,
        blobs: c.4,
        runs: c.5,
        ledger_events: c.6,
    })
}

pub(crate) async fn referenced_blobs(
    pool: &PgPool,
    mailbox_id: i64,
) -> Result<Vec<String>, RepoError> {
    sqlx::query_scalar(
        // Blobs gc purged (mail Gmail deleted long ago) are gone on purpose.
        "SELECT r.sha256 FROM (
             SELECT raw_sha256 AS sha256 FROM mail_messages WHERE mailbox_id = $1
             UNION
             SELECT a.sha256 FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
             WHERE m.mailbox_id = $1
         ) r JOIN blobs b ON b.sha256 = r.sha256 WHERE b.state = 'present'",
    )
    .bind(mailbox_id)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("list referenced blobs"))
}

pub(crate) async fn messages_without_ingest_event(
    pool: &PgPool,
    mailbox_id: i64,
    limit: i64,
) -> Result<Vec<String>, RepoError> {
    sqlx::query_scalar(
        "SELECT m.provider_message_id FROM mail_messages m
         WHERE m.mailbox_id = $1 AND NOT EXISTS (
             SELECT 1 FROM ledger_events e
             WHERE e.mailbox_id = $1 AND e.event_type = 'message.ingested'
               AND e.subject_key = $2 || m.provider_message_id)
         ORDER BY 1 LIMIT $3",
    )
    .bind(mailbox_id)
    .bind(Subject::MESSAGE_PREFIX)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("ledger/table agreement"))
}

pub(crate) async fn ingest_events_without_message(
    pool: &PgPool,
    mailbox_id: i64,
    limit: i64,
) -> Result<Vec<String>, RepoError> {
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT e.subject_key FROM ledger_events e
         WHERE e.mailbox_id = $1 AND e.event_type = 'message.ingested'
           AND NOT EXISTS (SELECT 1 FROM mail_messages m
                           WHERE m.mailbox_id = $1 AND $2 || m.provider_message_id = e.subject_key)
         ORDER BY 1 LIMIT $3",
    )
    .bind(mailbox_id)
    .bind(Subject::MESSAGE_PREFIX)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("ledger/table agreement"))?;
    Ok(keys.iter().map(|k| message_id_of(k)).collect())
}

pub(crate) async fn live_messages(
    pool: &PgPool,
    mailbox_id: i64,
) -> Result<Vec<(String, Vec<String>)>, RepoError> {
    sqlx::query_as(
        "SELECT provider_message_id, label_ids FROM mail_messages
         WHERE mailbox_id = $1 AND deleted_at IS NULL",
    )
    .bind(mailbox_id)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("list live messages"))
}

pub(crate) async fn last_backfill_window(
    pool: &PgPool,
    mailbox_id: i64,
) -> Result<Option<Window>, RepoError> {
    let last: Option<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT window_start, window_end FROM sync_runs
         WHERE mailbox_id = $1 AND kind = 'backfill' AND status = 'completed'
           AND window_start IS NOT NULL AND window_end IS NOT NULL
         ORDER BY finished_at DESC LIMIT 1",
    )
    .bind(mailbox_id)
    .fetch_optional(pool)
    .await
    .map_err(RepoError::db("read last backfill window"))?;
    last.map(|(since, until)| {
        Window::new(since, until).map_err(|e| RepoError::Corrupt(format!("stored window: {e}")))
    })
    .transpose()
}

pub(crate) async fn skipped_message_ids(
    pool: &PgPool,
    mailbox_id: i64,
    provider_message_ids: &[String],
) -> Result<HashSet<String>, RepoError> {
    let keys: Vec<String> = provider_message_ids
        .iter()
        .map(|id| Subject::Message(id.clone()).to_string())
        .collect();
    let found: Vec<String> = sqlx::query_scalar(
        // No index on subject_key: one pass over the mailbox's skip events
        // with a hashed key list is the plan wanted here.
        "SELECT DISTINCT subject_key FROM ledger_events
         WHERE mailbox_id = $1 AND event_type = 'message.skipped' AND subject_key = ANY($2)",
    )
    .bind(mailbox_id)
    .bind(&keys)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("read skipped messages"))?;
    Ok(found.iter().map(|k| message_id_of(k)).collect())
}

/// The messages of the mailbox whose raw bytes are this blob, then those
/// with a part that is (a part can be re-derived from its message's raw).
pub(crate) async fn blob_owners(
    pool: &PgPool,
    mailbox_id: i64,
    sha256: &str,
) -> Result<Vec<String>, RepoError> {
    sqlx::query_scalar(
        "SELECT provider_message_id FROM (
             SELECT provider_message_id, 0 AS rank FROM mail_messages
             WHERE mailbox_id = $1 AND raw_sha256 = $2
             UNION
             SELECT m.provider_message_id, 1 FROM mail_attachments a
             JOIN mail_messages m ON m.id = a.message_id
             WHERE m.mailbox_id = $1 AND a.sha256 = $2) o
         ORDER BY rank, provider_message_id
         LIMIT 20",
    )
    .bind(mailbox_id)
    .bind(sha256)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("find the owners of a blob"))
}

#[async_trait]
impl crate::repo::AuditReads for super::PgRepository {
    async fn blob_owners(&self, mailbox_id: i64, sha256: &str) -> Result<Vec<String>, RepoError> {
        blob_owners(&self.pool, mailbox_id, sha256).await
    }

    async fn duplicate_keys(&self) -> Result<Vec<DuplicateKey>, RepoError> {
        duplicate_keys(&self.pool).await
    }

    async fn mailboxes_to_verify(
        &self,
        email: Option<&str>,
    ) -> Result<Vec<(i64, String)>, RepoError> {
        mailboxes_to_verify(&self.pool, email).await
    }

    async fn mailbox_counts(&self, mailbox_id: i64) -> Result<MailboxCounts, RepoError> {
        mailbox_counts(&self.pool, mailbox_id).await
    }

    async fn referenced_blobs(&self, mailbox_id: i64) -> Result<Vec<String>, RepoError> {
        referenced_blobs(&self.pool, mailbox_id).await
    }

    async fn verify_ledger(&self, mailbox_id: i64) -> Result<ledger::ChainReport, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        Ok(ledger::verify(&mut conn, mailbox_id).await?)
    }

    async fn messages_without_ingest_event(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, RepoError> {
        messages_without_ingest_event(&self.pool, mailbox_id, limit).await
    }

    async fn ingest_events_without_message(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, RepoError> {
        ingest_events_without_message(&self.pool, mailbox_id, limit).await
    }

    async fn live_messages(
        &self,
        mailbox_id: i64,
    ) -> Result<Vec<(String, Vec<String>)>, RepoError> {
        live_messages(&self.pool, mailbox_id).await
    }

    async fn last_backfill_window(&self, mailbox_id: i64) -> Result<Option<Window>, RepoError> {
        last_backfill_window(&self.pool, mailbox_id).await
    }

    async fn skipped_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        skipped_message_ids(&self.pool, mailbox_id, provider_message_ids).await
    }
}
