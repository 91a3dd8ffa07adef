//! PostgreSQL: the reads an engine plans with (`PlanReads`), by natural key.
//!
//! Reads by natural key are written as `unnest(keys) CROSS JOIN LATERAL (… LIMIT 1)`,
//! never `key = ANY($n)`: during a first backfill the tables grow by thousands of rows
//! a second while their statistics still describe an empty table, and with `= ANY`
//! the planner then picks a scan of every row of the mailbox (through the
//! `(mailbox_id, internal_date)` index) for each call. That made one lookup per
//! thread cost O(mailbox) and the backfill quadratic. The lateral form leaves one
//! plan: a unique-index probe per key, whatever the statistics say.

use crate::repo::{Coverage, RepoError, StoredThread};
use async_trait::async_trait;
use chrono::DateTime;
use chrono::Utc;
use sqlx::PgConnection;
use std::collections::HashMap;
use std::collections::HashSet;
use tracing::instrument;
/// The stored historyId and its coverage of each listed thread that is stored at all.
#[instrument(skip_all, fields(rows = provider_thread_ids.len()))]
pub async fn thread_history_ids(
    conn: &mut PgConnection,
    mailbox_id: i64,
    provider_thread_ids: &[String],
) -> Result<HashMap<String, StoredThread>, RepoError> {
    type Row = (
        String,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT t.provider_thread_id, t.history_id, t.complete_since, t.complete_until
         FROM unnest($2::text[]) AS k(id)
         CROSS JOIN LATERAL (
             SELECT provider_thread_id, history_id, complete_since, complete_until
             FROM mail_threads
             WHERE mailbox_id = $1 AND provider_thread_id = k.id LIMIT 1) t",
    )
    .bind(mailbox_id)
    .bind(provider_thread_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("read thread history ids"))?;
    Ok(rows
        .into_iter()
        .map(|(id, history_id, since, until)| {
            let coverage = Coverage { since, until };
            (
                id,
                StoredThread {
                    history_id,
                    coverage,
                },
            )
        })
        .collect())
}

/// Which of the given messages are stored (deleted or not).
#[instrument(skip_all, fields(rows = provider_message_ids.len()))]
pub async fn stored_message_ids(
    conn: &mut PgConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
) -> Result<HashSet<String>, RepoError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT m.provider_message_id
         FROM unnest($2::text[]) AS k(id)
         CROSS JOIN LATERAL (
             SELECT provider_message_id FROM mail_messages
             WHERE mailbox_id = $1 AND provider_message_id = k.id LIMIT 1) m",
    )
    .bind(mailbox_id)
    .bind(provider_message_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("read stored message ids"))?;
    Ok(rows.into_iter().collect())
}

/// The stored labels of each of the given messages that is stored (deleted or not).
#[instrument(skip_all, fields(rows = provider_message_ids.len()))]
pub async fn stored_labels(
    conn: &mut PgConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
) -> Result<HashMap<String, Vec<String>>, RepoError> {
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT m.provider_message_id, m.label_ids
         FROM unnest($2::text[]) AS k(id)
         CROSS JOIN LATERAL (
             SELECT provider_message_id, label_ids FROM mail_messages
             WHERE mailbox_id = $1 AND provider_message_id = k.id LIMIT 1) m",
    )
    .bind(mailbox_id)
    .bind(provider_message_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("read stored labels"))?;
    Ok(rows.into_iter().collect())
}

#[async_trait]
impl crate::repo::PlanReads for super::PgRepository {
    async fn thread_history_ids(
        &self,
        mailbox_id: i64,
        provider_thread_ids: &[String],
    ) -> Result<HashMap<String, StoredThread>, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        thread_history_ids(&mut conn, mailbox_id, provider_thread_ids).await
    }

    async fn stored_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        stored_message_ids(&mut conn, mailbox_id, provider_message_ids).await
    }

    async fn stored_thread_message_ids(
        &self,
        mailbox_id: i64,
        provider_thread_id: &str,
    ) -> Result<HashSet<String>, RepoError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT provider_message_id FROM mail_messages
             WHERE mailbox_id = $1 AND provider_thread_id = $2",
        )
        .bind(mailbox_id)
        .bind(provider_thread_id)
        .fetch_all(&self.pool)
        .await
        .map_err(RepoError::db("read a thread's stored message ids"))?;
        Ok(ids.into_iter().collect())
    }

    async fn stored_labels(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        stored_labels(&mut conn, mailbox_id, provider_message_ids).await
    }
}
