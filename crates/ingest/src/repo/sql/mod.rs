//! Portable SQL: the statements that read the same on PostgreSQL and on
//! SQLite, written once and run on either backend's pool.
//!
//! sqlx's SQLite driver binds `$1`-style numbered parameters exactly as
//! PostgreSQL does, so a statement needs a dialect only where the two really
//! differ, and [`Dialect`] names those few places: how a list of ids is bound
//! ([`IdList`]: an array on PostgreSQL, JSON text on SQLite) and how stored
//! labels come back ([`Labels`]: `text[]` or JSON text). [`on_either!`] runs
//! one body of sqlx calls against whichever pool [`Db`] holds: the body is
//! compiled once per backend, so each arm is checked against its own driver.
//! Upserts, the run lease and the quota stay in the backends' own files,
//! where their strategies differ.

mod audit;
mod export;
pub(crate) mod feed;
mod history;
mod labels;
mod orphans;
mod plan_reads;
pub(crate) mod purge;
mod quarantine;
mod values;

use sqlx::{PgPool, SqlitePool};

pub(crate) use values::{IdList, Labels};

/// The pool a portable statement runs on.
#[derive(Clone, Copy)]
pub enum Db<'a> {
    Pg(&'a PgPool),
    Sqlite(&'a SqlitePool),
}

impl Db<'_> {
    pub(crate) fn dialect(self) -> Dialect {
        match self {
            Db::Pg(_) => Dialect::Postgres,
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

/// A backend whose pool the portable statements run on: implementing it
/// gives the backend every role written here once.
pub trait HasDb: Send + Sync {
    fn db(&self) -> Db<'_>;
}

/// Where the text of a portable statement differs between the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// `column` is one of the ids bound at `param` as an [`IdList`].
    pub(crate) fn in_list(self, column: &str, param: &str) -> String {
        match self {
            Dialect::Postgres => format!("{column} = ANY({param})"),
            Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each({param}))"),
        }
    }

    /// The current time as a statement reads it: PostgreSQL's own clock,
    /// SQLite's the host's, bound at `param` (see [`Dialect::host_clock`]).
    pub(crate) fn now(self, param: &str) -> String {
        match self {
            Dialect::Postgres => "now()".to_owned(),
            Dialect::Sqlite => param.to_owned(),
        }
    }

    /// The value to bind for [`Dialect::now`]'s parameter: none on
    /// PostgreSQL, the host's clock on SQLite (an embedded database has one
    /// host).
    pub(crate) fn host_clock(self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Dialect::Postgres => None,
            Dialect::Sqlite => Some(chrono::Utc::now()),
        }
    }

    /// A parameter that may be NULL, typed where PostgreSQL cannot infer it.
    pub(crate) fn typed(self, param: &str, pg_type: &str) -> String {
        match self {
            Dialect::Postgres => format!("{param}::{pg_type}"),
            Dialect::Sqlite => param.to_owned(),
        }
    }

    /// The scalar minimum of two values.
    pub(crate) fn least(self) -> &'static str {
        match self {
            Dialect::Postgres => "least",
            Dialect::Sqlite => "min",
        }
    }

    /// `SELECT {columns}` of the rows of `table` in mailbox `$1` whose `key`
    /// is one of the ids bound at `$2` as an [`IdList`].
    ///
    /// PostgreSQL probes the unique index once per key,
    /// `unnest(keys) CROSS JOIN LATERAL (… LIMIT 1)`, never `key = ANY($2)`:
    /// during a first backfill the tables grow by thousands of rows a second
    /// while their statistics still describe an empty table, and with `= ANY`
    /// the planner then picks a scan of every row of the mailbox (through the
    /// `(mailbox_id, internal_date)` index) for each call. That made one
    /// lookup per thread cost O(mailbox) and the backfill quadratic. The
    /// lateral form leaves one plan, whatever the statistics say.
    pub(crate) fn rows_by_key(self, columns: &str, table: &str, key: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                "SELECT {columns} FROM unnest($2::text[]) AS k(id)
                 CROSS JOIN LATERAL (
                     SELECT {columns} FROM {table}
                     WHERE mailbox_id = $1 AND {key} = k.id LIMIT 1) t"
            ),
            Dialect::Sqlite => format!(
                "SELECT {columns} FROM {table}
                 WHERE mailbox_id = $1 AND {key} IN (SELECT value FROM json_each($2))"
            ),
        }
    }
}

/// Runs `$body` with `$pool` bound to the pool of `$db`, whichever backend it
/// is: the same sqlx calls, compiled for each driver.
macro_rules! on_either {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::repo::sql::Db::Pg($pool) => $body,
            $crate::repo::sql::Db::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_either;

#[cfg(test)]
mod tests {
    use sqlx::SqlitePool;

    use super::{Db, IdList, Labels};

    /// What makes one statement text serve both backends: SQLite binds `$n`
    /// by its number, not by order of appearance, as PostgreSQL does.
    #[tokio::test]
    async fn sqlite_binds_numbered_parameters_by_number() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let db = Db::Sqlite(&pool);
        let ids = ["a".to_owned(), "c".to_owned()];
        let sql = format!(
            "SELECT $2 || $1, (SELECT count(*) FROM (SELECT 'c' AS v) WHERE {}), $3",
            db.dialect().in_list("v", "$4")
        );
        let (joined, found, labels): (String, i64, Labels) = on_either!(db, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind("first")
                .bind("second")
                .bind(r#"["INBOX"]"#)
                .bind(IdList(&ids))
                .fetch_one(pool)
                .await
        })
        .unwrap();
        assert_eq!(joined, "secondfirst");
        assert_eq!(found, 1);
        assert_eq!(labels.of_message("m").unwrap(), ["INBOX"]);
    }
}
