//! The mbox format as Gmail's Takeout writes it, so other tools (and
//! `mailingest import`) import it: a `From <message id in decimal>@xxx <date>`
//! separator line, then `X-GM-THRID` (the thread id in decimal) and
//! `X-Gmail-Labels` (Takeout's words for system labels, user labels by their
//! names in Gmail, nested ones joined by `/` as Gmail names them, a name
//! holding a comma or quote in double quotes, and a list holding anything
//! but ASCII written as RFC 2047 Q-words folded as Takeout folds them), then
//! the message exactly as archived with mboxrd quoting (a line starting
//! `>*From ` gets one more `>`, which an importer removes), then a blank line.

use chrono::{DateTime, Utc};

use crate::domain::takeout_system_name;
use crate::repo::ExportRow;

/// The separator and the Takeout headers that go before the message. `crlf`:
/// the message's own line ending, so the headers match it.
pub(crate) fn preamble(row: &ExportRow, crlf: bool) -> Vec<u8> {
    let eol = if crlf { "\r\n" } else { "\n" };
    let thread = u64::from_str_radix(&row.provider_thread_id, 16)
        .map_or_else(|_| id_as_word(&row.provider_thread_id), |t| t.to_string());
    // Takeout's separator, so `mailingest import` reads an export back: the
    // message id in decimal, `@xxx`, the internalDate.
    let id = u64::from_str_radix(&row.provider_message_id, 16)
        .map_or_else(|_| id_as_word(&row.provider_message_id), |t| t.to_string());
    let labels: Vec<String> = row
        .label_ids
        .iter()
        .enumerate()
        .map(|(i, id)| takeout_label(id, row.label_names.get(i).map(String::as_str)))
        .collect();
    format!(
        "From {id}@xxx {}{eol}\
         X-GM-THRID: {thread}{eol}\
         X-Gmail-Labels: {}{eol}",
        takeout_date(row.internal_date),
        label_list(&labels.join(","), eol)
    )
    .into_bytes()
}

/// What goes after the message: a blank line, in the message's line ending.
/// A message that does not end with a line break gets one first: mbox cannot
/// keep that (the one thing it loses).
pub(crate) fn trailer(ends_with_newline: bool, crlf: bool) -> &'static [u8] {
    match (ends_with_newline, crlf) {
        (true, true) => b"\r\n",
        (true, false) => b"\n",
        (false, true) => b"\r\n\r\n",
        (false, false) => b"\n\n",
    }
}

/// `Thu Dec 04 03:35:12 +0000 2026`, the separator line's date as Takeout writes it.
fn takeout_date(t: DateTime<Utc>) -> String {
    t.format("%a %b %d %H:%M:%S %z %Y").to_string()
}

/// Takeout's word for a system label; a user label's name (its id when none
/// is known) as it is, quoted when it holds a comma or a quote.
fn takeout_label(id: &str, name: Option<&str>) -> String {
    if let Some(word) = takeout_system_name(id) {
        return word.to_owned();
    }
    let name = name.unwrap_or(id);
    if name.contains([',', '"']) {
        format!("\"{}\"", without_controls(&name.replace('"', "")))
    } else {
        without_controls(name)
    }
}

/// The header's value as Takeout writes it: the list as it is when it is
/// ASCII, else the whole list as UTF-8 Q-words of at most 75 characters,
/// folded onto continuation lines (`eol` and a space). Takeout leaves commas
/// and quotes bare inside the words; `=`, `?`, `_`, space and every byte
/// outside printable ASCII are encoded, and a character is never split
/// between words.
fn label_list(list: &str, eol: &str) -> String {
    if list.is_ascii() {
        return list.to_owned();
    }
    const OPEN: &str = "=?UTF-8?Q?";
    const CLOSE: &str = "?=";
    const ROOM: usize = 75 - OPEN.len() - CLOSE.len();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in list.chars() {
        let mut encoded = String::new();
        match c {
            ' ' => encoded.push('_'),
            '=' | '?' | '_' => encoded.push_str(&format!("={:02X}", c as u32)),
            c if c.is_ascii_graphic() => encoded.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    encoded.push_str(&format!("={b:02X}"));
                }
            }
        }
        if !word.is_empty() && word.len() + encoded.len() > ROOM {
            words.push(std::mem::take(&mut word));
        }
        word.push_str(&encoded);
    }
    words.push(word);
    words
        .iter()
        .map(|w| format!("{OPEN}{w}{CLOSE}"))
        .collect::<Vec<_>>()
        .join(&format!("{eol} "))
}

/// An id written into the separator line or a header, whatever was stored:
/// every byte outside `[A-Za-z0-9_-]` percent-encoded, so no stored value can
/// end the line and start a message of its own. Ids are checked where they
/// enter (a bad one quarantines its message); this holds anyway.
fn id_as_word(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A label written into `X-Gmail-Labels`: control characters (CR and LF
/// above all) percent-encoded; the rest as it is.
fn without_controls(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars() {
        if c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// mboxrd quoting over a stream of chunks: a line is held only while it may
/// still turn out to start with `>*From `.
#[derive(Debug)]
pub(crate) struct Quoter {
    /// At the start of a line, or holding one's undecided beginning.
    at_line_start: bool,
    held: Vec<u8>,
}

enum Verdict {
    Undecided,
    Quote,
    Plain,
}

impl Quoter {
    pub(crate) fn new() -> Quoter {
        Quoter {
            at_line_start: true,
            held: Vec::new(),
        }
    }

    fn verdict(held: &[u8]) -> Verdict {
        let quotes = held.iter().take_while(|b| **b == b'>').count();
        let rest = &held[quotes..];
        const FROM: &[u8] = b"From ";
        if rest.len() >= FROM.len() {
            if rest.starts_with(FROM) {
                Verdict::Quote
            } else {
                Verdict::Plain
            }
        } else if FROM.starts_with(rest) {
            Verdict::Undecided
        } else {
            Verdict::Plain
        }
    }

    /// Quotes `chunk` into `out`.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        for &b in chunk {
            if !self.at_line_start {
                out.push(b);
                self.at_line_start = b == b'\n';
                continue;
            }
            self.held.push(b);
            match Self::verdict(&self.held) {
                Verdict::Undecided => {}
                Verdict::Quote => {
                    out.push(b'>');
                    out.append(&mut self.held);
                    self.at_line_start = false;
                }
                Verdict::Plain => {
                    self.at_line_start = b == b'\n';
                    out.append(&mut self.held);
                }
            }
        }
    }

    /// The end of the message: whatever is held is plain text.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.at_line_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, thread: &str, labels: &[&str]) -> ExportRow {
        ExportRow {
            id: 1,
            mailbox: "a@example.com".into(),
            provider_message_id: id.into(),
            provider_thread_id: thread.into(),
            label_ids: labels.iter().map(|l| l.to_string()).collect(),
            label_names: Vec::new(),
            internal_date: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
            raw_sha256: "0".repeat(64),
            raw_size: 1,
            deleted: false,
            purged: false,
        }
    }

    #[test]
    fn stored_ids_never_become_mbox_syntax() {
        // Whatever a row holds (ids are checked where they enter; this is the
        // second wall), the preamble is exactly three lines.
        let hostile = row(
            "18c\nFrom evil@x Thu Jan  1 00:00:00 1970",
            "zz\r\nX-Forged: 1",
            &["INBOX", "Label_1\r\nFrom x", "a\"b,\nc"],
        );
        for crlf in [true, false] {
            let text = String::from_utf8(preamble(&hostile, crlf)).unwrap_or_default();
            let lines: Vec<&str> = text.split_terminator('\n').collect();
            assert_eq!(lines.len(), 3, "{text:?}");
            assert!(
                lines[0].starts_with("From 18c%0AFrom%20evil%40x"),
                "{text:?}"
            );
            assert!(
                lines[1].starts_with("X-GM-THRID: zz%0D%0AX-Forged%3A%201"),
                "{text:?}"
            );
            assert!(
                lines[2].starts_with("X-Gmail-Labels: Inbox,Label_1%0D%0AFrom x,\"ab,%0Ac\""),
                "{text:?}"
            );
        }
        let plain = String::from_utf8(preamble(&row("18c2f0", "18c2f0", &["Label_7"]), false))
            .unwrap_or_default();
        assert!(plain.starts_with("From 1622768@xxx "), "{plain}");
        assert!(plain.contains("X-GM-THRID: 1622768\n"), "{plain}");
        assert!(plain.ends_with("X-Gmail-Labels: Label_7\n"), "{plain}");
    }

    fn quote(chunks: &[&[u8]]) -> Vec<u8> {
        let mut q = Quoter::new();
        let mut out = Vec::new();
        for c in chunks {
            q.push(c, &mut out);
        }
        q.finish(&mut out);
        out
    }

    #[test]
    fn from_lines_are_quoted_wherever_the_chunks_split() {
        let text: &[u8] =
            b"From x\r\nbody\r\nFrom here\r\n>From there\r\nFro\r\n>>From deep\r\nFromage\r\n>\r\n";
        let want: &[u8] =
            b">From x\r\nbody\r\n>From here\r\n>>From there\r\nFro\r\n>>>From deep\r\nFromage\r\n>\r\n";
        assert_eq!(quote(&[text]), want);
        for split in 0..text.len() {
            assert_eq!(
                quote(&[&text[..split], &text[split..]]),
                want,
                "split {split}"
            );
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(quote(&bytes), want);
        assert_eq!(quote(&[b"Fro"]), b"Fro", "held text is flushed at the end");
    }

    #[test]
    fn labels_use_takeout_names_and_thread_ids_are_decimal() {
        let row = ExportRow {
            id: 1,
            mailbox: "a@example.com".into(),
            provider_message_id: "18c0f".into(),
            provider_thread_id: "ff".into(),
            label_ids: vec!["INBOX".into(), "Label_3".into(), "odd, \"one\"".into()],
            label_names: Vec::new(),
            internal_date: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            raw_sha256: String::new(),
            raw_size: 0,
            deleted: false,
            purged: false,
        };
        let text = String::from_utf8(preamble(&row, true)).unwrap();
        assert_eq!(
            text,
            "From 101391@xxx Tue Nov 14 22:13:20 +0000 2023\r\n\
             X-GM-THRID: 255\r\nX-Gmail-Labels: Inbox,Label_3,\"odd, one\"\r\n"
        );
    }

    #[test]
    fn user_labels_by_name_and_non_ascii_lists_as_folded_q_words() {
        let mut named = row(
            "18c0f",
            "ff",
            &["INBOX", "Label_3", "Label_4", "CATEGORY_SOCIAL"],
        );
        named.label_names = vec![
            "INBOX".into(),
            "Work/Projects/2026".into(),
            "Clients, big".into(),
            "CATEGORY_SOCIAL".into(),
        ];
        let text = String::from_utf8(preamble(&named, false)).unwrap();
        assert!(
            text.ends_with(
                "X-Gmail-Labels: Inbox,Work/Projects/2026,\"Clients, big\",Category Social\n"
            ),
            "{text}"
        );

        named.label_names[1] = "Café/Menü = 100% ?_".into();
        named.label_names[2] = "1.Organizační, \"3. Culture\" Hledání ztraceného času".into();
        let text = String::from_utf8(preamble(&named, true)).unwrap();
        let header = text.split("X-Gmail-Labels: ").nth(1).unwrap();
        let lines: Vec<&str> = header.trim_end().split("\r\n ").collect();
        assert!(lines.len() > 1, "folded: {header:?}");
        for line in &lines {
            assert!(
                line.starts_with("=?UTF-8?Q?") && line.ends_with("?="),
                "{line}"
            );
            assert!(line.len() <= 75, "{line}");
            assert!(line.is_ascii() && !line.contains(' '), "{line}");
        }
        let encoded: String = lines
            .iter()
            .map(|l| &l["=?UTF-8?Q?".len()..l.len() - 2])
            .collect();
        assert_eq!(
            q_decode(&encoded),
            "Inbox,Caf\u{e9}/Men\u{fc} = 100% ?_,\"1.Organizační, 3. Culture Hledání ztraceného času\",Category Social"
        );
        // A hostile name stays on its line, encoded or not.
        named.label_names[1] = "é\r\nFrom x".into();
        named.label_names[2] = "x".into();
        let text = String::from_utf8(preamble(&named, false)).unwrap();
        assert_eq!(text.split_terminator('\n').count(), 3, "{text:?}");
        assert!(text.contains("%0D%0AFrom"), "{text:?}");
    }

    /// The Q decoding a Takeout reader does (`_` is a space).
    fn q_decode(text: &str) -> String {
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'_' => out.push(b' '),
                b'=' => {
                    out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
}
