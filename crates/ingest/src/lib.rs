//! ingest: turns Gmail messages into rows, exactly once.
//!
//! Owns MIME parsing (`mime`), the repository boundary (`repo`: the only place
//! SQL lives, PostgreSQL or SQLite behind it), the backfill and incremental-sync
//! engines (`engine`: one run lifecycle, one committer) that drive the gmail
//! client, the attachment store and the ledger, the worker loop (`worker`) and
//! `verify`, and garbage collection of the store (`gc`).

pub mod anchor;
pub mod domain;
pub mod engine;
pub mod export;
pub mod feed;
pub mod gc;
pub mod heads;
pub mod import;
pub mod metrics;
pub mod mime;
pub mod project_quota;
pub mod repair;
pub mod repo;
pub mod schema;
pub mod verify;
pub mod worker;
