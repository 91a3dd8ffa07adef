//! A Google Vault Gmail export read as Gmail messages: its metadata file
//! (`<export>-metadata.xml`) streamed into what the import needs per message
//! id, and its mbox entries read against it.
//!
//! What Vault's classic Gmail export looks like, and where that is from (a
//! real export: the sample in GAM-team/got-your-back, `samples/vault-export-
//! mbox/`, 53 messages, read with that project's restore code, `gyb.py`; and
//! Google's "Vault export contents" page, support.google.com/vault/answer/
//! 6099459, which names the files):
//! - `<export>-N.zip` holds one mbox per account (`<account>_N.mbox`). Each
//!   entry's separator is `From <file id>@xxx <date>`, where the file id is
//!   `<Gmail message id in decimal>-<a UUID>.mbox`; the date is asctime-like
//!   without a zone (`Tue Apr 16 12:00:40 2019`) and in the sample 12 hours
//!   off the message's receipt for morning mail, so it is not trusted. The
//!   message's own bytes follow, CRLF kept, then one line break before the
//!   next separator. Vault writes no header of its own: no `X-GM-THRID`, no
//!   `X-Gmail-Labels`. Checked on all 53 sample messages: the entry's bytes
//!   less that one line break have exactly the size and MD5 the metadata
//!   gives, so the separator and the line break are all Vault adds. No
//!   sample body had a line starting `From `, so how Vault quotes one is not
//!   known; mboxrd (as Takeout) is assumed, and `verify --sample` catches a
//!   difference.
//! - `<export>-metadata.xml`, EDRM XML: `Root/Batch/Documents/Document`, one
//!   `Document` per message, holding `Tags/Tag` elements (attributes
//!   `TagName`, `TagDataType`, `TagValue`: `#From`, `#To`, `#CC`, `#BCC`,
//!   `#Subject`, `#DateSent`, `#DateReceived` as `2019-04-15T17:00:40.389-07:00`,
//!   and `Labels`) and `Files/File/ExternalFile` (attributes `FileName`, the
//!   file id above, `FileSize` and `Hash`, the message's MD5 in hex).
//!   `Labels` is comma-separated: system labels as `^INBOX`, `^UNREAD` (a
//!   caret, then Gmail's label id), user labels by name (`ubuntu`).
//!
//! Uncertain, so accepted in its plausible variants: a `GmailMessageId` tag
//! (Google's page lists one for Gmail; the sample has none) wins over the
//! file id, in decimal or in Gmail's hex; a thread id tag (`ThreadId`,
//! `GmailThreadId`, `#ThreadId`) is kept when present, though Gmail's listing
//! decides the thread anyway; a label name holding a comma in double quotes,
//! as Takeout writes it; `^SMARTLABEL_X` (Gmail's internal name of a
//! category) as `CATEGORY_X`; `^DRAFTS`/`^CHATS` as `DRAFT`/`CHAT`. `^OPENED`
//! and `^DELETED` are states, not labels (got-your-back drops them too): a
//! message deleted by its user is kept by Vault, but Gmail no longer lists
//! it, so the import names it and does not store it. Vault's newer export
//! system writes its metadata as CSV keyed by RFC 822 Message-ID (got-your-
//! back reads it since 2024); that form is not read here.
//!
//! Trusted from the export, as from Takeout: the id and the message's bytes
//! (also checked against the metadata's size and MD5); `#DateReceived` as
//! the internalDate. The label names are only checked against the mailbox's
//! labels; Gmail's listings decide the rest (`engine::import`).

use std::collections::HashMap;
use std::io::BufRead;

use chrono::DateTime;
use md5::{Digest, Md5};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::mbox::MboxEntry;
use super::takeout::TakeoutMessage;

/// What the metadata says of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultDocument {
    /// Label names as the import maps them: a system label as Gmail's id
    /// (`INBOX`), a user label by name.
    pub label_names: Vec<String>,
    /// Gmail's hex thread id, when the metadata names one.
    pub thread_id: Option<String>,
    /// `#DateReceived`, in milliseconds.
    pub received_ms: Option<i64>,
    /// `FileSize` and `Hash` (MD5, lower-case hex) of the message's bytes.
    pub size: Option<u64>,
    pub md5: Option<String>,
}

/// A metadata file read whole: each message by Gmail's hex id. Several
/// files (one export's batches, or several exports) merge into one.
#[derive(Debug, Clone, Default)]
pub struct VaultMetadata {
    documents: HashMap<String, VaultDocument>,
    /// `Document`s naming no usable Gmail id (not a Gmail export's, or a
    /// layout this reader does not know).
    pub without_id: u64,
}

/// A metadata file that is not Vault's XML.
#[derive(Debug, thiserror::Error)]
#[error("at byte {position}: {reason}")]
pub struct MetadataError {
    pub position: u64,
    pub reason: String,
}

/// Why a Vault entry cannot be read as a Gmail message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("the separator line names no Gmail message id in decimal")]
    NoId,
    #[error("the entry holds no message")]
    Empty,
    #[error(
        "the message is not what the metadata file says ({what}): the export is damaged or not this mbox's"
    )]
    Mismatch { what: &'static str },
}

/// An entry read: the message, and whether the metadata listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEntry {
    pub message: TakeoutMessage,
    pub listed: bool,
}

impl VaultMetadata {
    /// Streams one metadata file in: memory holds one `Document` at a time
    /// beside what is kept of each (its labels, dates, size and hash).
    pub fn read_into<R: BufRead>(&mut self, input: R) -> Result<(), MetadataError> {
        let mut reader = quick_xml::Reader::from_reader(input);
        let mut buf = Vec::new();
        let mut doc: Option<DocumentTags> = None;
        let mut saw_root = false;
        loop {
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| MetadataError {
                    position: reader.error_position(),
                    reason: e.to_string(),
                })?;
            let at = reader.buffer_position();
            match event {
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.local_name();
                    match name.as_ref() {
                        "Root" => saw_root = true,
                        "Document" if !saw_root => {
                            return Err(MetadataError {
                                position: at,
                                reason: "a Document outside Root: not Vault's metadata".into(),
                            });
                        }
                        "Document" => doc = Some(DocumentTags::default()),
                        "Tag" => {
                            if let Some(d) = doc.as_mut() {
                                let name = attribute(&e, "TagName", at)?;
                                let value = attribute(&e, "TagValue", at)?;
                                if let (Some(name), Some(value)) = (name, value) {
                                    d.tag(&name, value);
                                }
                            }
                        }
                        "ExternalFile" => {
                            if let Some(d) = doc.as_mut() {
                                d.file_name = d.file_name.take().or(attribute(&e, "FileName", at)?);
                                d.file_size = d.file_size.or(attribute(&e, "FileSize", at)?
                                    .and_then(|s| s.trim().parse().ok()));
                                d.hash = d.hash.take().or(attribute(&e, "Hash", at)?);
                            }
                        }
                        _ => {}
                    }
                }
                Event::End(e) if e.local_name().as_ref() == "Document" => {
                    if let Some(d) = doc.take() {
                        match d.finish() {
                            Some((id, document)) => {
                                self.documents.insert(id, document);
                            }
                            None => self.without_id += 1,
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        if !saw_root {
            return Err(MetadataError {
                position: reader.buffer_position(),
                reason: "no Root element: not Vault's metadata".into(),
            });
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// What the metadata says of a message, by Gmail's hex id.
    pub fn document(&self, id: &str) -> Option<&VaultDocument> {
        self.documents.get(id)
    }

    /// Reads one entry of a Vault mbox against this metadata. An entry the
    /// metadata does not list is read all the same, with no labels.
    pub fn read_entry(&self, entry: MboxEntry) -> Result<VaultEntry, EntryError> {
        self.read_entry_or_return(entry).map_err(|(e, _)| e)
    }

    /// Reads one entry; one that is not this export's message comes back
    /// with the reason, whole, so `import --keep-unmatched` can keep its bytes.
    pub fn read_entry_or_return(
        &self,
        entry: MboxEntry,
    ) -> Result<VaultEntry, (EntryError, MboxEntry)> {
        let id = match self.checked_id(&entry) {
            Ok(id) => id,
            Err(e) => return Err((e, entry)),
        };
        let separator = String::from_utf8_lossy(&entry.separator);
        let document = self.documents.get(&id);
        let internal_date_ms = document
            .and_then(|d| d.received_ms)
            .or_else(|| separator_date_ms(&separator))
            .unwrap_or(0);
        Ok(VaultEntry {
            listed: document.is_some(),
            message: TakeoutMessage {
                offset: entry.offset,
                id,
                // Gmail's listing files each message under its thread.
                thread_id: document
                    .and_then(|d| d.thread_id.clone())
                    .unwrap_or_default(),
                label_names: document.map(|d| d.label_names.clone()).unwrap_or_default(),
                internal_date_ms,
                raw: entry.body.into(),
            },
        })
    }

    /// The entry's Gmail id, once its bytes are what the metadata says.
    fn checked_id(&self, entry: &MboxEntry) -> Result<String, EntryError> {
        let separator = String::from_utf8_lossy(&entry.separator);
        let file_id = separator
            .strip_prefix("From ")
            .and_then(|rest| rest.split_once(' ').map_or(Some(rest), |(s, _)| Some(s)))
            .and_then(|sender| sender.strip_suffix("@xxx"))
            .ok_or(EntryError::NoId)?;
        let id = id_of_file_name(file_id).ok_or(EntryError::NoId)?;
        if entry.body.is_empty() {
            return Err(EntryError::Empty);
        }
        if let Some(d) = self.documents.get(&id) {
            if d.size.is_some_and(|s| s != entry.body.len() as u64) {
                return Err(EntryError::Mismatch { what: "size" });
            }
            if let Some(want) = &d.md5
                && !hex::encode(Md5::digest(&entry.body)).eq_ignore_ascii_case(want.trim())
            {
                return Err(EntryError::Mismatch { what: "MD5" });
            }
        }
        Ok(id)
    }
}

/// The tags of the `Document` being read.
#[derive(Default)]
struct DocumentTags {
    message_id: Option<String>,
    thread_id: Option<String>,
    labels: Option<String>,
    received: Option<String>,
    file_name: Option<String>,
    file_size: Option<u64>,
    hash: Option<String>,
}

impl DocumentTags {
    fn tag(&mut self, name: &str, value: String) {
        let name = name.trim_start_matches('#');
        if name.eq_ignore_ascii_case("Labels") {
            self.labels = Some(value);
        } else if name.eq_ignore_ascii_case("DateReceived") {
            self.received = Some(value);
        } else if name.eq_ignore_ascii_case("GmailMessageId") {
            self.message_id = Some(value);
        } else if name.eq_ignore_ascii_case("ThreadId")
            || name.eq_ignore_ascii_case("GmailThreadId")
        {
            self.thread_id = Some(value);
        }
    }

    /// The message's hex id and what is kept of it; `None` without an id.
    fn finish(self) -> Option<(String, VaultDocument)> {
        let id = self
            .message_id
            .as_deref()
            .and_then(gmail_id)
            .or_else(|| self.file_name.as_deref().and_then(id_of_file_name))?;
        let document = VaultDocument {
            label_names: self.labels.as_deref().map(label_names).unwrap_or_default(),
            thread_id: self.thread_id.as_deref().and_then(gmail_id),
            received_ms: self
                .received
                .as_deref()
                .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
                .map(|d| d.timestamp_millis()),
            size: self.file_size,
            md5: self.hash.filter(|h| !h.trim().is_empty()),
        };
        Some((id, document))
    }
}

/// An attribute's value, XML-unescaped; a value that does not unescape is
/// the file's fault, named by position.
fn attribute(e: &BytesStart<'_>, key: &str, at: u64) -> Result<Option<String>, MetadataError> {
    for a in e.attributes() {
        let a = a.map_err(|err| MetadataError {
            position: at,
            reason: err.to_string(),
        })?;
        if a.key.local_name().as_ref() == key {
            let value =
                a.normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|err| MetadataError {
                        position: at,
                        reason: err.to_string(),
                    })?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// Gmail's hex id of a Vault file id (`<decimal id>-<uuid>.mbox`, or the
/// decimal id alone).
fn id_of_file_name(file_id: &str) -> Option<String> {
    let digits = file_id
        .split(['-', '.'])
        .next()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))?;
    digits
        .parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .map(|v| format!("{v:x}"))
}

/// An id as a tag may give it: decimal (as Vault's file ids and Takeout
/// write Gmail's ids; more than 16 digits, as every id since 2005 is) or
/// Gmail's own hex.
fn gmail_id(value: &str) -> Option<String> {
    let v = value.trim();
    if v.len() > 16 && v.bytes().all(|b| b.is_ascii_digit()) {
        return id_of_file_name(v);
    }
    (!v.is_empty() && v.len() <= 16 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(v, 16).ok())
        .flatten()
        .filter(|n| *n > 0)
        .map(|n| format!("{n:x}"))
}

/// The separator's date read as UTC, only for an entry the metadata does
/// not list (see the header: it is not reliable).
fn separator_date_ms(separator: &str) -> Option<i64> {
    let date = separator.strip_prefix("From ")?.split_once(' ')?.1.trim();
    chrono::NaiveDateTime::parse_from_str(date, "%a %b %e %H:%M:%S %Y")
        .ok()
        .map(|d| d.and_utc().timestamp_millis())
}

/// Vault's `Labels` value as names the import maps: comma-separated, a name
/// holding a comma in double quotes; `^X` is Gmail's system label `X`.
fn label_names(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    let mut names: Vec<String> = out
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .filter_map(|n| match n.strip_prefix('^') {
            Some(system) => system_label(system),
            None => Some(n.to_owned()),
        })
        .collect();
    names.dedup();
    names
}

/// Gmail's label id for a caret name; `None` for a state that is no label.
fn system_label(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    Some(match upper.as_str() {
        "OPENED" | "DELETED" => return None,
        "DRAFTS" => "DRAFT".to_owned(),
        "CHATS" => "CHAT".to_owned(),
        _ => match upper.strip_prefix("SMARTLABEL_") {
            Some(category) => format!("CATEGORY_{category}"),
            None => upper,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::mbox::MboxReader;

    const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/vault/export-metadata.xml");
    const FIXTURE_MBOX: &[u8] = include_bytes!("../../tests/fixtures/vault/export-me_0.mbox");

    fn fixture() -> VaultMetadata {
        let mut m = VaultMetadata::default();
        m.read_into(FIXTURE).expect("the fixture reads");
        m
    }

    #[test]
    fn the_fixture_reads_ids_labels_dates_and_hashes() {
        let m = fixture();
        assert_eq!(m.len(), 3);
        assert_eq!(m.without_id, 1, "the Document with no file names no id");
        let first = m
            .document(&format!("{:x}", 1630926631156851975u64))
            .expect("listed by its file id");
        assert_eq!(first.label_names, vec!["INBOX", "UNREAD"]);
        assert_eq!(first.received_ms, Some(1_555_372_840_389));
        assert_eq!(first.thread_id, None);
        assert_eq!(first.size, Some(69));
        let second = m
            .document(&format!("{:x}", 1631044372502339589u64))
            .expect("listed");
        assert_eq!(
            second.label_names,
            vec![
                "INBOX",
                "IMPORTANT",
                "CATEGORY_UPDATES",
                "ubuntu",
                "Work, & stuff"
            ]
        );
        // A GmailMessageId tag, in hex, wins over the file id; a thread id
        // tag is kept.
        let third = m.document("16a2813ba1bcfd42").expect("by its tag");
        assert_eq!(third.thread_id.as_deref(), Some("16a2813ba1bcfd42"));
        assert_eq!(third.label_names, vec!["SENT"], "^OPENED is no label");
    }

    #[test]
    fn the_fixture_mbox_reads_against_its_metadata_and_vault_adds_nothing_else() {
        let m = fixture();
        let mut reader = MboxReader::new(FIXTURE_MBOX);
        let mut read = Vec::new();
        while let Some(e) = reader.next_entry().expect("read") {
            read.push(m.read_entry(e).expect("a Vault entry"));
        }
        assert_eq!(read.len(), 3);
        assert!(read[0].listed && read[1].listed);
        assert_eq!(
            read[0].message.raw,
            b"From: a@example.com\r\nTo: me@example.com\r\nSubject: one\r\n\r\nfirst body\r\n"
                .to_vec()
        );
        assert_eq!(read[0].message.internal_date_ms, 1_555_372_840_389);
        assert_eq!(read[0].message.thread_id, "", "Gmail's listing decides");
        // Not in the metadata: read, with no labels and the separator's date.
        assert!(!read[2].listed);
        assert!(read[2].message.label_names.is_empty());
        assert_eq!(read[2].message.internal_date_ms, 1_555_459_926_000);
    }

    #[test]
    fn a_message_not_what_the_metadata_says_is_named() {
        let m = fixture();
        let mut reader = MboxReader::new(FIXTURE_MBOX);
        let mut e = reader.next_entry().expect("read").expect("entry");
        e.body[0] = b'f';
        assert_eq!(
            m.read_entry(e.clone()),
            Err(EntryError::Mismatch { what: "MD5" })
        );
        e.body.push(b'x');
        assert_eq!(m.read_entry(e), Err(EntryError::Mismatch { what: "size" }));
    }

    #[test]
    fn a_separator_without_a_decimal_id_is_named() {
        let m = VaultMetadata::default();
        let entry = |sep: &str| MboxEntry {
            offset: 0,
            separator: sep.as_bytes().to_vec(),
            body: b"From: a@b\r\n\r\nx".to_vec(),
        };
        assert_eq!(
            m.read_entry(entry("From someone@example.com Tue Apr 16 12:00:40 2019")),
            Err(EntryError::NoId)
        );
        assert_eq!(
            m.read_entry(entry("From abc-1.mbox@xxx Tue Apr 16 12:00:40 2019")),
            Err(EntryError::NoId)
        );
        let plain = m
            .read_entry(entry(
                "From 1630926631156851975@xxx Tue Apr 16 12:00:40 2019",
            ))
            .expect("the id alone is read too");
        assert_eq!(plain.message.id, format!("{:x}", 1630926631156851975u64));
    }

    #[test]
    fn xml_that_does_not_parse_is_named_by_position() {
        let mut m = VaultMetadata::default();
        let bad = b"<?xml version='1.0'?>\n<Root><Batch><Documents><Document><Tags>\n<Tag TagName='Labels' TagValue='^INBOX></Tags></Document></Documents></Batch></Root>";
        let err = m.read_into(&bad[..]).expect_err("not XML");
        assert!(err.position > 60, "{err}");
        let err = m
            .read_into(&b"<html><body>not metadata</body></html>"[..])
            .expect_err("no Root");
        assert!(err.to_string().contains("no Root element"), "{err}");
    }

    #[test]
    fn label_spellings() {
        assert_eq!(
            label_names("^INBOX,^UNREAD,^SMARTLABEL_SOCIAL,^DRAFTS,^DELETED, mine ,\"a, b\""),
            vec![
                "INBOX",
                "UNREAD",
                "CATEGORY_SOCIAL",
                "DRAFT",
                "mine",
                "a, b"
            ]
        );
        assert!(label_names("").is_empty());
    }
}
