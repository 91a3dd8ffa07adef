//! `import --keep-unmatched`: archive entries that are no message of the
//! mailbox (an id Gmail's mailbox does not hold, no usable id, a malformed
//! entry that still holds bytes) are kept as orphans instead of dropped.
//!
//! Kept apart from `engine::import` on purpose: the import only sets such
//! entries aside ([`Unmatched`]) and hands them to [`Engine::add_orphans`]
//! before it commits its batch. Here each one's bytes go to the store first
//! (a content-addressed blob, as a message's raw bytes do), then ride in the
//! batch: its blob row and the org's copy row (`blob_copies`), the orphan row
//! (`imported_orphans`, natural key (mailbox, sha256)) and an `orphan.kept`
//! event commit in the one fenced transaction (`engine::commit`). Because
//! the orphan row references the blob, gc and purge never remove it and
//! verify checks it (`repo::sql::{purge, audit}`).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;

use super::commit::Batch;
use super::run::{Run, Stage};
use super::thread_fetch::blob_row;
use super::{Engine, EngineError};
use crate::domain::{OrphanReason, OrphanUpsert};
use crate::import::EntryError;
use crate::import::mbox::MboxEntry;
use crate::import::takeout::{self, TakeoutMessage};
use crate::import::{takeout::EntryError as TakeoutError, vault::EntryError as VaultError};
use crate::mime::decode_unstructured;

/// An entry set aside to be kept as an orphan.
pub(crate) struct Unmatched {
    offset: u64,
    message_id: Option<String>,
    reason: OrphanReason,
    detail: String,
    bytes: Bytes,
}

impl Unmatched {
    /// A Takeout message whose id Gmail's mailbox does not hold.
    pub(crate) fn not_in_mailbox(m: TakeoutMessage) -> Self {
        Unmatched {
            offset: m.offset,
            message_id: Some(m.id),
            reason: OrphanReason::NotInMailbox,
            detail: "not in this mailbox in Gmail (deleted since the archive was made, or \
                     another account's message)"
                .into(),
            bytes: m.raw,
        }
    }

    /// An entry that is no Takeout message; `None` when it holds no bytes
    /// (nothing to keep: it stays skipped).
    pub(crate) fn unreadable(error: &EntryError, entry: MboxEntry) -> Option<Self> {
        let offset = entry.offset;
        let message_id = takeout::separator_id(&entry.separator);
        let bytes = takeout::message_bytes(entry);
        if bytes.is_empty() {
            return None;
        }
        let reason = match error {
            EntryError::Takeout(TakeoutError::NoId) | EntryError::Vault(VaultError::NoId) => {
                OrphanReason::NoId
            }
            _ => OrphanReason::Malformed,
        };
        Some(Unmatched {
            offset,
            message_id,
            reason,
            detail: error.to_string(),
            bytes: bytes.into(),
        })
    }
}

/// An entry the import kept as an orphan, as its report names it.
#[derive(Debug, Clone, Serialize)]
pub struct KeptEntry {
    pub path: PathBuf,
    pub offset: u64,
    /// Gmail's id, when the entry had one.
    pub message_id: Option<String>,
    pub reason: OrphanReason,
    pub detail: String,
    /// The blob its bytes are.
    pub sha256: String,
}

impl Engine {
    /// Stores the bytes of `unmatched` (blobs first) and adds their orphan
    /// rows to `batch`, whose commit writes them; returns them as the report
    /// names them. `batch.source` names the file.
    pub(crate) async fn add_orphans(
        &self,
        run: &Run,
        batch: &mut Batch,
        path: &Path,
        unmatched: Vec<Unmatched>,
    ) -> Result<Vec<KeptEntry>, EngineError> {
        let source = batch.source.clone().ok_or_else(|| {
            EngineError::Internal("orphans need the batch's source (the file)".into())
        })?;
        let mut kept = Vec::with_capacity(unmatched.len());
        for u in unmatched {
            let headers = OwnHeaders::of(&u.bytes);
            let put = run
                .timed(Stage::Store, self.store.put_deferred(u.bytes))
                .await?;
            // Orphan blobs ride with the batch's threadless blobs: made
            // durable before the transaction, recorded (with the org's copy)
            // and looked up in it like every other blob of the batch.
            batch.threadless_skips.blobs.add(&put);
            let blob = blob_row(&put);
            batch.orphans.push(OrphanUpsert {
                sha256: blob.sha256.clone(),
                size: blob.size,
                source: source.clone(),
                file_offset: i64::try_from(u.offset).unwrap_or(i64::MAX),
                provider_message_id: u.message_id.clone(),
                reason: u.reason,
                detail: u.detail.clone(),
                rfc822_message_id: headers.message_id,
                date_header: headers.date,
                subject: headers.subject,
            });
            kept.push(KeptEntry {
                path: path.to_owned(),
                offset: u.offset,
                message_id: u.message_id,
                reason: u.reason,
                detail: u.detail,
                sha256: blob.sha256.clone(),
            });
            batch.threadless_skips.orphan_blobs.push(blob);
        }
        Ok(kept)
    }
}

/// The message's own `Message-ID`, `Date` and `Subject`, read off its header
/// block without parsing the message (an orphan may not be MIME at all).
#[derive(Debug, Default, PartialEq, Eq)]
struct OwnHeaders {
    message_id: Option<String>,
    date: Option<String>,
    subject: Option<String>,
}

/// Headers past this are not looked at (a header block is a few KiB).
const HEADER_SCAN_LIMIT: usize = 64 * 1024;
/// A stored header value is cut here (RFC 5322's line limit).
const VALUE_LIMIT: usize = 998;

impl OwnHeaders {
    fn of(raw: &[u8]) -> Self {
        let mut out = OwnHeaders::default();
        let block = &raw[..raw.len().min(HEADER_SCAN_LIMIT)];
        let mut lines = block.split_inclusive(|b| *b == b'\n').peekable();
        while let Some(line) = lines.next() {
            let line = trim_eol(line);
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            // Unfolded: continuation lines start with white space.
            let mut value = line[colon + 1..].to_vec();
            while let Some(next) = lines.peek() {
                if !matches!(next.first(), Some(b' ' | b'\t')) {
                    break;
                }
                value.extend_from_slice(trim_eol(next));
                lines.next();
            }
            let slot = match line[..colon].to_ascii_lowercase().as_slice() {
                b"message-id" => &mut out.message_id,
                b"date" => &mut out.date,
                b"subject" => &mut out.subject,
                _ => continue,
            };
            if slot.is_none() {
                let text = decode_unstructured(&value);
                let text: String = text.trim().chars().take(VALUE_LIMIT).collect();
                *slot = (!text.is_empty()).then_some(text);
            }
        }
        out
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_headers_are_read_unfolded_and_decoded_from_the_header_block_only() {
        let raw = b"From: a@b\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n menu\r\nMessage-ID: <x@y>\r\n\
                    Date: Tue, 19 Mar 2019 09:13:51 +0000\r\nsubject: second\r\n\r\nSubject: body\r\n";
        let h = OwnHeaders::of(raw);
        assert_eq!(h.message_id.as_deref(), Some("<x@y>"));
        assert_eq!(h.date.as_deref(), Some("Tue, 19 Mar 2019 09:13:51 +0000"));
        assert_eq!(h.subject.as_deref(), Some("café menu"));
        assert_eq!(OwnHeaders::of(b"no headers at all"), OwnHeaders::default());
        assert_eq!(OwnHeaders::of(b"\r\nSubject: x\r\n"), OwnHeaders::default());
    }
}
