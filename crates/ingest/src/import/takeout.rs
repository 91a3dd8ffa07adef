//! One Google Takeout mbox entry read as a Gmail message: the ids, labels
//! and internalDate Takeout wrote beside it, and the message as Gmail serves
//! it with `format=raw`.
//!
//! Takeout's additions, and only those, are removed: the separator line
//! `From <message id in decimal>@xxx <date>` (read for the id and the
//! internalDate, to the second), and the `X-GM-THRID` (thread id in decimal)
//! and `X-Gmail-Labels` (label names) headers it puts on top. The mbox
//! quoting is undone by the splitter (`mbox.rs`). A header of the same name
//! further down is the message's own and stays.

use bytes::Bytes;
use chrono::DateTime;

use super::mbox::MboxEntry;
use crate::mime::decode_unstructured;

/// An entry read as a Gmail message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeoutMessage {
    /// Byte offset of the entry's separator in the file.
    pub offset: u64,
    /// Gmail's hex form of the separator's decimal id.
    pub id: String,
    /// Gmail's hex form of `X-GM-THRID`.
    pub thread_id: String,
    /// `X-Gmail-Labels`, decoded and split; `Opened` and `Archived` (states
    /// Takeout writes as names, not labels) left out.
    pub label_names: Vec<String>,
    /// The separator's date, in milliseconds (Takeout keeps whole seconds).
    pub internal_date_ms: i64,
    /// The message as Gmail serves it: the entry's own buffer past Takeout's
    /// headers (a slice of it, not a copy).
    pub raw: Bytes,
}

/// Why an entry cannot be read as a Gmail message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The separator names no Gmail message id: the entry cannot be matched.
    #[error("the separator line names no Gmail message id in decimal")]
    NoId,
    #[error("no X-GM-THRID header (thread id) on top of the message")]
    NoThreadId,
    #[error("X-GM-THRID is not a decimal thread id")]
    BadThreadId,
    #[error("the separator line's date is not Takeout's (`Tue Mar 19 09:13:51 +0000 2019`)")]
    BadDate,
    #[error("the entry holds no message")]
    Empty,
}

/// Reads one entry.
pub fn read_entry(entry: MboxEntry) -> Result<TakeoutMessage, EntryError> {
    read_entry_or_return(entry).map_err(|(e, _)| e)
}

/// Reads one entry; one that is not a Gmail message comes back with the
/// reason, whole, so `import --keep-unmatched` can keep its bytes.
pub fn read_entry_or_return(entry: MboxEntry) -> Result<TakeoutMessage, (EntryError, MboxEntry)> {
    let (id, internal_date_ms, thread_id, label_names, start) = match read_parts(&entry) {
        Ok(parts) => parts,
        Err(e) => return Err((e, entry)),
    };
    let offset = entry.offset;
    if start >= entry.body.len() {
        return Err((
            EntryError::Empty,
            MboxEntry {
                offset,
                separator: entry.separator,
                body: Vec::new(),
            },
        ));
    }
    let raw = Bytes::from(entry.body).slice(start..);
    Ok(TakeoutMessage {
        offset,
        id,
        thread_id,
        label_names,
        internal_date_ms,
        raw,
    })
}

/// What Takeout wrote beside the message: (id, internalDate, thread id,
/// label names, where the message starts in the body).
type Parts = (String, i64, String, Vec<String>, usize);

fn read_parts(entry: &MboxEntry) -> Result<Parts, EntryError> {
    let separator = String::from_utf8_lossy(&entry.separator);
    let rest = separator.strip_prefix("From ").ok_or(EntryError::NoId)?;
    let (sender, date) = rest.split_once(' ').ok_or(EntryError::NoId)?;
    let id = sender_id(sender).ok_or(EntryError::NoId)?;
    let internal_date_ms = DateTime::parse_from_str(date.trim(), "%a %b %d %H:%M:%S %z %Y")
        .map_err(|_| EntryError::BadDate)?
        .timestamp_millis();
    let (thread, labels, start) = archive_headers(&entry.body);
    let thread = thread.ok_or(EntryError::NoThreadId)?;
    let thread_id =
        hex_of(String::from_utf8_lossy(thread).trim()).ok_or(EntryError::BadThreadId)?;
    let label_names = labels.map(label_names).unwrap_or_default();
    Ok((id, internal_date_ms, thread_id, label_names, start))
}

/// Gmail's id of a separator's sender (`<decimal>@xxx`).
fn sender_id(sender: &str) -> Option<String> {
    hex_of(sender.strip_suffix("@xxx")?)
}

/// The Gmail id a separator line names, if it names one (an entry that is
/// malformed otherwise may still say which message it was).
pub fn separator_id(separator: &[u8]) -> Option<String> {
    let separator = String::from_utf8_lossy(separator);
    let rest = separator.strip_prefix("From ")?;
    sender_id(rest.split(' ').next()?)
}

/// An entry's bytes without Takeout's additions on top (`X-GM-THRID`,
/// `X-Gmail-Labels`): what an orphan keeps, as near to the message Gmail
/// served as the entry allows. Empty when the entry holds no message.
pub fn message_bytes(entry: MboxEntry) -> Vec<u8> {
    let (_, _, start) = archive_headers(&entry.body);
    let mut raw = entry.body;
    raw.drain(..start);
    raw
}

/// Gmail's hex id of a decimal one (no leading zeros, as Gmail writes them).
fn hex_of(decimal: &str) -> Option<String> {
    if decimal.is_empty() || !decimal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    decimal
        .parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .map(|v| format!("{v:x}"))
}

/// The values of `X-GM-THRID` and `X-Gmail-Labels` among the headers on
/// top of `body`, and where the message itself starts.
fn archive_headers(body: &[u8]) -> (Option<&[u8]>, Option<&[u8]>, usize) {
    let (mut thread, mut labels) = (None, None);
    let mut start = 0;
    loop {
        let rest = &body[start..];
        let name = [&b"x-gm-thrid:"[..], b"x-gmail-labels:"]
            .into_iter()
            .find(|h| rest.len() >= h.len() && rest[..h.len()].eq_ignore_ascii_case(h));
        let Some(name) = name else { break };
        // The header's lines: its own and any folded continuation.
        let mut end = start;
        loop {
            match body[end..].iter().position(|b| *b == b'\n') {
                Some(i) => end += i + 1,
                None => end = body.len(),
            }
            if end >= body.len() || !matches!(body[end], b' ' | b'\t') {
                break;
            }
        }
        let value = &body[start + name.len()..end];
        if name.len() == b"x-gm-thrid:".len() {
            thread = Some(value);
        } else {
            labels = Some(value);
        }
        start = end;
    }
    (thread, labels, start)
}

/// Takeout's label list: RFC 2047 encoded at times, comma-separated, a name
/// holding a comma in double quotes.
fn label_names(raw: &[u8]) -> Vec<String> {
    let decoded = decode_unstructured(raw);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in decoded.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty() && n != "Opened" && n != "Archived")
        .collect()
}

/// The Gmail label id Takeout's name for a system label stands for.
pub fn system_label(name: &str) -> Option<&'static str> {
    Some(match name {
        "Inbox" => "INBOX",
        "Sent" => "SENT",
        "Unread" => "UNREAD",
        "Starred" => "STARRED",
        "Important" => "IMPORTANT",
        "Spam" => "SPAM",
        "Trash" => "TRASH",
        "Drafts" | "Draft" => "DRAFT",
        "Chat" => "CHAT",
        "Category Personal" => "CATEGORY_PERSONAL",
        "Category Social" => "CATEGORY_SOCIAL",
        "Category Promotions" => "CATEGORY_PROMOTIONS",
        "Category Updates" => "CATEGORY_UPDATES",
        "Category Forums" => "CATEGORY_FORUMS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::mbox::MboxReader;

    fn entry(separator: &str, body: &[u8]) -> MboxEntry {
        MboxEntry {
            offset: 0,
            separator: separator.as_bytes().to_vec(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn ids_labels_and_date_are_read_and_only_takeouts_headers_removed() {
        let m = read_entry(entry(
            "From 1628424719502045299@xxx Tue Mar 19 09:13:51 +0000 2019",
            b"X-GM-THRID: 1628415971694286313\r\nX-Gmail-Labels: Inbox,Opened,\r\n \"Work, stuff\",Category Updates\r\nFrom: a@b\r\nX-Gmail-Labels: mine\r\n\r\nbody\r\n",
        ))
        .expect("entry");
        assert_eq!(m.id, "169953a795627073");
        assert_eq!(m.thread_id, format!("{:x}", 1628415971694286313u64));
        assert_eq!(
            m.label_names,
            vec!["Inbox", "Work, stuff", "Category Updates"]
        );
        assert_eq!(m.internal_date_ms, 1_552_986_831_000);
        assert_eq!(
            m.raw,
            b"From: a@b\r\nX-Gmail-Labels: mine\r\n\r\nbody\r\n".to_vec()
        );
    }

    #[test]
    fn entries_without_a_usable_id_or_date_are_named() {
        let body = b"X-GM-THRID: 1\r\nFrom: a@b\r\n\r\nx\r\n";
        let read = |sep: &str, body: &[u8]| read_entry(entry(sep, body)).map(|_| ());
        assert_eq!(
            read("From a@b Tue Mar 19 09:13:51 +0000 2019", body),
            Err(EntryError::NoId)
        );
        assert_eq!(
            read("From 12x@xxx Tue Mar 19 09:13:51 +0000 2019", body),
            Err(EntryError::NoId)
        );
        assert_eq!(
            read("From 12@xxx yesterday", body),
            Err(EntryError::BadDate)
        );
        assert_eq!(
            read(
                "From 12@xxx Tue Mar 19 09:13:51 +0000 2019",
                b"From: a@b\r\n\r\nx\r\n"
            ),
            Err(EntryError::NoThreadId)
        );
    }

    #[test]
    fn an_unreadable_entry_comes_back_whole_with_its_bytes_and_any_id() {
        let body = b"X-GM-THRID: 1\r\nX-Gmail-Labels: Inbox\r\nFrom: a@b\r\n\r\nx\r\n";
        let sep = "From 12@xxx yesterday";
        let (e, back) = read_entry_or_return(entry(sep, body)).expect_err("bad date");
        assert_eq!(e, EntryError::BadDate);
        assert_eq!(back, entry(sep, body));
        assert_eq!(separator_id(&back.separator), Some("c".to_owned()));
        assert_eq!(
            separator_id(b"From a@b Tue Mar 19 09:13:51 +0000 2019"),
            None
        );
        assert_eq!(message_bytes(back), b"From: a@b\r\n\r\nx\r\n".to_vec());
        let (e, back) = read_entry_or_return(entry(
            "From 12@xxx Tue Mar 19 09:13:51 +0000 2019",
            b"X-GM-THRID: 1\r\n",
        ))
        .expect_err("empty");
        assert_eq!(e, EntryError::Empty);
        assert!(message_bytes(back).is_empty());
    }

    #[test]
    fn every_message_of_the_real_takeout_sample_reads() {
        let file = include_bytes!("../../tests/fixtures/takeout/takeout.mbox");
        let mut reader = MboxReader::new(&file[..]);
        let mut n = 0;
        while let Some(e) = reader.next_entry().expect("read") {
            let m = read_entry(e).expect("a Takeout entry");
            assert!(!m.raw.starts_with(b"X-G"), "{}", m.id);
            assert!(
                m.label_names.iter().all(|l| !l.contains("=?")),
                "{:?}",
                m.label_names
            );
            n += 1;
        }
        assert_eq!(n, 39);
    }
}
