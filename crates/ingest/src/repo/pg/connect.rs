//! PostgreSQL: connecting, with errors an operator can act on.
//!
//! The message names host, port and database and the cause, never the URL
//! itself (it may carry a password), and gives up within a bounded time.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::repo::RepoError;

/// How long to keep trying before reporting the database unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<PgPool, RepoError> {
    // sqlx's parse error may quote the URL; report only that it is malformed.
    let options = PgConnectOptions::from_str(url).map_err(|_| RepoError::Connect {
        target: "the database".into(),
        cause: "the database URL is not a valid postgres:// URL".into(),
    })?;
    let target = format!(
        "PostgreSQL at {}:{} (database {})",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("<default>")
    );
    // One direct attempt first: a refused or rejected connection is reported
    // at once with its real cause, not as a pool timeout 8 s later.
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(err)) => {
            return Err(RepoError::Connect {
                target,
                cause: describe(&err),
            });
        }
        Err(_) => {
            return Err(RepoError::Connect {
                target,
                cause: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
            });
        }
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|err| RepoError::Connect {
            target,
            cause: describe(&err),
        })
}

/// The cause of a connection failure, without anything from the URL.
fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => {
            format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())
        }
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        other => other.to_string(),
    }
}
