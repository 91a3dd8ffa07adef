//! Migration texts that were edited after release, as both backends recognise
//! them: a database created by such a text holds what later migrations split
//! out of the edit, and its `_sqlx_migrations` record is brought in line
//! before sqlx runs (see each backend's `schema.rs`). Migration files are
//! immutable from now on (`migrations/CHECKSUMS`, checked by a test).

use sqlx::migrate::{MigrateError, Migrator};

/// A text a migration file had on main before it was edited again, and the
/// later migrations (split out of those edits) that a database created by
/// that text already contains. Each backend lists its own (`EDITED` in its
/// `schema.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EditedText {
    pub(crate) version: i64,
    /// sqlx's checksum of that text (SHA-384), in hex.
    pub(crate) checksum: &'static str,
    /// The commit that released the text, for a reader tracing it.
    pub(crate) commit: &'static str,
    pub(crate) includes: &'static [i64],
}

/// The migration `version` of `migrator`.
pub(crate) fn embedded(
    migrator: &'static Migrator,
    version: i64,
) -> Result<&'static sqlx::migrate::Migration, MigrateError> {
    migrator
        .iter()
        .find(|m| m.version == version)
        .ok_or(MigrateError::VersionNotPresent(version))
}
