//! `ledger`: the append-only, hash-chained audit trail of every sync (table `ledger_events`).
//!
//! One chain per mailbox: `seq` runs 1, 2, 3, … and every event stores
//! `hash = sha256(prev_hash ‖ canonical encoding)` (see [`hash`]), so an edited, removed or
//! reordered row is found by [`verify`]. The database itself refuses UPDATE, DELETE and
//! TRUNCATE and allows one terminal event per run; this crate adds the chain.
//!
//! Writes ([`append`], [`append_terminal`]) run inside the caller's transaction so rows and
//! the events describing them commit together or not at all.

pub mod append;
pub mod canonical;
pub mod error;
pub mod event;
pub mod hash;
pub mod lock;
pub mod read;
pub mod sqlite;
pub mod subject;
pub mod verify;

pub use append::{Appended, TerminalOutcome, append, append_terminal};
pub use error::LedgerError;
pub use event::{Event, EventType, NewEvent};
pub use hash::{GENESIS_HASH, HashInput, event_hash};
pub use lock::LEDGER_LOCK_CLASS;
pub use read::{ChainHead, chain_head, counts_by_type, run_events};
pub use subject::{Subject, SubjectError};
pub use verify::{ChainFault, ChainReport, FaultReason, RunFault, RunFaultReason, verify};
