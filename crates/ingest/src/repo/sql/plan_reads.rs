//! The reads an engine plans with ([`PlanReads`]), by natural key, once for
//! both backends; how a list of keys is looked up is the dialect's
//! (`Dialect::rows_by_key`).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::instrument;

use super::{HasDb, IdList, Labels, on_either};
use crate::domain::Coverage;
use crate::repo::{PlanReads, RepoError, StoredThread};

#[async_trait]
impl<B: HasDb> PlanReads for B {
    #[instrument(skip_all, fields(rows = provider_thread_ids.len()))]
    async fn thread_history_ids(
        &self,
        mailbox_id: i64,
        provider_thread_ids: &[String],
    ) -> Result<HashMap<String, StoredThread>, RepoError> {
        type Row = (
            String,
            Option<i64>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let db = self.db();
        let sql = db.dialect().rows_by_key(
            "provider_thread_id, history_id, complete_since, complete_until",
            "mail_threads",
            "provider_thread_id",
        );
        let rows: Vec<Row> =
            on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(mailbox_id)
                .bind(IdList(provider_thread_ids))
                .fetch_all(pool)
                .await)
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

    #[instrument(skip_all, fields(rows = provider_message_ids.len()))]
    async fn stored_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        let db = self.db();
        let sql = db.dialect().rows_by_key(
            "provider_message_id",
            "mail_messages",
            "provider_message_id",
        );
        let rows: Vec<String> = on_either!(db, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(
            sql.as_str()
        ))
        .bind(mailbox_id)
        .bind(IdList(provider_message_ids))
        .fetch_all(pool)
        .await)
        .map_err(RepoError::db("read stored message ids"))?;
        Ok(rows.into_iter().collect())
    }

    async fn stored_thread_message_ids(
        &self,
        mailbox_id: i64,
        provider_thread_id: &str,
    ) -> Result<HashSet<String>, RepoError> {
        let sql = "SELECT provider_message_id FROM mail_messages
             WHERE mailbox_id = $1 AND provider_thread_id = $2";
        let ids: Vec<String> = on_either!(self.db(), |pool| sqlx::query_scalar(sql)
            .bind(mailbox_id)
            .bind(provider_thread_id)
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("read a thread's stored message ids"))?;
        Ok(ids.into_iter().collect())
    }

    async fn live_message_ids_between(
        &self,
        mailbox_id: i64,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError> {
        let sql = "SELECT provider_message_id FROM mail_messages
             WHERE mailbox_id = $1 AND deleted_at IS NULL
               AND internal_date >= $2 AND internal_date < $3";
        on_either!(self.db(), |pool| sqlx::query_scalar(sql)
            .bind(mailbox_id)
            .bind(since)
            .bind(until)
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("read live message ids in a window"))
    }

    #[instrument(skip_all, fields(rows = provider_message_ids.len()))]
    async fn stored_labels(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, RepoError> {
        let db = self.db();
        let sql = db.dialect().rows_by_key(
            "provider_message_id, label_ids",
            "mail_messages",
            "provider_message_id",
        );
        let rows: Vec<(String, Labels)> =
            on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(mailbox_id)
                .bind(IdList(provider_message_ids))
                .fetch_all(pool)
                .await)
            .map_err(RepoError::db("read stored labels"))?;
        rows.into_iter()
            .map(|(id, labels)| {
                let labels = labels.of_message(&id)?;
                Ok((id, labels))
            })
            .collect()
    }
}
