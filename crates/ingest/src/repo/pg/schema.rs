//! PostgreSQL: the embedded schema, `migrations/postgres` at the workspace
//! root, compiled in, and the databases created by a migration text that was
//! edited after release.
//!
//! sqlx's Postgres migrator takes an advisory lock for the duration of a
//! migration run, so two processes migrating at once serialise instead of
//! racing, and an already-applied migration is skipped by checksum.
//!
//! sqlx refuses a database whose applied migration's checksum differs from
//! the file's. 20261204000001_ledger_as_of.sql was edited after databases were
//! created from it; it is back to its first text and the edit is
//! 20261204000002_ledger_as_of_replay.sql. A database created by the edited
//! text already holds the edit, so before the migrator runs its record is
//! brought in line (see [`EDITED`]); any other mismatch is left to sqlx,
//! which refuses it as before.

use async_trait::async_trait;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{PgConnection, PgPool};

use crate::repo::RepoError;
use crate::repo::edited_migrations::{EditedText, embedded};

/// Every migration of the product, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// The texts of migrations other than the ones in the tree.
pub(crate) const EDITED: &[EditedText] = &[EditedText {
    version: 20261204000001,
    checksum: "2174428c3e96576f0f2bc09a759383c2b53447cbf720b234a7b352ef92cc5e3cdf6564fba07b34edd731b6f2158d79b4",
    commit: "9e9d95c",
    includes: &[20261204000002],
}];

/// Applies all pending migrations; harmless when there are none.
#[tracing::instrument(skip_all)]
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    adopt_edited_texts(pool).await?;
    MIGRATOR.run(pool).await
}

/// Rewrites the record of a migration applied from a text in [`EDITED`] to
/// what applying the tree's migrations would have recorded, in one
/// transaction. Only a database that needs it is written to; there the
/// record's row is locked and read again, so a second process doing the same
/// waits and then finds it rewritten.
async fn adopt_edited_texts(pool: &PgPool) -> Result<(), MigrateError> {
    let Some(edited) = edited_text_of(&mut *pool.acquire().await?, false).await? else {
        return Ok(());
    };
    let mut tx = pool.begin().await?;
    if edited_text_of(&mut tx, true).await?.map(|e| e.checksum) != Some(edited.checksum) {
        return Ok(());
    }
    let restored = embedded(&MIGRATOR, edited.version)?;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
        .bind(&*restored.checksum)
        .bind(edited.version)
        .execute(&mut *tx)
        .await?;
    for &version in edited.includes {
        let included = embedded(&MIGRATOR, version)?;
        // execution_time 0: nothing ran, the edited text did the work
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ($1, $2, TRUE, $3, 0)
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(&*included.description)
        .bind(&*included.checksum)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(
        version = edited.version,
        commit = edited.commit,
        includes = ?edited.includes,
        "the database was created by an edited text of a migration; recorded as the migrations that replace it"
    );
    Ok(())
}

/// The entry of [`EDITED`] whose text the database's record names, if any;
/// with `lock`, the record's row stays locked until the transaction ends.
async fn edited_text_of(
    conn: &mut PgConnection,
    lock: bool,
) -> Result<Option<&'static EditedText>, MigrateError> {
    let recorded: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !recorded {
        return Ok(None);
    }
    for edited in EDITED {
        let checksum: Option<Vec<u8>> = sqlx::query_scalar(if lock {
            "SELECT checksum FROM _sqlx_migrations WHERE version = $1 FOR UPDATE"
        } else {
            "SELECT checksum FROM _sqlx_migrations WHERE version = $1"
        })
        .bind(edited.version)
        .fetch_optional(&mut *conn)
        .await?;
        if checksum.map(hex::encode).as_deref() == Some(edited.checksum) {
            return Ok(Some(edited));
        }
    }
    Ok(None)
}

#[async_trait]
impl crate::repo::Repository for super::PgRepository {
    async fn migrate(&self) -> Result<(), RepoError> {
        migrate(&self.pool).await.map_err(RepoError::Migrate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edited_texts_name_embedded_migrations_only() {
        for edited in EDITED {
            let restored = embedded(&MIGRATOR, edited.version).expect("restored file embedded");
            assert_ne!(hex::encode(&*restored.checksum), edited.checksum);
            for &version in edited.includes {
                assert!(
                    embedded(&MIGRATOR, version).is_ok(),
                    "{version} not embedded"
                );
                assert!(version > edited.version);
            }
        }
    }
}
