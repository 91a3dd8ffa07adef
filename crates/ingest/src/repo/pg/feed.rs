//! PostgreSQL: the change feed's consumers, held like a run, and the
//! LISTEN/NOTIFY wake-up of `changes --follow`.
//!
//! A consumer is held by a session-level advisory lock on a dedicated
//! connection (class "FEED", key: the consumer's id folded), which PostgreSQL
//! drops the moment the process dies: after a `kill -9` the next process
//! takes over at once. As for a run, the lock alone is not enough (its
//! connection can drop while the process goes on), so taking a consumer also
//! writes a new fencing token into its row, and every acknowledgement proves
//! that token in its own transaction: a process that lost the consumer moves
//! no position.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection};

use crate::repo::feed::{ConsumerGuard, new_token};
use crate::repo::sql::{self, HasDb};
use crate::repo::{
    ChangeFeed, ConsumerPosition, FeedMailbox, FeedRow, HeldConsumer, LedgerWaiter, RepoError,
};

/// First half of a consumer lock's key: ASCII "FEED" (runs use "MRUN").
pub const FEED_LOCK_CLASS: i32 = 0x4645_4544;

/// The channel `ledger_events_notify()` announces commits on.
const CHANNEL: &str = "mailingest_ledger";

fn lock_key(consumer_id: i64) -> i32 {
    // Fold to 32 bits: consumers sharing a folded key only share a lock.
    (consumer_id ^ (consumer_id >> 32)) as i32
}

async fn positions_of(
    pool: &sqlx::PgPool,
    consumer_id: i64,
) -> Result<BTreeMap<i64, i64>, RepoError> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT mailbox_id, seq FROM feed_positions WHERE consumer_id = $1")
            .bind(consumer_id)
            .fetch_all(pool)
            .await
            .map_err(RepoError::db("read consumer positions"))?;
    Ok(rows.into_iter().collect())
}

struct Listener(PgListener);

#[async_trait]
impl LedgerWaiter for Listener {
    async fn wait(&mut self, at_most: Duration) -> Result<(), RepoError> {
        match tokio::time::timeout(at_most, self.0.recv()).await {
            Ok(Ok(_)) | Err(_) => Ok(()),
            Ok(Err(e)) => {
                // The listener reconnects on its next call; meanwhile the
                // follower polls, so a lost connection delays, never stalls.
                tracing::warn!(error = %e, "ledger listener lost its connection; polling until it is back");
                tokio::time::sleep(at_most).await;
                Ok(())
            }
        }
    }
}

#[async_trait]
impl ChangeFeed for super::PgRepository {
    async fn feed_mailboxes(&self, org: &str) -> Result<Vec<FeedMailbox>, RepoError> {
        sql::feed::feed_mailboxes(self.db(), org).await
    }

    async fn feed_events(
        &self,
        mailbox_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<FeedRow>, RepoError> {
        sql::feed::feed_events(self.db(), mailbox_id, after, limit).await
    }

    async fn label_names(
        &self,
        mailbox_id: i64,
        label_ids: &[String],
    ) -> Result<HashMap<String, String>, RepoError> {
        sql::feed::label_names(self.db(), mailbox_id, label_ids).await
    }

    async fn hold_consumer(&self, org: &str, name: &str) -> Result<HeldConsumer, RepoError> {
        let pool = &self.pool;
        sqlx::query(
            "INSERT INTO feed_consumers (org_id, name) VALUES ($1, $2)
             ON CONFLICT (org_id, name) DO NOTHING",
        )
        .bind(org)
        .bind(name)
        .execute(pool)
        .await
        .map_err(RepoError::db("register consumer"))?;
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM feed_consumers WHERE org_id = $1 AND name = $2")
                .bind(org)
                .bind(name)
                .fetch_one(pool)
                .await
                .map_err(RepoError::db("read consumer"))?;
        let mut lock_conn = PgConnection::connect_with(&pool.connect_options())
            .await
            .map_err(RepoError::db("open consumer lock connection"))?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(FEED_LOCK_CLASS)
            .bind(lock_key(id))
            .fetch_one(&mut lock_conn)
            .await
            .map_err(RepoError::db("take consumer lock"))?;
        if !locked {
            return Err(RepoError::ConsumerBusy {
                name: name.to_owned(),
            });
        }
        let token = new_token(id);
        // Waits for an acknowledgement in flight (it locks the row), so the
        // previous holder either committed it or is fenced out.
        sqlx::query(
            "UPDATE feed_consumers SET holder_token = $2, holder_host = $3, holder_pid = $4,
                    heartbeat_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(&token)
        .bind(std::env::var("HOSTNAME").ok())
        .bind(std::process::id() as i32)
        .execute(pool)
        .await
        .map_err(RepoError::db("take consumer"))?;
        Ok(HeldConsumer {
            id,
            name: name.to_owned(),
            token,
            positions: positions_of(pool, id).await?,
            guard: ConsumerGuard::Pg(tokio::sync::Mutex::new(lock_conn)),
        })
    }

    async fn ack_consumer(
        &self,
        held: &HeldConsumer,
        positions: &[(i64, i64)],
    ) -> Result<(), RepoError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(RepoError::db("begin acknowledgement"))?;
        let fenced = sqlx::query(
            "UPDATE feed_consumers SET heartbeat_at = now() WHERE id = $1 AND holder_token = $2",
        )
        .bind(held.id)
        .bind(&held.token)
        .execute(&mut *tx)
        .await
        .map_err(RepoError::db("prove consumer"))?;
        if fenced.rows_affected() == 0 {
            return Err(RepoError::ConsumerFenced {
                name: held.name.clone(),
            });
        }
        let (mailboxes, seqs): (Vec<i64>, Vec<i64>) = positions.iter().copied().unzip();
        sqlx::query(
            "INSERT INTO feed_positions (consumer_id, mailbox_id, seq, acked_at)
             SELECT $1, m, s, now() FROM unnest($2::bigint[], $3::bigint[]) AS p(m, s)
             ON CONFLICT (consumer_id, mailbox_id) DO UPDATE
                SET seq = excluded.seq, acked_at = excluded.acked_at
                WHERE feed_positions.seq < excluded.seq",
        )
        .bind(held.id)
        .bind(&mailboxes)
        .bind(&seqs)
        .execute(&mut *tx)
        .await
        .map_err(RepoError::db("acknowledge events"))?;
        tx.commit()
            .await
            .map_err(RepoError::db("commit acknowledgement"))
    }

    async fn consumer_still_held(&self, held: &HeldConsumer) -> Result<bool, RepoError> {
        let ConsumerGuard::Pg(conn) = &held.guard else {
            return Ok(false);
        };
        // The lock lives as long as its connection: a failed ping is a lost lock.
        if conn.lock().await.ping().await.is_err() {
            return Ok(false);
        }
        let token: Option<String> =
            sqlx::query_scalar("SELECT holder_token FROM feed_consumers WHERE id = $1")
                .bind(held.id)
                .fetch_one(&self.pool)
                .await
                .map_err(RepoError::db("read consumer"))?;
        Ok(token.as_deref() == Some(held.token.as_str()))
    }

    async fn consumer_positions(&self, org: &str) -> Result<Vec<ConsumerPosition>, RepoError> {
        sql::feed::consumer_positions(self.db(), org).await
    }

    async fn ledger_waiter(&self) -> Result<Box<dyn LedgerWaiter>, RepoError> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(RepoError::db("open ledger listener"))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(RepoError::db("listen for ledger commits"))?;
        Ok(Box::new(Listener(listener)))
    }
}
