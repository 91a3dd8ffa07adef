//! SQLite: the change feed's consumers, held without a server, and the
//! short poll of `changes --follow`.
//!
//! A consumer is held by a lock file per consumer beside the database
//! (`connect::Locks::try_hold_consumer`), which the operating system drops
//! when the process dies. Taking it also writes a new fencing token into the
//! consumer's row, and every acknowledgement proves that token inside a
//! `BEGIN IMMEDIATE` transaction (SQLite's one write lock), as a run proves
//! its lease.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;

use super::{begin_immediate, now};
use crate::repo::feed::{ConsumerGuard, new_token};
use crate::repo::sql::{self, HasDb};
use crate::repo::{
    ChangeFeed, ConsumerPosition, FeedMailbox, FeedRow, HeldConsumer, LedgerWaiter, RepoError,
};

/// How often a follower looks for new events: well inside the feed's
/// one-second promise, and one index probe per mailbox each time.
const POLL: Duration = Duration::from_millis(200);

struct Poll;

#[async_trait]
impl LedgerWaiter for Poll {
    async fn wait(&mut self, at_most: Duration) -> Result<(), RepoError> {
        tokio::time::sleep(at_most.min(POLL)).await;
        Ok(())
    }
}

#[async_trait]
impl ChangeFeed for super::SqliteRepository {
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
        let mut tx = begin_immediate(&self.pool, "register consumer").await?;
        sqlx::query(
            "INSERT INTO feed_consumers (org_id, name) VALUES ($1, $2)
             ON CONFLICT (org_id, name) DO NOTHING",
        )
        .bind(org)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(RepoError::db("register consumer"))?;
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM feed_consumers WHERE org_id = $1 AND name = $2")
                .bind(org)
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(RepoError::db("read consumer"))?;
        let Some(lock) = self.locks.try_hold_consumer(id)? else {
            return Err(RepoError::ConsumerBusy {
                name: name.to_owned(),
            });
        };
        let token = new_token(id);
        sqlx::query(
            "UPDATE feed_consumers SET holder_token = $2, holder_host = $3, holder_pid = $4,
                    heartbeat_at = $5
             WHERE id = $1",
        )
        .bind(id)
        .bind(&token)
        .bind(std::env::var("HOSTNAME").ok())
        .bind(i64::from(std::process::id()))
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(RepoError::db("take consumer"))?;
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT mailbox_id, seq FROM feed_positions WHERE consumer_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(RepoError::db("read consumer positions"))?;
        tx.commit().await.map_err(RepoError::db("take consumer"))?;
        Ok(HeldConsumer {
            id,
            name: name.to_owned(),
            token,
            positions: rows.into_iter().collect::<BTreeMap<_, _>>(),
            guard: ConsumerGuard::Sqlite(lock),
        })
    }

    async fn ack_consumer(
        &self,
        held: &HeldConsumer,
        positions: &[(i64, i64)],
    ) -> Result<(), RepoError> {
        self.file.check(&self.path)?;
        let mut tx = begin_immediate(&self.pool, "begin acknowledgement").await?;
        let at = now();
        let fenced = sqlx::query(
            "UPDATE feed_consumers SET heartbeat_at = $3 WHERE id = $1 AND holder_token = $2",
        )
        .bind(held.id)
        .bind(&held.token)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(RepoError::db("prove consumer"))?;
        if fenced.rows_affected() == 0 {
            return Err(RepoError::ConsumerFenced {
                name: held.name.clone(),
            });
        }
        for (mailbox_id, seq) in positions {
            sqlx::query(
                "INSERT INTO feed_positions (consumer_id, mailbox_id, seq, acked_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (consumer_id, mailbox_id) DO UPDATE
                    SET seq = excluded.seq, acked_at = excluded.acked_at
                    WHERE feed_positions.seq < excluded.seq",
            )
            .bind(held.id)
            .bind(mailbox_id)
            .bind(seq)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(RepoError::db("acknowledge events"))?;
        }
        tx.commit()
            .await
            .map_err(RepoError::db("commit acknowledgement"))
    }

    async fn consumer_still_held(&self, held: &HeldConsumer) -> Result<bool, RepoError> {
        // The lock file is ours for as long as the process lives; the token
        // tells whether another process took the consumer all the same.
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
        Ok(Box::new(Poll))
    }
}
