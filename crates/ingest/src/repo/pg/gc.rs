//! PostgreSQL statements of garbage collection (the protocol: `crate::gc`). A
//! placeholder row is an uncommitted insert: a writer inserting the same hash
//! waits for this transaction, which deletes it before committing, so the
//! writer's insert then goes through and reports the row as new.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::upserts::json_payload;
use crate::domain::BlobUpsert;
use crate::repo::{GcTx, PurgeCandidate, RepoError};

pub(super) struct PgGcTx {
    tx: Transaction<'static, Postgres>,
    claimed: Vec<String>,
}

impl PgGcTx {
    pub(super) fn new(tx: Transaction<'static, Postgres>) -> Self {
        PgGcTx {
            tx,
            claimed: Vec::new(),
        }
    }
}

#[async_trait]
impl GcTx for PgGcTx {
    async fn claim_unrecorded(&mut self, blobs: &[BlobUpsert]) -> Result<Vec<String>, RepoError> {
        const OP: &str = "claim unrecorded blobs";
        // Sorted: writers insert their rows in hash order too, so neither side can deadlock.
        let mut rows: Vec<&BlobUpsert> = blobs.iter().collect();
        rows.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        rows.dedup_by(|a, b| a.sha256 == b.sha256);
        let payload = json_payload(OP, &rows)?;
        let claimed: Vec<String> = sqlx::query_scalar(
            r#"
            INSERT INTO blobs (sha256, size, storage_key)
            SELECT sha256, size, storage_key
            FROM jsonb_to_recordset($1::jsonb) AS x(sha256 text, size bigint, storage_key text)
            ORDER BY sha256
            ON CONFLICT (sha256) DO NOTHING
            RETURNING sha256"#,
        )
        .bind(payload)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(RepoError::db(OP))?;
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
        sqlx::query("DELETE FROM blobs WHERE sha256 = ANY($1::text[])")
            .bind(&self.claimed)
            .execute(&mut *self.tx)
            .await
            .map_err(RepoError::db("release blob claims"))?;
        self.tx.commit().await.map_err(RepoError::db("commit gc"))
    }
}

/// The purge statements (see `RepoTx::mark_purging` and `crate::gc`).
pub(super) mod purge {
    use chrono::{DateTime, Utc};
    use sqlx::PgConnection;

    use crate::repo::sql::purge::{holders, only_long_deleted_hold, purge_candidates, purgeable};
    use crate::repo::{PurgeCandidate, RepoError};

    // Every dynamic statement below is built from the constant fragments of
    // repo::shared and placeholders: no value is ever formatted into SQL.
    use sqlx::AssertSqlSafe;

    const CUTOFF: &str = "$2::timestamptz";

    pub(crate) async fn candidates(
        conn: &mut PgConnection,
        mailbox_id: i64,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError> {
        let sizes: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT b.sha256, b.size FROM blobs b
             WHERE {}
             ORDER BY b.sha256",
            purgeable("$1", CUTOFF)
        )))
        .bind(mailbox_id)
        .bind(deleted_before)
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db("find blobs to purge"))?;
        with_holders(conn, mailbox_id, sizes).await
    }

    async fn with_holders(
        conn: &mut PgConnection,
        mailbox_id: i64,
        sizes: Vec<(String, i64)>,
    ) -> Result<Vec<PurgeCandidate>, RepoError> {
        let shas: Vec<&str> = sizes.iter().map(|(s, _)| s.as_str()).collect();
        let held: Vec<(String, String)> =
            sqlx::query_as(AssertSqlSafe(holders("$1", "SELECT unnest($2::text[])")))
                .bind(mailbox_id)
                .bind(&shas)
                .fetch_all(&mut *conn)
                .await
                .map_err(RepoError::db("read the messages of purged blobs"))?;
        Ok(purge_candidates(sizes, held))
    }

    pub(crate) async fn mark_purging(
        conn: &mut PgConnection,
        mailbox_id: i64,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError> {
        // Rows locked in hash order, as writers lock them: no deadlock with a
        // writer setting one of them back to present.
        sqlx::query_scalar(AssertSqlSafe(format!(
            "WITH doomed AS (
                 SELECT b.sha256 FROM blobs b WHERE {}
                 ORDER BY b.sha256 FOR NO KEY UPDATE
             )
             UPDATE blobs SET state = 'purging' FROM doomed
             WHERE blobs.sha256 = doomed.sha256
             RETURNING blobs.sha256",
            purgeable("$1", CUTOFF)
        )))
        .bind(mailbox_id)
        .bind(deleted_before)
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db("mark blobs purging"))
    }

    pub(crate) async fn lock_purging(
        conn: &mut PgConnection,
        mailbox_id: i64,
        sha256s: &[String],
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError> {
        const OP: &str = "lock blobs to purge";
        // The lock first: a writer recording one of them sets it back to present and holds
        // the row until it commits, so this waits for it and then skips the row.
        let locked: Vec<(String, i64)> = sqlx::query_as(
            "SELECT sha256, size FROM blobs WHERE sha256 = ANY($1) AND state = 'purging'
             ORDER BY sha256 FOR UPDATE",
        )
        .bind(sha256s)
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        // Then the check, in a statement of its own: it sees every commit up to now,
        // including references made after the blobs were marked.
        let shas: Vec<&str> = locked.iter().map(|(s, _)| s.as_str()).collect();
        let still: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT x FROM unnest($3::text[]) AS x WHERE {}",
            only_long_deleted_hold("x", "$1", CUTOFF)
        )))
        .bind(mailbox_id)
        .bind(deleted_before)
        .bind(&shas)
        .fetch_all(&mut *conn)
        .await
        .map_err(RepoError::db(OP))?;
        let kept: Vec<&str> = shas
            .iter()
            .copied()
            .filter(|s| !still.iter().any(|t| t == s))
            .collect();
        sqlx::query("UPDATE blobs SET state = 'present' WHERE sha256 = ANY($1)")
            .bind(&kept)
            .execute(&mut *conn)
            .await
            .map_err(RepoError::db(OP))?;
        let sizes = locked
            .into_iter()
            .filter(|(s, _)| still.contains(s))
            .collect();
        with_holders(conn, mailbox_id, sizes).await
    }

    pub(crate) async fn mark_purged(
        conn: &mut PgConnection,
        sha256s: &[String],
    ) -> Result<(), RepoError> {
        sqlx::query(
            "UPDATE blobs SET state = 'purged', purged_at = now()
             WHERE sha256 = ANY($1) AND state = 'purging'",
        )
        .bind(sha256s)
        .execute(&mut *conn)
        .await
        .map_err(RepoError::db("mark blobs purged"))?;
        Ok(())
    }
}

#[async_trait]
impl crate::repo::GcStore for super::PgRepository {
    async fn purge_candidates(
        &self,
        mailbox_id: i64,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        purge::candidates(&mut conn, mailbox_id, deleted_before).await
    }

    async fn blobs_with_rows(&self, sha256s: &[String]) -> Result<HashSet<String>, RepoError> {
        let pool = &self.pool;
        let found: Vec<String> =
            sqlx::query_scalar("SELECT sha256 FROM blobs WHERE sha256 = ANY($1::text[])")
                .bind(sha256s)
                .fetch_all(pool)
                .await
                .map_err(RepoError::db("read blob rows"))?;
        Ok(found.into_iter().collect())
    }

    async fn blobs_present(&self, sha256s: &[String]) -> Result<HashSet<String>, RepoError> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT sha256 FROM blobs WHERE sha256 = ANY($1::text[]) AND state = 'present'",
        )
        .bind(sha256s)
        .fetch_all(&self.pool)
        .await
        .map_err(RepoError::db("read present blobs"))?;
        Ok(found.into_iter().collect())
    }

    async fn begin_gc(&self) -> Result<Box<dyn GcTx>, RepoError> {
        let mut tx = self.pool.begin().await.map_err(RepoError::db("begin gc"))?;
        // Its placeholders keep writers off while objects go; a server-side
        // idle timeout ending it silently mid-removal must not apply.
        sqlx::query("SET LOCAL idle_in_transaction_session_timeout = 0")
            .execute(&mut *tx)
            .await
            .map_err(RepoError::db("begin gc"))?;
        // PostgreSQL 17's transaction_timeout likewise (older servers lack it).
        sqlx::query(
            "SELECT set_config('transaction_timeout', '0', true)
             WHERE current_setting('server_version_num')::int >= 170000",
        )
        .execute(&mut *tx)
        .await
        .map_err(RepoError::db("begin gc"))?;
        Ok(Box::new(PgGcTx::new(tx)))
    }
}
