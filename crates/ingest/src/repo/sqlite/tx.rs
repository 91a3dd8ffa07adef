//! SQLite: [`SqliteTx`], one fenced `IMMEDIATE` transaction (`RepoTx`). It
//! proved the run's lease when it began (`runs::prove_lease`) and holds the
//! write lock until it ends; each write goes to the module that holds its
//! statement (`repo::tx::impl_repo_tx`).

use sqlx::{Sqlite, Transaction};

use crate::repo::Fence;
use crate::repo::tx::impl_repo_tx;

/// One fenced SQLite write transaction (see [`RepoTx`](crate::repo::RepoTx)).
pub struct SqliteTx {
    pub(super) tx: Transaction<'static, Sqlite>,
    pub(super) fence: Fence,
}

impl_repo_tx!(SqliteTx, ledger::sqlite::append);
