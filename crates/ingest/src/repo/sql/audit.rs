//! The reads of `verify` and `repair` ([`AuditReads`]), once for both
//! backends: the auditor's duplicate checks, stored counts, the blobs rows
//! reference and who owns one, and the rows and events that disagree.
//!
//! Ledger subjects are compared as whole keys built by `ledger::Subject`, never
//! cut apart in SQL: the prefix is bound, so the format has one owner.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::Subject;

use super::{Db, Dialect, HasDb, IdList, Labels, on_either};
use crate::domain::{MailboxAddress, RunKind, Window};
use crate::repo::{AuditReads, DuplicateKey, MailboxCounts, RepoError};

/// The original spec's `GROUP BY … HAVING count(*) > 1` checks, per table:
/// the constraints forbid duplicates, and this is the check an auditor asks for.
/// Each looks at one org's rows only (`$1`): another org's are its own
/// verify's to report.
const DUPLICATE_CHECKS: [(&str, &str); 5] = [
    (
        "mailboxes",
        "SELECT org_id || '/' || provider_email, count(*) FROM mailboxes WHERE org_id = $1 GROUP BY org_id, provider_email HAVING count(*) > 1",
    ),
    (
        "mail_threads",
        "SELECT mailbox_id || '/' || provider_thread_id, count(*) FROM mail_threads WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE org_id = $1) GROUP BY mailbox_id, provider_thread_id HAVING count(*) > 1",
    ),
    (
        "mail_messages",
        "SELECT mailbox_id || '/' || provider_message_id, count(*) FROM mail_messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE org_id = $1) GROUP BY mailbox_id, provider_message_id HAVING count(*) > 1",
    ),
    (
        "mail_attachments",
        "SELECT message_id || '/' || part_id, count(*) FROM mail_attachments WHERE message_id IN (SELECT id FROM mail_messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE org_id = $1)) GROUP BY message_id, part_id HAVING count(*) > 1",
    ),
    (
        "blobs",
        "SELECT sha256, count(*) FROM blobs WHERE sha256 IN (
             SELECT raw_sha256 FROM mail_messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE org_id = $1)
             UNION
             SELECT a.sha256 FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
             WHERE m.mailbox_id IN (SELECT id FROM mailboxes WHERE org_id = $1))
         GROUP BY sha256 HAVING count(*) > 1",
    ),
];

/// The message id a `message.…` event names; a key that is not one is kept whole,
/// so a forged or malformed event still shows in the finding.
fn message_id_of(key: &str) -> String {
    match key.parse::<Subject>() {
        Ok(subject) => subject
            .message_id()
            .map_or_else(|| key.to_owned(), str::to_owned),
        Err(_) => key.to_owned(),
    }
}

#[async_trait]
impl<B: HasDb> AuditReads for B {
    async fn blob_owners(&self, mailbox_id: i64, sha256: &str) -> Result<Vec<String>, RepoError> {
        let db = self.db();
        // The messages whose raw bytes are the blob rank before those with a
        // part that is. PostgreSQL wants the derived table named; SQLite
        // groups a message that owns the blob both ways into one row.
        let owners = "SELECT provider_message_id, 0 AS rank FROM mail_messages
                      WHERE mailbox_id = $1 AND raw_sha256 = $2
                      UNION
                      SELECT m.provider_message_id, 1 FROM mail_attachments a
                      JOIN mail_messages m ON m.id = a.message_id
                      WHERE m.mailbox_id = $1 AND a.sha256 = $2";
        let sql = match db.dialect() {
            Dialect::Postgres => format!(
                "SELECT provider_message_id FROM ({owners}) o
                 ORDER BY rank, provider_message_id LIMIT 20"
            ),
            Dialect::Sqlite => format!(
                "SELECT provider_message_id FROM ({owners})
                 GROUP BY provider_message_id
                 ORDER BY min(rank), provider_message_id LIMIT 20"
            ),
        };
        on_either!(db, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(
            sql.as_str()
        ))
        .bind(mailbox_id)
        .bind(sha256)
        .fetch_all(pool)
        .await)
        .map_err(RepoError::db("find the owners of a blob"))
    }

    async fn duplicate_keys(&self, org: &str) -> Result<Vec<DuplicateKey>, RepoError> {
        let db = self.db();
        let mut found = Vec::new();
        for (table, sql) in DUPLICATE_CHECKS {
            let dups: Vec<(String, i64)> = on_either!(db, |pool| sqlx::query_as(sql)
                .bind(org)
                .fetch_all(pool)
                .await)
            .map_err(RepoError::db("duplicate check"))?;
            found.extend(
                dups.into_iter()
                    .map(|(key, count)| DuplicateKey { table, key, count }),
            );
        }
        Ok(found)
    }

    async fn mailboxes_to_verify(
        &self,
        org: &str,
        email: Option<&str>,
    ) -> Result<Vec<(i64, String)>, RepoError> {
        let email = email.map(MailboxAddress::normalized);
        let email = email.as_ref().map(MailboxAddress::as_str);
        let db = self.db();
        match db {
            Db::Pg(pool) => {
                sqlx::query_as(
                    "SELECT id, provider_email FROM mailboxes
                 WHERE ($1::text IS NULL OR provider_email = $1) AND org_id = $2 ORDER BY id",
                )
                .bind(email)
                .bind(org)
                .fetch_all(pool)
                .await
            }
            Db::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT id, provider_email FROM mailboxes
                 WHERE ($1 IS NULL OR provider_email = $1) AND org_id = $2 ORDER BY id",
                )
                .bind(email)
                .bind(org)
                .fetch_all(pool)
                .await
            }
        }
        .map_err(RepoError::db("list mailboxes"))
    }

    async fn mailbox_counts(&self, mailbox_id: i64) -> Result<MailboxCounts, RepoError> {
        let sql = "SELECT
            (SELECT count(*) FROM mail_threads WHERE mailbox_id = $1),
            (SELECT count(*) FROM mail_messages WHERE mailbox_id = $1),
            (SELECT count(*) FROM mail_messages WHERE mailbox_id = $1 AND deleted_at IS NOT NULL),
            (SELECT count(*) FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id WHERE m.mailbox_id = $1),
            (SELECT count(DISTINCT sha256) FROM (
                SELECT raw_sha256 AS sha256 FROM mail_messages WHERE mailbox_id = $1
                UNION ALL
                SELECT a.sha256 FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id WHERE m.mailbox_id = $1) s),
            (SELECT count(*) FROM sync_runs WHERE mailbox_id = $1),
            (SELECT count(*) FROM ledger_events WHERE mailbox_id = $1)";
        let c: (i64, i64, i64, i64, i64, i64, i64) = on_either!(self.db(), |pool| {
            sqlx::query_as(sql).bind(mailbox_id).fetch_one(pool).await
        })
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

    async fn referenced_blobs(&self, mailbox_id: i64) -> Result<Vec<String>, RepoError> {
        // Blobs the mailbox's org purged (mail Gmail deleted long ago) are gone
        // on purpose; another org's copy, purged or not, says nothing of this
        // org's prefix. A copy row missing (it never should) counts as present.
        let sql = "SELECT r.sha256 FROM (
                 SELECT raw_sha256 AS sha256 FROM mail_messages WHERE mailbox_id = $1
                 UNION
                 SELECT a.sha256 FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
                 WHERE m.mailbox_id = $1
                 UNION
                 SELECT sha256 FROM imported_orphans WHERE mailbox_id = $1
             ) r LEFT JOIN blob_copies c ON c.sha256 = r.sha256
                   AND c.org_id = (SELECT org_id FROM mailboxes WHERE id = $1)
             WHERE coalesce(c.state, 'present') = 'present'";
        on_either!(self.db(), |pool| {
            sqlx::query_scalar(sql)
                .bind(mailbox_id)
                .fetch_all(pool)
                .await
        })
        .map_err(RepoError::db("list referenced blobs"))
    }

    async fn verify_ledger(&self, mailbox_id: i64) -> Result<ledger::ChainReport, RepoError> {
        let acquire = RepoError::db("acquire");
        Ok(match self.db() {
            Db::Pg(pool) => {
                let mut conn = pool.acquire().await.map_err(acquire)?;
                ledger::verify(&mut conn, mailbox_id).await?
            }
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await.map_err(acquire)?;
                ledger::sqlite::verify(&mut conn, mailbox_id).await?
            }
        })
    }

    async fn messages_without_ingest_event(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, RepoError> {
        let sql = "SELECT m.provider_message_id FROM mail_messages m
             WHERE m.mailbox_id = $1 AND NOT EXISTS (
                 SELECT 1 FROM ledger_events e
                 WHERE e.mailbox_id = $1 AND e.event_type = 'message.ingested'
                   AND e.subject_key = $2 || m.provider_message_id)
             ORDER BY 1 LIMIT $3";
        on_either!(self.db(), |pool| sqlx::query_scalar(sql)
            .bind(mailbox_id)
            .bind(Subject::MESSAGE_PREFIX)
            .bind(limit)
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("ledger/table agreement"))
    }

    async fn ingest_events_without_message(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, RepoError> {
        let sql = "SELECT DISTINCT e.subject_key FROM ledger_events e
             WHERE e.mailbox_id = $1 AND e.event_type = 'message.ingested'
               AND NOT EXISTS (SELECT 1 FROM mail_messages m
                               WHERE m.mailbox_id = $1 AND $2 || m.provider_message_id = e.subject_key)
             ORDER BY 1 LIMIT $3";
        let keys: Vec<String> = on_either!(self.db(), |pool| sqlx::query_scalar(sql)
            .bind(mailbox_id)
            .bind(Subject::MESSAGE_PREFIX)
            .bind(limit)
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("ledger/table agreement"))?;
        Ok(keys.iter().map(|k| message_id_of(k)).collect())
    }

    async fn live_messages(
        &self,
        mailbox_id: i64,
    ) -> Result<Vec<(String, Vec<String>)>, RepoError> {
        let sql = "SELECT provider_message_id, label_ids FROM mail_messages
             WHERE mailbox_id = $1 AND deleted_at IS NULL";
        let rows: Vec<(String, Labels)> = on_either!(self.db(), |pool| {
            sqlx::query_as(sql).bind(mailbox_id).fetch_all(pool).await
        })
        .map_err(RepoError::db("list live messages"))?;
        rows.into_iter()
            .map(|(id, labels)| {
                let labels = labels.of_message(&id)?;
                Ok((id, labels))
            })
            .collect()
    }

    async fn imported_sample(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, RepoError> {
        let sql = "SELECT m.provider_message_id, m.raw_sha256 FROM mail_messages m
             WHERE m.mailbox_id = $1 AND m.deleted_at IS NULL AND EXISTS (
                 SELECT 1 FROM ledger_events e JOIN sync_runs r ON r.id = e.run_id
                 WHERE e.mailbox_id = $1 AND e.event_type = 'message.ingested'
                   AND r.kind = $4 AND e.subject_key = $2 || m.provider_message_id)
             ORDER BY random() LIMIT $3";
        on_either!(self.db(), |pool| sqlx::query_as(sql)
            .bind(mailbox_id)
            .bind(Subject::MESSAGE_PREFIX)
            .bind(limit)
            .bind(RunKind::Import.as_str())
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("sample imported messages"))
    }

    async fn last_backfill_window(&self, mailbox_id: i64) -> Result<Option<Window>, RepoError> {
        let sql = "SELECT window_start, window_end FROM sync_runs
             WHERE mailbox_id = $1 AND kind = 'backfill' AND status = 'completed'
               AND window_start IS NOT NULL AND window_end IS NOT NULL
             ORDER BY finished_at DESC LIMIT 1";
        let last: Option<(DateTime<Utc>, DateTime<Utc>)> = on_either!(self.db(), |pool| {
            sqlx::query_as(sql)
                .bind(mailbox_id)
                .fetch_optional(pool)
                .await
        })
        .map_err(RepoError::db("read last backfill window"))?;
        last.map(|(since, until)| {
            Window::new(since, until).map_err(|e| RepoError::Corrupt(format!("stored window: {e}")))
        })
        .transpose()
    }

    async fn skipped_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        let db = self.db();
        let keys: Vec<String> = provider_message_ids
            .iter()
            .map(|id| Subject::Message(id.clone()).to_string())
            .collect();
        // No index on subject_key: one pass over the mailbox's skip events
        // with a hashed key list is the plan wanted here.
        let sql = format!(
            "SELECT DISTINCT subject_key FROM ledger_events
             WHERE mailbox_id = $1 AND event_type = 'message.skipped' AND {}",
            db.dialect().in_list("subject_key", "$2")
        );
        let found: Vec<String> = on_either!(db, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(
            sql.as_str()
        ))
        .bind(mailbox_id)
        .bind(IdList(&keys))
        .fetch_all(pool)
        .await)
        .map_err(RepoError::db("read skipped messages"))?;
        Ok(found.iter().map(|k| message_id_of(k)).collect())
    }
}
