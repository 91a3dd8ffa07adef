//! Reading archives a mailbox can be seeded from without Gmail's quota: the
//! mbox splitter, Google Takeout's entries and Google Vault's (read against
//! the export's metadata file). The run that stores them is `engine::import`;
//! [`ImportFormat`] is all it knows of which archive a file is.

pub mod mbox;
pub mod takeout;
pub mod vault;

use std::sync::Arc;

use mbox::MboxEntry;
use takeout::TakeoutMessage;
use vault::VaultMetadata;

/// Which archive an mbox file is, and what reading its entries needs.
#[derive(Debug, Clone, Default)]
pub enum ImportFormat {
    /// Google Takeout: ids, thread ids and label names in the file itself.
    #[default]
    Takeout,
    /// Google Vault: ids in the separators, labels in the export's metadata.
    Vault(Arc<VaultMetadata>),
}

/// An entry read as a Gmail message, with what the report should say of it
/// though it is imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEntry {
    pub message: TakeoutMessage,
    pub note: Option<String>,
}

/// Why an entry is no message of its archive (a malformed entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error(transparent)]
    Takeout(#[from] takeout::EntryError),
    #[error(transparent)]
    Vault(#[from] vault::EntryError),
}

impl ImportFormat {
    /// The `message.ingested` source of a file of this format.
    pub fn source(&self, sha256: &str) -> String {
        match self {
            ImportFormat::Takeout => format!("takeout:{sha256}"),
            ImportFormat::Vault(_) => format!("vault:{sha256}"),
        }
    }

    pub fn read_entry(&self, entry: MboxEntry) -> Result<ReadEntry, EntryError> {
        self.read_entry_or_return(entry).map_err(|(e, _)| e)
    }

    /// Reads one entry; one that is no message of its archive comes back
    /// with the reason, whole, so `import --keep-unmatched` can keep its bytes.
    pub fn read_entry_or_return(
        &self,
        entry: MboxEntry,
    ) -> Result<ReadEntry, (EntryError, MboxEntry)> {
        match self {
            ImportFormat::Takeout => match takeout::read_entry_or_return(entry) {
                Ok(message) => Ok(ReadEntry {
                    message,
                    note: None,
                }),
                Err((e, entry)) => Err((e.into(), entry)),
            },
            ImportFormat::Vault(metadata) => {
                let read = metadata
                    .read_entry_or_return(entry)
                    .map_err(|(e, entry)| (e.into(), entry))?;
                Ok(ReadEntry {
                    message: read.message,
                    note: (!read.listed).then(|| {
                        "not in the Vault metadata file: imported with Gmail's labels, as every \
                         imported message"
                            .to_owned()
                    }),
                })
            }
        }
    }
}
