//! SQLite: the embedded schema, `migrations/sqlite` at the workspace root,
//! compiled in, and the databases created by a schema file that was edited
//! after release.
//!
//! sqlx refuses a database whose applied migration's checksum differs from
//! the file's ("previously applied but has been modified"). Migration
//! 20261204000001_schema.sql was edited twice after databases were created
//! from it; it is back to its first text and the edits are migrations of
//! their own (20261204000002, 20261204000003). A database created by an
//! edited text already holds those edits, so before the migrator runs its
//! record is brought in line: the checksum becomes the restored file's, and
//! the split-out migrations it already contains are recorded as applied. Only
//! checksums listed in [`EDITED`] are touched; any other mismatch is left to
//! sqlx, which refuses it as before.

use async_trait::async_trait;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Connection, SqliteConnection, SqlitePool};

use crate::repo::RepoError;
use crate::repo::edited_migrations::{EditedText, embedded};

/// Every migration of the embedded backend, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The texts of 20261204000001_schema.sql other than the one in the tree.
pub(crate) const EDITED: &[EditedText] = &[
    EditedText {
        version: 20261204000001,
        checksum: "2a835482b2ffb19779f8faf593c71fa16ca3f35468641ac3d90697d633a685eca69f894e66613fd0afaf381411ad4842",
        commit: "9e9d95c",
        includes: &[20261204000002],
    },
    EditedText {
        version: 20261204000001,
        checksum: "98e78da5f81d5cec47c27b4c578ffe4043019768237e265ebe12b2394fd2e78399dea451d4081b101273b8c703300d24",
        commit: "287ac7c",
        includes: &[20261204000002, 20261204000003],
    },
];

/// Applies all pending migrations; harmless when there are none. The caller
/// holds the database's setup lock (see `connect::Locks::setup`):
/// sqlx's SQLite migrator does not serialise two processes migrating at once,
/// and neither does [`adopt_edited_texts`].
pub(crate) async fn migrate(pool: &SqlitePool) -> Result<(), MigrateError> {
    {
        let mut conn = pool.acquire().await?;
        adopt_edited_texts(&mut conn).await?;
    }
    MIGRATOR.run(pool).await
}

/// Rewrites the record of a migration applied from a text in [`EDITED`] to
/// what applying the tree's migrations would have recorded, in one
/// transaction. Only a database that needs it is written to: an open must
/// not wait for SQLite's write lock, which another process's writer may hold.
async fn adopt_edited_texts(conn: &mut SqliteConnection) -> Result<(), MigrateError> {
    let Some(edited) = edited_text_of(&mut *conn).await? else {
        return Ok(());
    };
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // read again under the write lock
    if edited_text_of(&mut tx).await?.map(|e| e.checksum) != Some(edited.checksum) {
        return Ok(());
    }
    let restored = embedded(&MIGRATOR, edited.version)?;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = ? WHERE version = ?")
        .bind(&*restored.checksum)
        .bind(edited.version)
        .execute(&mut *tx)
        .await?;
    for &version in edited.includes {
        let included = embedded(&MIGRATOR, version)?;
        // execution_time 0: nothing ran, the edited text did the work
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?, ?, TRUE, ?, 0)
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

/// The entry of [`EDITED`] whose text the database's record names, if any.
async fn edited_text_of(
    conn: &mut SqliteConnection,
) -> Result<Option<&'static EditedText>, MigrateError> {
    let recorded: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !recorded {
        return Ok(None);
    }
    for edited in EDITED {
        let checksum: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = ?")
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
impl crate::repo::Repository for super::SqliteRepository {
    async fn migrate(&self) -> Result<(), RepoError> {
        let _lock = self.locks.setup().await?;
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
