//! ingest: turns Gmail messages into rows, exactly once.
//!
//! Owns MIME parsing (`mime`), the repository layer (`repo`, the only place SQL
//! for mail tables lives), the embedded schema migrations (`schema`), and the
//! backfill and incremental-sync engines (`engine`) that drive the gmail
//! client, the attachment store and the ledger.

pub mod engine;
pub mod mailboxes;
pub mod mime;
pub mod repo;
pub mod schema;
pub mod verify;
