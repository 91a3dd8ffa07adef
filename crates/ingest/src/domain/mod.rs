//! The types both the engines and the repository speak, below both: a value
//! here depends on neither, so `repo` never reaches up into `engine` to name
//! what it stores and returns. One file per concern: a mailbox's `address`,
//! the backfill `window`, the `run` vocabulary, a run's `summary` and its
//! `verdict`, the `batch` rows a run writes, what an upsert did (`outcome`),
//! why a message failed (`failure`), typed surrogate `ids`, a mailbox's
//! `labels` and their changes, and the one parse error of them all
//! (`unknown_value`). Nothing here imports `crate::repo`, `crate::engine` or
//! sqlx.

mod address;
mod batch;
mod failure;
mod ids;
mod labels;
mod orphan;
mod outcome;
mod run;
mod summary;
mod unknown_value;
mod verdict;
mod window;

pub use address::{InvalidAddress, MailboxAddress};
pub use batch::{AttachmentUpsert, BlobUpsert, Coverage, LabelUpdate, MessageUpsert, ThreadUpsert};
pub use failure::{FailureKind, MessageFailure};
pub use ids::MailboxId;
pub use labels::{
    LabelChange, LabelChangeKind, LabelKind, MailboxLabel, StoredLabel, label_changes,
    system_id_of_takeout_name, takeout_system_name,
};
pub use orphan::{ImportedOrphan, OrphanReason, OrphanUpsert};
pub use outcome::{Outcome, OutcomeCounts, UpsertResult};
pub use run::{RunKind, RunStatus};
pub use summary::{BlobCounts, RunSummary, SkipKind, Skipped, StageSeconds, Tally};
pub use unknown_value::UnknownValue;
pub use verdict::RunVerdict;
pub use window::{InvalidWindow, Window};
