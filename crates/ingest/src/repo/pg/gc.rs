//! PostgreSQL statements of garbage collection (the protocol: `crate::gc`).
//! gc works on one org's copies (`blob_copies`, the objects under the org's
//! prefix). A placeholder row is an uncommitted insert of a copy row: a writer
//! of the org inserting the same hash waits for this transaction, which
//! deletes it before committing, so the writer's insert then goes through and
//! reports the row as new.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::upserts::json_payload;
use crate::domain::BlobUpsert;
use crate::repo::{GcTx, PurgeCandidate, RepoError};

pub(super) struct PgGcTx {
    tx: Transaction<'static, Postgres>,
    org: String,
    claimed: Vec<String>,
}

impl PgGcTx {
    pub(super) fn new(tx: Transaction<'static, Postgres>, org: &str) -> Self {
        PgGcTx {
            tx,
            org: org.to_owned(),
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
            INSERT INTO blob_copies (org_id, sha256)
            SELECT $2, sha256
            FROM jsonb_to_recordset($1::jsonb) AS x(sha256 text)
            ORDER BY sha256
            ON CONFLICT (org_id, sha256) DO NOTHING
            RETURNING sha256"#,
        )
        .bind(payload)
        .bind(&self.org)
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
        sqlx::query("DELETE FROM blob_copies WHERE org_id = $2 AND sha256 = ANY($1::text[])")
            .bind(&self.claimed)
            .bind(&self.org)
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

    use crate::repo::sql::purge::{
        holders, only_long_deleted_hold, org_of, purge_candidates, purgeable,
    };
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
            "SELECT b.sha256, bl.size FROM blob_copies b JOIN blobs bl ON bl.sha256 = b.sha256
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
                 SELECT b.org_id, b.sha256 FROM blob_copies b WHERE {}
                 ORDER BY b.sha256 FOR NO KEY UPDATE
             )
             UPDATE blob_copies c SET state = 'purging' FROM doomed
             WHERE c.org_id = doomed.org_id AND c.sha256 = doomed.sha256
             RETURNING c.sha256",
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
        let locked: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT c.sha256, bl.size FROM blob_copies c JOIN blobs bl ON bl.sha256 = c.sha256
             WHERE c.org_id = {} AND c.sha256 = ANY($1) AND c.state = 'purging'
             ORDER BY c.sha256 FOR UPDATE OF c",
            org_of("$2")
        )))
        .bind(sha256s)
        .bind(mailbox_id)
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
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE blob_copies SET state = 'present' WHERE org_id = {} AND sha256 = ANY($1)",
            org_of("$2")
        )))
        .bind(&kept)
        .bind(mailbox_id)
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
        mailbox_id: i64,
        sha256s: &[String],
    ) -> Result<(), RepoError> {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE blob_copies SET state = 'purged', purged_at = now()
             WHERE org_id = {} AND sha256 = ANY($1) AND state = 'purging'",
            org_of("$2")
        )))
        .bind(sha256s)
        .bind(mailbox_id)
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

    async fn blobs_with_rows(
        &self,
        org: &str,
        sha256s: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT sha256 FROM blob_copies WHERE org_id = $1 AND sha256 = ANY($2::text[])",
        )
        .bind(org)
        .bind(sha256s)
        .fetch_all(&self.pool)
        .await
        .map_err(RepoError::db("read blob rows"))?;
        Ok(found.into_iter().collect())
    }

    async fn blobs_present(
        &self,
        org: &str,
        sha256s: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT sha256 FROM blob_copies
             WHERE org_id = $1 AND sha256 = ANY($2::text[]) AND state = 'present'",
        )
        .bind(org)
        .bind(sha256s)
        .fetch_all(&self.pool)
        .await
        .map_err(RepoError::db("read present blobs"))?;
        Ok(found.into_iter().collect())
    }

    async fn begin_gc(&self, org: &str) -> Result<Box<dyn GcTx>, RepoError> {
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
        Ok(Box::new(PgGcTx::new(tx, org)))
    }
}
