//! The crate's typed error (one enum for the whole library).

use std::path::PathBuf;

/// Everything the emulator's library API can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// Binding or serving the HTTP listener failed.
    #[error("emulator I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The named mailbox is not served by this emulator.
    #[error("unknown mailbox {0:?}")]
    UnknownMailbox(String),
    /// The message id does not exist in that mailbox.
    #[error("message {id:?} not found in mailbox {mailbox:?}")]
    MessageNotFound { mailbox: String, id: String },
    /// The thread id given for an insert does not exist.
    #[error("thread {id:?} not found in mailbox {mailbox:?}")]
    ThreadNotFound { mailbox: String, id: String },
    /// A label operation Gmail would refuse (unknown label, a system label,
    /// a name already taken).
    #[error("label {label:?} in mailbox {mailbox:?}: {reason}")]
    Label {
        mailbox: String,
        label: String,
        reason: String,
    },
    /// The configuration is unusable (e.g. no mailboxes).
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// An import source could not be read or parsed.
    #[error("import from {path:?} failed: {reason}")]
    Import { path: PathBuf, reason: String },
    /// Building a synthetic message failed.
    #[error("generating synthetic mail failed: {0}")]
    Generate(String),
}
