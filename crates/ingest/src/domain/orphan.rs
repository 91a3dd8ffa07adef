//! An imported orphan: an archive entry `import --keep-unmatched` kept
//! although it is no message of the mailbox. Owns the row's values and the
//! closed set of reasons, shared by the writer (`engine::orphans`), both
//! backends and the `orphans` listing.

use std::fmt;

use serde::Serialize;

use super::UnknownValue;

/// Why an entry was kept as an orphan rather than stored as a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrphanReason {
    /// Its Gmail id is not in the mailbox (another account's message, or
    /// one deleted since the archive was made).
    NotInMailbox,
    /// Its separator names no usable Gmail id.
    NoId,
    /// It names an id but is not a Takeout entry otherwise (no thread id,
    /// a bad date).
    Malformed,
}

impl OrphanReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            OrphanReason::NotInMailbox => "not_in_mailbox",
            OrphanReason::NoId => "no_id",
            OrphanReason::Malformed => "malformed",
        }
    }

    /// Whether the entry was not the archive's own (the import exits 3).
    pub const fn is_malformed(self) -> bool {
        !matches!(self, OrphanReason::NotInMailbox)
    }
}

impl fmt::Display for OrphanReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for OrphanReason {
    type Error = UnknownValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        [
            OrphanReason::NotInMailbox,
            OrphanReason::NoId,
            OrphanReason::Malformed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or(UnknownValue {
            what: "orphan reason",
            value: s,
        })
    }
}

/// One orphan row: natural key `(mailbox_id, sha256)`; the first sighting
/// of the bytes is kept (a re-run inserts nothing, changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanUpsert {
    /// The blob the bytes are (recorded in the same batch).
    pub sha256: String,
    pub size: i64,
    /// `takeout:<file sha256>`.
    pub source: String,
    /// Byte offset of the entry's separator in the file.
    pub file_offset: i64,
    /// Gmail's id, when the entry named one.
    pub provider_message_id: Option<String>,
    pub reason: OrphanReason,
    /// Why, in words (the reader's message).
    pub detail: String,
    /// The message's own `Message-ID`, `Date` and `Subject`, when present.
    pub rfc822_message_id: Option<String>,
    pub date_header: Option<String>,
    pub subject: Option<String>,
}

/// A stored orphan, as `mailingest orphans` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedOrphan {
    #[serde(flatten)]
    pub row: OrphanUpsert,
    pub first_run_id: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
