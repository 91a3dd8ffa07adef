//! SQLite: opening the embedded database, and the lock files beside it.
//!
//! The database is one file in WAL mode (readers never wait for the writer)
//! with `synchronous = FULL`: a transaction the ledger reports committed is on
//! disk even if the machine loses power, which is the ledger's promise (NORMAL
//! may lose the last transactions on power loss; see the README for the
//! measured cost). Foreign keys are on; a writer waits up to `BUSY_TIMEOUT`
//! for another to finish instead of failing.
//!
//! Beside `mailingest.db` sits `mailingest.db.locks/`: advisory file locks
//! (`flock`) that the operating system drops the moment their process dies,
//! which is what PostgreSQL's advisory locks give the server backend. One per
//! mailbox marks a live run; one serialises migrations.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::repo::RepoError;

/// How long a statement waits for another connection's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// When SQLite's commit returns. mailingest runs `Full`; `Normal` exists so a
/// benchmark can show what `Full` costs (`cargo bench -p ingest --bench
/// sqlite_durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk when the commit returns: survives power loss.
    Full,
    /// On disk at the next checkpoint: the last transactions may be lost on
    /// power loss (not on a process crash).
    Normal,
}

pub(crate) async fn open(
    path: &Path,
    max_connections: u32,
    durability: Durability,
) -> Result<SqlitePool, RepoError> {
    let target = || format!("the SQLite database {}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| RepoError::Connect {
            target: target(),
            cause: format!("cannot create {}: {e}", dir.display()),
        })?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        })
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    SqlitePoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(BUSY_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|err| RepoError::Connect {
            target: target(),
            cause: match &err {
                sqlx::Error::Database(db) => db.message().to_owned(),
                other => other.to_string(),
            },
        })
}

/// The lock files of one database.
#[derive(Debug, Clone)]
pub(crate) struct Locks {
    dir: PathBuf,
}

impl Locks {
    pub(crate) fn beside(db: &Path) -> Locks {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(".locks");
        Locks {
            dir: db.with_file_name(name),
        }
    }

    fn open(&self, name: &str) -> Result<File, RepoError> {
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| {
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(self.dir.join(name))
            })
            .map_err(|e| RepoError::Connect {
                target: format!("the lock directory {}", self.dir.display()),
                cause: e.to_string(),
            })
    }

    /// The run lock of a mailbox, if no live process holds it. Dropping the
    /// file releases it; so does the death of the process.
    pub(crate) fn try_run_lock(&self, mailbox_id: i64) -> Result<Option<File>, RepoError> {
        let file = self.open(&format!("mailbox-{mailbox_id}.lock"))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(RepoError::Connect {
                target: format!("the lock directory {}", self.dir.display()),
                cause: e.to_string(),
            }),
        }
    }

    /// Waits for the migration lock (held while one process migrates).
    pub(crate) async fn migration(&self) -> Result<File, RepoError> {
        let file = self.open("migrate.lock")?;
        tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| RepoError::Corrupt(format!("migration lock task: {e}")))?
            .map_err(|e| RepoError::Connect {
                target: "the migration lock".into(),
                cause: e.to_string(),
            })
    }
}
