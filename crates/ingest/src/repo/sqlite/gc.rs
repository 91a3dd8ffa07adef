//! SQLite statements of garbage collection (the protocol: `crate::gc`). The
//! transaction is `BEGIN IMMEDIATE`: it holds the database's one write lock, so
//! no writer commits while it claims, removes and releases; a writer that
//! recorded nothing before it inserts its rows anew afterwards. gc works on
//! one org's copies (`blob_copies`, the objects under the org's prefix).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::begin_immediate;
use crate::domain::BlobUpsert;
use crate::repo::{GcTx, PurgeCandidate, RepoError};

pub(super) async fn blobs_with_rows(
    conn: &mut SqliteConnection,
    org: &str,
    sha256s: &[String],
) -> Result<HashSet<String>, RepoError> {
    let list = serde_json::to_string(sha256s).map_err(|source| RepoError::Encode {
        operation: "read blob rows",
        source,
    })?;
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT c.sha256 FROM json_each(?1) AS j
         JOIN blob_copies AS c ON c.org_id = ?2 AND c.sha256 = j.value",
    )
    .bind(list)
    .bind(org)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("read blob rows"))?;
    Ok(found.into_iter().collect())
}

pub(super) struct SqliteGcTx {
    tx: Transaction<'static, Sqlite>,
    org: String,
    claimed: Vec<String>,
}

impl SqliteGcTx {
    pub(super) fn new(tx: Transaction<'static, Sqlite>, org: &str) -> Self {
        SqliteGcTx {
            tx,
            org: org.to_owned(),
            claimed: Vec::new(),
        }
    }
}

#[async_trait]
impl GcTx for SqliteGcTx {
    async fn claim_unrecorded(&mut self, blobs: &[BlobUpsert]) -> Result<Vec<String>, RepoError> {
        let mut claimed = Vec::new();
        for b in blobs {
            let new: Option<String> = sqlx::query_scalar(
                "INSERT INTO blob_copies (org_id, sha256, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (org_id, sha256) DO NOTHING RETURNING sha256",
            )
            .bind(&self.org)
            .bind(&b.sha256)
            .bind(super::now())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(RepoError::db("claim unrecorded blobs"))?;
            claimed.extend(new);
        }
        self.claimed.extend(claimed.iter().cloned());
        Ok(claimed)
    }

    async fn still_open(&mut self) -> Result<(), RepoError> {
        // A partitioned server must not hang gc (and the writers its claims hold).
        let probe = sqlx::query("SELECT 1").execute(&mut *self.tx);
        match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
            Ok(done) => done.map(drop).map_err(RepoError::db("gc transaction")),
            Err(_) => Err(RepoError::Connect {
                target: "the database".into(),
                cause: "gc's transaction did not answer within 5 s".into(),
            }),
        }
    }

    async fn finish(mut self: Box<Self>) -> Result<(), RepoError> {
        for sha in &self.claimed {
            sqlx::query("DELETE FROM blob_copies WHERE org_id = ?1 AND sha256 = ?2")
                .bind(&self.org)
                .bind(sha)
                .execute(&mut *self.tx)
                .await
                .map_err(RepoError::db("release blob claims"))?;
        }
        self.tx.commit().await.map_err(RepoError::db("commit gc"))
    }
}

/// The purge statements (see `RepoTx::mark_purging` and `crate::gc`). Every
/// write transaction holds SQLite's one write lock, so marking, checking and
/// removing are never interleaved with a writer's transaction.
pub(super) mod purge {
    use chrono::{DateTime, Utc};
    use sqlx::SqliteConnection;

    use crate::repo::sql::purge::{
        holders, only_long_deleted_hold, org_of, purge_candidates, purgeable,
    };
    use crate::repo::{PurgeCandidate, RepoError};

    // Every dynamic statement below is built from the constant fragments of
    // repo::shared and placeholders: no value is ever formatted into SQL.
    use sqlx::AssertSqlSafe;

    fn json_list(operation: &'static str, items: &[String]) -> Result<String, RepoError> {
        serde_json::to_string(items).map_err(|source| RepoError::Encode { operation, source })
    }

    pub(crate) async fn candidates(
        conn: &mut SqliteConnection,
        mailbox_id: i64,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError> {
        let sizes: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT b.sha256, bl.size FROM blob_copies b JOIN blobs bl ON bl.sha256 = b.sha256
             WHERE {}
             ORDER BY b.sha256",
            purgeable("?1", "?2")
        )))
        .bind(mailbox_id)
        .bind(deleted_before)
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db("find blobs to purge"))?;
        with_holders(conn, mailbox_id, sizes).await
    }

    async fn with_holders(
        conn: &mut SqliteConnection,
        mailbox_id: i64,
        sizes: Vec<(String, i64)>,
    ) -> Result<Vec<PurgeCandidate>, RepoError> {
        const OP: &str = "read the messages of purged blobs";
        let shas: Vec<String> = sizes.iter().map(|(s, _)| s.clone()).collect();
        let held: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(holders(
            "?1",
            "SELECT value FROM json_each(?2)",
        )))
        .bind(mailbox_id)
        .bind(json_list(OP, &shas)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        Ok(purge_candidates(sizes, held))
    }

    pub(crate) async fn mark_purging(
        conn: &mut SqliteConnection,
        mailbox_id: i64,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError> {
        sqlx::query_scalar(AssertSqlSafe(format!(
            "UPDATE blob_copies AS b SET state = 'purging'
             WHERE {}
             RETURNING sha256",
            purgeable("?1", "?2")
        )))
        .bind(mailbox_id)
        .bind(deleted_before)
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db("mark blobs purging"))
    }

    pub(crate) async fn lock_purging(
        conn: &mut SqliteConnection,
        mailbox_id: i64,
        sha256s: &[String],
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError> {
        const OP: &str = "check blobs to purge";
        let list = json_list(OP, sha256s)?;
        let sizes: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT b.sha256, bl.size FROM blob_copies b JOIN blobs bl ON bl.sha256 = b.sha256
             WHERE b.org_id = {} AND b.sha256 IN (SELECT value FROM json_each(?3))
               AND b.state = 'purging' AND {}
             ORDER BY b.sha256",
            org_of("?1"),
            only_long_deleted_hold("b.sha256", "?1", "?2")
        )))
        .bind(mailbox_id)
        .bind(deleted_before)
        .bind(&list)
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        let still: Vec<String> = sizes.iter().map(|(s, _)| s.clone()).collect();
        // Referenced again since they were marked: back to present.
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE blob_copies SET state = 'present'
             WHERE org_id = {} AND sha256 IN (SELECT value FROM json_each(?1))
               AND state = 'purging' AND sha256 NOT IN (SELECT value FROM json_each(?2))",
            org_of("?3")
        )))
        .bind(&list)
        .bind(json_list(OP, &still)?)
        .bind(mailbox_id)
        .execute(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        with_holders(conn, mailbox_id, sizes).await
    }

    pub(crate) async fn mark_purged(
        conn: &mut SqliteConnection,
        mailbox_id: i64,
        sha256s: &[String],
    ) -> Result<(), RepoError> {
        const OP: &str = "mark blobs purged";
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE blob_copies SET state = 'purged', purged_at = ?2
             WHERE org_id = {} AND sha256 IN (SELECT value FROM json_each(?1))
               AND state = 'purging'",
            org_of("?3")
        )))
        .bind(json_list(OP, sha256s)?)
        .bind(super::super::now())
        .bind(mailbox_id)
        .execute(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        Ok(())
    }
}

#[async_trait]
impl crate::repo::GcStore for super::SqliteRepository {
    async fn purge_candidates(
        &self,
        mailbox_id: i64,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError> {
        let mut conn = self.conn().await?;
        purge::candidates(&mut conn, mailbox_id, deleted_before).await
    }

    async fn blobs_with_rows(
        &self,
        org: &str,
        sha256s: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        let mut conn = self.conn().await?;
        blobs_with_rows(&mut conn, org, sha256s).await
    }

    async fn blobs_present(
        &self,
        org: &str,
        sha256s: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        let list = serde_json::to_string(sha256s).map_err(|source| RepoError::Encode {
            operation: "read present blobs",
            source,
        })?;
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT c.sha256 FROM json_each(?1) AS j
             JOIN blob_copies AS c ON c.org_id = ?2 AND c.sha256 = j.value
             WHERE c.state = 'present'",
        )
        .bind(list)
        .bind(org)
        .fetch_all(&self.pool)
        .await
        .map_err(RepoError::db("read present blobs"))?;
        Ok(found.into_iter().collect())
    }

    async fn begin_gc(&self, org: &str) -> Result<Box<dyn GcTx>, RepoError> {
        self.file.check(&self.path)?;
        let tx = begin_immediate(&self.pool, "begin gc").await?;
        Ok(Box::new(SqliteGcTx::new(tx, org)))
    }
}
