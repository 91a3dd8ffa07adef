//! Import of real mail: a directory of `.eml` files or an mbox file. Threads by
//! X-GM-THRID, else References/In-Reply-To, else reply-prefixed normalised subject;
//! labels from X-Gmail-Labels (Takeout); internalDate from the Date header.

use std::collections::HashMap;
use std::path::Path;

use mail_parser::{HeaderValue, MessageParser};

use crate::error::EmulatorError;

/// One imported message before insertion.
pub(crate) struct Imported {
    pub raw: Vec<u8>,
    pub labels: Vec<String>,
    /// Messages with the same key share a thread.
    pub thread_key: String,
    pub internal_date_ms: i64,
}

/// Read `path` (directory of .eml, or an mbox file).
pub(crate) fn load(path: &Path, now_ms: i64) -> Result<Vec<Imported>, EmulatorError> {
    let fail = |reason: String| EmulatorError::Import {
        path: path.to_path_buf(),
        reason,
    };
    let raws: Vec<Vec<u8>> = if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| fail(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("eml")))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read(f).map_err(|e| fail(format!("{}: {e}", f.display()))))
            .collect::<Result<_, _>>()?
    } else {
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        if bytes.starts_with(b"From ") {
            split_mbox(&bytes)
        } else {
            vec![bytes]
        }
    };
    Ok(thread(raws, now_ms))
}

/// Split an mbox on "From " separator lines; undo mboxrd ">From " quoting.
pub(crate) fn split_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some(m) = cur.take() {
                out.push(trim_separator_newline(m));
            }
            cur = Some(Vec::new());
            continue;
        }
        let Some(m) = cur.as_mut() else { continue };
        let stripped = line.iter().take_while(|b| **b == b'>').count();
        if stripped > 0 && line[stripped..].starts_with(b"From ") {
            m.extend_from_slice(&line[1..]);
        } else {
            m.extend_from_slice(line);
        }
    }
    if let Some(m) = cur {
        out.push(trim_separator_newline(m));
    }
    out.into_iter().filter(|m| !m.is_empty()).collect()
}

/// Takeout (and `mailingest export`) put X-GM-THRID and X-Gmail-Labels on top
/// of each message: they are the archive's, read above, not the message's, so
/// the message is stored without them, byte for byte as it was.
fn strip_archive_headers(raw: Vec<u8>) -> Vec<u8> {
    let mut start = 0;
    loop {
        let rest = &raw[start..];
        let is_archive = [&b"x-gm-thrid:"[..], b"x-gmail-labels:"]
            .iter()
            .any(|h| rest.len() >= h.len() && rest[..h.len()].eq_ignore_ascii_case(h));
        if !is_archive {
            break;
        }
        // The header's lines: its own and any folded continuation.
        let mut end = start;
        loop {
            match raw[end..].iter().position(|b| *b == b'\n') {
                Some(i) => end += i + 1,
                None => end = raw.len(),
            }
            if end >= raw.len() || !matches!(raw[end], b' ' | b'\t') {
                break;
            }
        }
        start = end;
    }
    if start == 0 {
        raw
    } else {
        raw[start..].to_vec()
    }
}

/// The blank line before the next "From " belongs to the mbox format, not the message.
fn trim_separator_newline(mut m: Vec<u8>) -> Vec<u8> {
    if m.ends_with(b"\r\n\r\n") {
        m.truncate(m.len() - 2);
    } else if m.ends_with(b"\n\n") {
        m.truncate(m.len() - 1);
    }
    m
}

fn ids_of(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn gmail_label(name: &str) -> Option<String> {
    let n = name.trim().trim_matches('"').trim();
    let sys = match n.to_ascii_lowercase().as_str() {
        "" | "opened" | "archived" => return None,
        "inbox" => "INBOX",
        "sent" => "SENT",
        "unread" => "UNREAD",
        "starred" => "STARRED",
        "important" => "IMPORTANT",
        "spam" => "SPAM",
        "trash" => "TRASH",
        "draft" | "drafts" => "DRAFT",
        "chat" => "CHAT",
        "category personal" => "CATEGORY_PERSONAL",
        "category social" => "CATEGORY_SOCIAL",
        "category promotions" => "CATEGORY_PROMOTIONS",
        "category updates" => "CATEGORY_UPDATES",
        "category forums" => "CATEGORY_FORUMS",
        _ => return Some(n.to_string()),
    };
    Some(sys.to_string())
}

/// Split a label list on commas outside double quotes.
fn split_labels(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Decode RFC 2047 encoded words leniently: Takeout writes X-Gmail-Labels as Q-words
/// containing quotes and commas, which strict parsers leave undecoded.
fn decode_words(raw: &str) -> String {
    let unfolded: String = raw.split(['\r', '\n']).collect::<Vec<_>>().join("");
    let mut out = Vec::new();
    let mut rest = unfolded.trim();
    while !rest.is_empty() {
        let decoded = rest.strip_prefix("=?").and_then(|w| {
            let (charset, w) = w.split_once('?')?;
            let (enc, w) = w.split_once('?')?;
            let end = w.find("?=")?;
            let text = &w[..end];
            let bytes = match enc {
                "Q" | "q" => q_decode(text),
                "B" | "b" => mail_parser::decoders::base64::base64_decode(text.as_bytes())?,
                _ => return None,
            };
            let charset_ok =
                charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii");
            charset_ok.then_some((bytes, 2 + charset.len() + 1 + enc.len() + 1 + end + 2))
        });
        match decoded {
            Some((bytes, used)) => {
                out.extend_from_slice(&bytes);
                rest = &rest[used..];
                // Whitespace between adjacent encoded words is not part of the text.
                let trimmed = rest.trim_start();
                if trimmed.starts_with("=?") {
                    rest = trimmed;
                }
            }
            None => {
                let c = rest.chars().next().unwrap_or(' ');
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn q_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' => {
                match text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'='),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn thread(raws: Vec<Vec<u8>>, now_ms: i64) -> Vec<Imported> {
    let count = raws.len() as i64;
    let parser = MessageParser::default();
    let mut by_msgid: HashMap<String, String> = HashMap::new();
    let mut by_subject: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(raws.len());
    for (i, raw) in raws.into_iter().enumerate() {
        let fallback_date = now_ms - (count - i as i64) * 1000;
        let Some(msg) = parser.parse(&raw[..]) else {
            out.push(Imported {
                raw,
                labels: vec!["INBOX".into()],
                thread_key: format!("solo:{i}"),
                internal_date_ms: fallback_date,
            });
            continue;
        };
        let date = msg
            .date()
            .map(|d| d.to_timestamp() * 1000)
            .filter(|d| *d > 0)
            .unwrap_or(fallback_date);
        let gm_thread = msg
            .header_raw("X-GM-THRID")
            .map(|t| format!("gm:{}", t.trim()));
        let mut refs = ids_of(msg.references());
        refs.extend(ids_of(msg.in_reply_to()));
        let subject = msg.subject().unwrap_or("");
        let base = msg.thread_name().unwrap_or("").to_lowercase();
        let is_reply = base != subject.trim().to_lowercase();
        let key = gm_thread
            .or_else(|| refs.iter().find_map(|r| by_msgid.get(r).cloned()))
            .or_else(|| {
                (is_reply && !base.is_empty())
                    .then(|| by_subject.get(&base).cloned())
                    .flatten()
            })
            .unwrap_or_else(|| format!("t:{i}"));
        if let Some(id) = msg.message_id() {
            by_msgid.insert(id.to_string(), key.clone());
        }
        if !base.is_empty() {
            by_subject.entry(base).or_insert_with(|| key.clone());
        }
        let labels = match msg.header_raw("X-Gmail-Labels") {
            Some(raw_labels) => split_labels(&decode_words(raw_labels))
                .iter()
                .filter_map(|l| gmail_label(l))
                .collect(),
            None => vec!["INBOX".to_string()],
        };
        drop(msg);
        out.push(Imported {
            raw: strip_archive_headers(raw),
            labels,
            thread_key: key,
            internal_date_ms: date,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_headers_on_top_are_not_part_of_the_message() {
        let raw = b"X-GM-THRID: 1234\r\nX-Gmail-Labels: Inbox,\r\n \"Work, stuff\"\r\nFrom: a@b\r\nX-Gmail-Labels: kept\r\n\r\nbody\r\n";
        assert_eq!(
            strip_archive_headers(raw.to_vec()),
            b"From: a@b\r\nX-Gmail-Labels: kept\r\n\r\nbody\r\n".to_vec()
        );
        let plain = b"From: a@b\r\n\r\nbody\r\n".to_vec();
        assert_eq!(strip_archive_headers(plain.clone()), plain);
    }

    #[test]
    fn mbox_split_and_threading() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2024\nMessage-ID: <1@x>\nSubject: Hello\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nX-Gmail-Labels: Inbox,\"Work, stuff\",Unread\n\nbody\n>From here\n\nFrom a@b Mon Jan  1 00:00:00 2024\nMessage-ID: <2@x>\nIn-Reply-To: <1@x>\nSubject: Re: Hello\n\nreply\n";
        let parts = split_mbox(mbox);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].ends_with(b"body\nFrom here\n"));
        let imported = thread(parts, 1_000_000);
        assert_eq!(imported[0].thread_key, imported[1].thread_key);
        assert_eq!(imported[0].labels, vec!["INBOX", "Work, stuff", "UNREAD"]);
        assert_eq!(imported[0].internal_date_ms, 1_704_067_200_000);
        assert_eq!(imported[1].labels, vec!["INBOX"]);
    }

    #[test]
    fn takeout_encoded_label_lists() {
        let raw = "=?UTF-8?Q?Archived,=E2=98=AF,\\'single-quote,takeout?=";
        let labels: Vec<String> = split_labels(&decode_words(raw));
        assert_eq!(labels, vec!["Archived", "☯", "\\'single-quote", "takeout"]);
        let folded = "=?UTF-8?Q?1.Organiza=C4=8Dn=C3=AD,\"3._Culture,_Hle?=\r\n =?UTF-8?Q?d=C3=A1n=C3=AD?=\"";
        assert_eq!(
            split_labels(&decode_words(folded)),
            vec!["1.Organizační", "3. Culture, Hledání"]
        );
    }
}
