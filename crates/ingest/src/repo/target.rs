//! Which database a URL names, and opening it: `postgres://…` (production)
//! or `sqlite:PATH` (embedded). Anything else is refused with the accepted
//! forms, never echoed back (a URL may carry a password).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::pg::PgRepository;
use super::sqlite::SqliteRepository;
use super::{RepoError, Repository};

/// A database to open.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A PostgreSQL URL (`postgres://` or `postgresql://`).
    Postgres(String),
    /// An SQLite database file.
    Sqlite(PathBuf),
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseTarget::Postgres(_) => f.write_str("Postgres(<redacted>)"),
            DatabaseTarget::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
        }
    }
}

impl DatabaseTarget {
    /// `postgres://…`, `postgresql://…`, `sqlite:PATH` or `sqlite://PATH`.
    pub fn parse(url: &str) -> Result<DatabaseTarget, RepoError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseTarget::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path.starts_with(':') || path.contains('?') {
                return Err(RepoError::Connect {
                    target: "the database".into(),
                    cause: "an SQLite URL is sqlite:PATH, with the path of a database file \
                            (in-memory databases and URL options are not supported)"
                        .into(),
                });
            }
            return Ok(DatabaseTarget::Sqlite(PathBuf::from(path)));
        }
        Err(RepoError::Connect {
            target: "the database".into(),
            cause: "the database URL must start with postgres://, postgresql:// or sqlite:".into(),
        })
    }

    /// How many migrations this backend's embedded schema has (each backend has its own).
    pub fn migrations(&self) -> usize {
        match self {
            DatabaseTarget::Postgres(_) => super::pg::schema::MIGRATOR.iter().count(),
            DatabaseTarget::Sqlite(_) => super::sqlite::schema::MIGRATOR.iter().count(),
        }
    }

    /// Connects (or opens, creating the file) and applies the schema.
    pub async fn open(&self, max_connections: u32) -> Result<Arc<dyn Repository>, RepoError> {
        let repo: Arc<dyn Repository> = match self {
            DatabaseTarget::Postgres(url) => {
                Arc::new(PgRepository::connect(url, max_connections).await?)
            }
            DatabaseTarget::Sqlite(path) => {
                Arc::new(SqliteRepository::open(path, max_connections).await?)
            }
        };
        repo.migrate().await?;
        Ok(repo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend_and_nothing_else_is_accepted() {
        assert_eq!(
            DatabaseTarget::parse("sqlite:/tmp/m.db").unwrap(),
            DatabaseTarget::Sqlite("/tmp/m.db".into())
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite://rel/m.db").unwrap(),
            DatabaseTarget::Sqlite("rel/m.db".into())
        );
        assert!(matches!(
            DatabaseTarget::parse("postgres://u:secret@h/db").unwrap(),
            DatabaseTarget::Postgres(_)
        ));
        for bad in [
            "sqlite:",
            "sqlite::memory:",
            "mysql://u:secret@h/db",
            "sqlite:a.db?mode=ro",
        ] {
            let err = DatabaseTarget::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("secret"), "{err}");
        }
        let debug = format!(
            "{:?}",
            DatabaseTarget::parse("postgres://u:secret@h/db").unwrap()
        );
        assert!(!debug.contains("secret"), "{debug}");
    }
}
