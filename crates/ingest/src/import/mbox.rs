//! A streaming mbox splitter: one entry at a time from any `BufRead`, so an
//! import holds one message in memory whatever the file's size.
//!
//! mboxrd, as Google Takeout and `mailingest export` write it: every line
//! starting `From ` starts an entry (a body line that would is written
//! `>From `, and any `>*From ` line gets one more `>`, which is removed here);
//! the line break before the next separator (or the end of the file) is the
//! format's, not the message's, and is removed too. Nothing else is touched:
//! CRLF stays CRLF.

use std::io::{self, BufRead};

/// One entry: its separator line and its bytes, mbox quoting undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxEntry {
    /// Byte offset of the separator line in the file.
    pub offset: u64,
    /// The separator line, without its line break.
    pub separator: Vec<u8>,
    pub body: Vec<u8>,
}

/// Entries of an mbox, in file order. Bytes before the first separator (none
/// in a well-formed file) are reported by [`MboxReader::leading_garbage`].
pub struct MboxReader<R> {
    input: R,
    offset: u64,
    /// The separator that starts the next entry, already read.
    pending: Option<(u64, Vec<u8>)>,
    leading_garbage: u64,
    line: Vec<u8>,
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(input: R) -> Self {
        MboxReader {
            input,
            offset: 0,
            pending: None,
            leading_garbage: 0,
            line: Vec::new(),
        }
    }

    /// Bytes before the first separator, skipped (0 in a well-formed file).
    pub fn leading_garbage(&self) -> u64 {
        self.leading_garbage
    }

    /// Reads one line into `self.line`; `false` at the end of the input.
    fn read_line(&mut self) -> io::Result<bool> {
        self.line.clear();
        let n = self.input.read_until(b'\n', &mut self.line)?;
        self.offset += n as u64;
        Ok(n > 0)
    }

    /// The next entry, or `None` at the end of the file.
    pub fn next_entry(&mut self) -> io::Result<Option<MboxEntry>> {
        let (offset, separator) = match self.pending.take() {
            Some(p) => p,
            None => loop {
                let start = self.offset;
                if !self.read_line()? {
                    return Ok(None);
                }
                if self.line.starts_with(b"From ") {
                    break (start, without_eol(&self.line).to_vec());
                }
                self.leading_garbage += self.line.len() as u64;
            },
        };
        // Each line is read straight onto the end of the body (no copy
        // through `line`), then looked at there.
        let mut body = Vec::new();
        loop {
            let start = self.offset;
            let at = body.len();
            let n = self.input.read_until(b'\n', &mut body)?;
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            let line = &body[at..];
            if line.starts_with(b"From ") {
                self.pending = Some((start, without_eol(line).to_vec()));
                body.truncate(at);
                break;
            }
            let arrows = line.iter().take_while(|b| **b == b'>').count();
            if arrows > 0 && line[arrows..].starts_with(b"From ") {
                // One `>` less; only this last line moves.
                body.remove(at);
            }
        }
        let keep = without_eol(&body).len();
        body.truncate(keep);
        Ok(Some(MboxEntry {
            offset,
            separator,
            body,
        }))
    }
}

/// `line` without one trailing `\r\n` or `\n`.
fn without_eol(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<MboxEntry> {
        let mut r = MboxReader::new(bytes);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().expect("read") {
            out.push(e);
        }
        out
    }

    #[test]
    fn splits_on_separators_keeps_crlf_and_undoes_mboxrd_quoting() {
        let file = b"From 1@xxx Tue Mar 19 09:13:51 +0000 2019\r\nA: b\r\n\r\n>From x\r\n>>From y\r\n>Fromage\r\n\r\n\r\nFrom 2@xxx Tue Mar 19 09:13:52 +0000 2019\r\nC: d\r\n\r\nlast\r\n\r\n";
        let entries = all(file);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].offset, 0);
        assert_eq!(
            entries[0].separator,
            b"From 1@xxx Tue Mar 19 09:13:51 +0000 2019".to_vec()
        );
        assert_eq!(
            entries[0].body,
            b"A: b\r\n\r\nFrom x\r\n>From y\r\n>Fromage\r\n\r\n".to_vec()
        );
        let second = file
            .windows(7)
            .position(|w| w == b"From 2@")
            .expect("second") as u64;
        assert_eq!(entries[1].offset, second);
        assert_eq!(entries[1].body, b"C: d\r\n\r\nlast\r\n".to_vec());
    }

    #[test]
    fn bytes_before_the_first_separator_are_counted_not_returned() {
        let mut r = MboxReader::new(&b"junk\nFrom 1@xxx d\nbody\n"[..]);
        let e = r.next_entry().expect("read").expect("entry");
        assert_eq!(e.offset, 5);
        assert_eq!(e.body, b"body".to_vec());
        assert_eq!(r.leading_garbage(), 5);
        assert!(r.next_entry().expect("read").is_none());
        assert!(all(b"").is_empty());
    }

    #[test]
    fn the_real_takeout_sample_splits_into_its_39_messages() {
        let file = include_bytes!("../../tests/fixtures/takeout/takeout.mbox");
        let entries = all(file);
        assert_eq!(entries.len(), 39);
        assert!(entries.iter().all(|e| e.body.starts_with(b"X-GM-THRID: ")));
        assert!(entries.iter().all(|e| e.body.ends_with(b"\r\n")));
    }
}
