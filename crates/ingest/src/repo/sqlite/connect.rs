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
//! running run (named by its row's `lock_token`) says its process lives; one
//! serialises creating and migrating the database.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};

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
    let failed = |err: sqlx::Error| RepoError::Connect {
        target: target(),
        cause: match &err {
            sqlx::Error::Database(db) => db.message().to_owned(),
            other => other.to_string(),
        },
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| RepoError::Connect {
            target: target(),
            cause: format!("cannot create {}: {e}", dir.display()),
        })?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        })
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    {
        // WAL is a property of the file, set once: switching a connection's
        // journal mode needs a lock the busy timeout does not wait for, so
        // every connection setting it would fail now and then beside a writer.
        // Done under the setup lock, so two first opens never race.
        let _setup = Locks::beside(path).setup().await?;
        let first = SqliteConnection::connect_with(
            &options
                .clone()
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal),
        )
        .await
        .map_err(failed)?;
        let _ = first.close().await;
    }
    SqlitePoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(BUSY_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(failed)
}

/// Which file the pool opened (device and inode). A database file deleted or
/// replaced under a running process (a restore copied over it, a cleanup
/// removed it) leaves the pool writing into an unlinked inode: every commit
/// would succeed and vanish with the process. Checked before each write
/// transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    /// The identity of the file at `path` now.
    pub(crate) fn of(path: &Path) -> Result<FileIdentity, RepoError> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|e| RepoError::Connect {
            target: format!("the SQLite database {}", path.display()),
            cause: e.to_string(),
        })?;
        Ok(FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Fails unless `path` still names the file that was opened.
    pub(crate) fn check(&self, path: &Path) -> Result<(), RepoError> {
        use std::os::unix::fs::MetadataExt;
        let same = std::fs::metadata(path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if same {
            Ok(())
        } else {
            Err(RepoError::DatabaseFileReplaced {
                path: path.display().to_string(),
            })
        }
    }
}

/// The lock files of one database: `<db>.locks/`, beside the database file.
#[derive(Debug, Clone)]
pub(crate) struct Locks {
    dir: PathBuf,
}

/// A lock this process holds; dropping it removes the file and releases it
/// (as the death of the process would release it).
#[derive(Debug)]
pub(crate) struct HeldLock {
    path: PathBuf,
    _file: File,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        // Removed first, released when the file closes: a checker that opens
        // the path afterwards finds no file, i.e. nobody holding it.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Locks {
    /// The locks of the database at `db`, by the file's canonical path: every
    /// process that opens the file by any path (a symlink to it, a symlinked
    /// directory, a relative path) uses the same locks. A file not created
    /// yet resolves through its directory.
    pub(crate) fn beside(db: &Path) -> Locks {
        let db = match (
            std::fs::canonicalize(db),
            db.parent().filter(|d| !d.as_os_str().is_empty()),
            db.file_name(),
        ) {
            (Ok(file), _, _) => file,
            (Err(_), Some(dir), Some(name)) => std::fs::canonicalize(dir)
                .map(|d| d.join(name))
                .unwrap_or_else(|_| db.to_path_buf()),
            _ => db.to_path_buf(),
        };
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(".locks");
        Locks {
            dir: db.with_file_name(name),
        }
    }

    fn error(&self, e: std::io::Error) -> RepoError {
        RepoError::Connect {
            target: format!("the lock directory {}", self.dir.display()),
            cause: e.to_string(),
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
            .map_err(|e| self.error(e))
    }

    /// Takes the lock of a new run, named by its token.
    pub(crate) fn hold_run(&self, token: &str) -> Result<HeldLock, RepoError> {
        let name = format!("run-{token}.lock");
        let file = self.open(&name)?;
        file.try_lock().map_err(|e| {
            self.error(match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => {
                    std::io::Error::other("a fresh run lock is held")
                }
            })
        })?;
        Ok(HeldLock {
            path: self.dir.join(name),
            _file: file,
        })
    }

    /// Whether a live process holds the run lock named by `token`.
    pub(crate) fn run_is_held(&self, token: &str) -> Result<bool, RepoError> {
        let path = self.dir.join(format!("run-{token}.lock"));
        let file = match OpenOptions::new().write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.error(e)),
        };
        match file.try_lock() {
            // Free: its process is gone. Closing the file releases our probe.
            Ok(()) => Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => Ok(true),
            Err(std::fs::TryLockError::Error(e)) => Err(self.error(e)),
        }
    }

    /// Takes the lock of change-feed consumer `id` for this process: `None`
    /// while a live process holds it. The file stays (only runs' locks are
    /// named by a one-off token and removed): every process must lock the
    /// same file, never a new one made after another process removed it.
    pub(crate) fn try_hold_consumer(&self, id: i64) -> Result<Option<File>, RepoError> {
        let file = self.open(&format!("consumer-{id}.lock"))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(self.error(e)),
        }
    }

    /// Removes the lock file of a run found dead.
    pub(crate) fn forget_run(&self, token: &str) {
        let _ = std::fs::remove_file(self.dir.join(format!("run-{token}.lock")));
    }

    /// Waits for the setup lock (held while one process creates or migrates
    /// the database).
    pub(crate) async fn setup(&self) -> Result<File, RepoError> {
        let file = self.open("setup.lock")?;
        tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| RepoError::Corrupt(format!("migration lock task: {e}")))?
            .map_err(|e| RepoError::Connect {
                target: "the setup lock".into(),
                cause: e.to_string(),
            })
    }
}
