//! PostgreSQL implementation of the repository: the production backend
//! (many workers on many hosts, one database).
//!
//! [`PgRepository`] is the repository over a pool; [`PgTx`] is one fenced
//! transaction. Each submodule holds one role's statements and implements
//! that role (`mailboxes.rs`: `Mailboxes`, …); the file set mirrors
//! `super::sqlite`. Two batch upserts are also public as free functions over
//! a `PgConnection`, for the race test that runs them in transactions of its
//! own, below the run lease.

mod connect;
mod feed;
mod gc;
mod labels;
mod mailboxes;
mod orphans;
mod quarantine;
mod quota;
mod runs;
pub(crate) mod schema;
mod tx;
mod upserts;
mod verify_schedule;

use sqlx::PgPool;

pub use feed::FEED_LOCK_CLASS;
pub use runs::RUN_LOCK_CLASS;
pub use tx::PgTx;
// For tests/repo_race.rs, which races raw transactions below the lease.
pub use upserts::{upsert_messages, upsert_threads};

use super::RepoError;

/// The repository over a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgRepository {
    pool: PgPool,
}

impl PgRepository {
    pub fn new(pool: PgPool) -> Self {
        PgRepository { pool }
    }

    /// Connects to `url` with a pool of up to `max_connections`; a refused or
    /// unreachable server is reported at once, naming host and port.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, RepoError> {
        Ok(PgRepository::new(
            connect::connect(url, max_connections).await?,
        ))
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The portable statements (`repo::sql`) run on this pool.
impl super::sql::HasDb for PgRepository {
    fn db(&self) -> super::sql::Db<'_> {
        super::sql::Db::Pg(&self.pool)
    }
}
