//! The embedded PostgreSQL schema, re-exported where callers have always found it.

pub use crate::repo::pg::schema::{MIGRATOR, migrate};
