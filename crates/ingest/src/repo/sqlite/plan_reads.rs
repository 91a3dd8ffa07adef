//! SQLite: the reads an engine plans with (`PlanReads`), by natural key; the
//! keys travel as one JSON array parameter.

use super::upserts::json_text;
use crate::repo::{Coverage, RepoError, StoredThread};
use async_trait::async_trait;
use chrono::DateTime;
use chrono::Utc;
use sqlx::SqliteConnection;
use std::collections::HashMap;
use std::collections::HashSet;
/// The stored historyId and coverage of each listed thread that is stored at all.
pub(crate) async fn thread_history_ids(
    conn: &mut SqliteConnection,
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
        "SELECT provider_thread_id, history_id, complete_since, complete_until
         FROM mail_threads
         WHERE mailbox_id = ?1 AND provider_thread_id IN (SELECT value FROM json_each(?2))",
    )
    .bind(mailbox_id)
    .bind(json_text("read thread history ids", provider_thread_ids)?)
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
pub(crate) async fn stored_message_ids(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
) -> Result<HashSet<String>, RepoError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT provider_message_id FROM mail_messages
         WHERE mailbox_id = ?1 AND provider_message_id IN (SELECT value FROM json_each(?2))",
    )
    .bind(mailbox_id)
    .bind(json_text("read stored message ids", provider_message_ids)?)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("read stored message ids"))?;
    Ok(rows.into_iter().collect())
}

/// The stored labels of each of the given messages that is stored (deleted or not).
pub(crate) async fn stored_labels(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
) -> Result<HashMap<String, Vec<String>>, RepoError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT provider_message_id, label_ids FROM mail_messages
         WHERE mailbox_id = ?1 AND provider_message_id IN (SELECT value FROM json_each(?2))",
    )
    .bind(mailbox_id)
    .bind(json_text("read stored labels", provider_message_ids)?)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("read stored labels"))?;
    rows.into_iter()
        .map(|(id, labels)| {
            let labels: Vec<String> = serde_json::from_str(&labels).map_err(|e| {
                RepoError::Corrupt(format!("labels of message {id} are not a JSON array: {e}"))
            })?;
            Ok((id, labels))
        })
        .collect()
}

#[async_trait]
impl crate::repo::PlanReads for super::SqliteRepository {
    async fn thread_history_ids(
        &self,
        mailbox_id: i64,
        provider_thread_ids: &[String],
    ) -> Result<HashMap<String, StoredThread>, RepoError> {
        thread_history_ids(&mut *self.conn().await?, mailbox_id, provider_thread_ids).await
    }

    async fn stored_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        stored_message_ids(&mut *self.conn().await?, mailbox_id, provider_message_ids).await
    }

    async fn stored_thread_message_ids(
        &self,
        mailbox_id: i64,
        provider_thread_id: &str,
    ) -> Result<HashSet<String>, RepoError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT provider_message_id FROM mail_messages
             WHERE mailbox_id = ?1 AND provider_thread_id = ?2",
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
        stored_labels(&mut *self.conn().await?, mailbox_id, provider_message_ids).await
    }
}
