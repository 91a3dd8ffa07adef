//! PostgreSQL: [`PgTx`], one fenced transaction (`RepoTx`). It proved the
//! run's lease when it began (`runs::prove_lease`); each write goes to the
//! module that holds its statement (`repo::tx::impl_repo_tx`), all inside
//! this one transaction.

use sqlx::{Postgres, Transaction};

use crate::repo::Fence;
use crate::repo::tx::impl_repo_tx;

/// One fenced PostgreSQL transaction (see [`RepoTx`](crate::repo::RepoTx)).
pub struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
    pub(super) fence: Fence,
}

impl_repo_tx!(PgTx, ledger::append);
