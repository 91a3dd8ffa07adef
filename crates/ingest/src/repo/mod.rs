//! The repository layer: every SQL statement that writes mail tables.
//!
//! The row types here (`ThreadUpsert`, `MessageUpsert`, …) are backend-neutral;
//! `pg` implements them for PostgreSQL. A second backend (SQLite for the
//! embedded default) implements the same functions over the same types.
//!
//! Every write is one statement per batch of the shape
//! `INSERT … ON CONFLICT (natural key) DO UPDATE … WHERE (row differs)`, so the
//! database, not this code, decides between insert and update, concurrent
//! writers cannot duplicate a row, and an unchanged re-run writes nothing.

mod batch;
mod error;
mod outcome;
pub mod pg;
mod rows;
mod text;

pub use error::RepoError;
pub use outcome::{Outcome, OutcomeCounts, UpsertResult};
pub use rows::{AttachmentUpsert, BlobUpsert, LabelUpdate, MessageUpsert, ThreadUpsert};
