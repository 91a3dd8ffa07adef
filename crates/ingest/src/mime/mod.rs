//! MIME → structured message: `parse(raw)` turns the RFC 822 bytes Gmail returns
//! with `format=raw` into a [`ParsedMessage`] (headers, UTF-8 bodies, and every
//! attachment/inline part keyed by its Gmail-style [`PartPath`]).
//!
//! Built on mail-parser 0.11 for header and structure parsing; content bytes are
//! re-decoded from the raw input here (see `decode.rs` for why). Synchronous and
//! CPU-bound: call it from `spawn_blocking`.
//!
//! Part numbering (must match the emulator's `full` format and Gmail's partId):
//! the root payload is Gmail's `""`; children of a multipart are numbered from 0
//! in document order, grandchildren "1.0", "1.1", …; a message/rfc822 part is a
//! leaf whose content is the embedded message's bytes. A single-part message
//! whose only leaf is not a body (e.g. a bare application/pdf) stores that leaf
//! as "0", because the schema's part_id must be non-empty digits-and-dots.
//!
//! A leaf with a filename (Content-Disposition `filename`/`filename*` or
//! Content-Type `name`) is always in `parts`, as Gmail always lists it as an
//! attachment (with an attachmentId), even when it is also chosen as
//! `body_text`/`body_html` (e.g. a lone `text/plain; name="notes.txt"`, stored
//! as part "0" and as the body).

mod addresses;
mod body;
mod decode;
mod encoded_words;
mod error;
mod headers;
mod part_path;
mod parts;
mod text;

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use mail_parser::{HeaderName, MessageParser};

pub use addresses::Address;
pub(crate) use encoded_words::decode_unstructured;
pub use error::MimeError;
pub use part_path::{InvalidPartPath, PartPath};
pub use parts::ParsedPart;

use parts::ContentSource;

/// One message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    /// Message-ID without angle brackets.
    pub rfc822_message_id: Option<String>,
    /// First In-Reply-To id, without angle brackets.
    pub in_reply_to: Option<String>,
    /// References ids in order, without angle brackets.
    pub references: Vec<String>,
    /// Subject, encoded words decoded.
    pub subject: Option<String>,
    pub from: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub reply_to: Vec<Address>,
    /// The Date header in UTC; `None` when absent or unparseable.
    pub sent_at: Option<DateTime<Utc>>,
    /// The chosen text/plain body, UTF-8, NUL-free.
    pub body_text: Option<String>,
    /// The chosen text/html body, UTF-8, NUL-free.
    pub body_html: Option<String>,
    /// Every leaf that is not one of the two bodies, plus every leaf with a
    /// filename even if it is also a body (then it is both), in document order.
    pub parts: Vec<ParsedPart>,
}

/// Parses raw RFC 822 bytes.
///
/// Lenient like mail-parser and Gmail: damaged structure, bad encodings and wrong
/// charset labels still produce a message. Errors only for input with no message
/// in it (empty, or no header block), or if mail-parser fails internally.
/// Never panics.
pub fn parse(raw: &[u8]) -> Result<ParsedMessage, MimeError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(MimeError::Empty);
    }
    // mail-parser documents that it never panics, but it has debug assertions
    // and unchecked arithmetic on offsets in its recovery paths; one hostile
    // message must cost a skip, not the worker.
    catch_unwind(AssertUnwindSafe(|| {
        parse_unchecked(raw, ContentSource::ParserWhereExact)
    }))
    .unwrap_or(Err(MimeError::ParserFailure { len: raw.len() }))
}

fn parse_unchecked(raw: &[u8], source: ContentSource) -> Result<ParsedMessage, MimeError> {
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.parts.is_empty())
        .ok_or(MimeError::NoHeaders { len: raw.len() })?;

    let leaves = parts::leaves(&message);
    let choice = body::choose(&message, &leaves);
    let body_of = |index: Option<usize>| {
        index
            .and_then(|i| message.parts.get(i))
            .map(|part| body::body_text(raw, part, source))
    };
    let body_text = body_of(choice.text);
    let body_html = body_of(choice.html);

    // A leaf with a filename is an attachment even when it is also the body
    // (Gmail gives it an attachmentId and lists it as an attachment): the body
    // columns are a convenience copy, the attachment row must not be lost.
    let is_body = |index: usize| Some(index) == choice.text || Some(index) == choice.html;
    let parsed_parts = leaves
        .iter()
        .filter_map(|leaf| {
            message
                .parts
                .get(leaf.index)
                .filter(|part| !is_body(leaf.index) || parts::has_filename(part))
                .map(|part| parts::to_parsed_part(raw, part, leaf, source))
        })
        .collect();

    Ok(ParsedMessage {
        rfc822_message_id: headers::message_id(&message),
        in_reply_to: headers::in_reply_to(&message),
        references: headers::references(&message),
        subject: headers::subject(&message, raw),
        from: addresses::collect(&message, HeaderName::From),
        to: addresses::collect(&message, HeaderName::To),
        cc: addresses::collect(&message, HeaderName::Cc),
        bcc: addresses::collect(&message, HeaderName::Bcc),
        reply_to: addresses::collect(&message, HeaderName::ReplyTo),
        sent_at: headers::sent_at(&message),
        body_text,
        body_html,
        parts: parsed_parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*, fixed seed: failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("fixture dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml" || e == "mbox"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).expect("fixture")))
            .collect();
        out.sort();
        assert!(out.len() >= 15, "fixtures missing: {}", out.len());
        out
    }

    /// Reusing mail-parser's decoded bytes must give exactly what decoding the
    /// raw bytes gives: every fixture, and thousands of damaged variants of them
    /// (bytes flipped to characters that matter to MIME, base64 and charsets).
    #[test]
    fn parser_bytes_are_used_only_where_they_equal_our_decoding() {
        let mut rng = Rng(0x5eed_cafe);
        const NOISE: &[u8] = b"=\r\n-_ +/!*?\"\x00\xff\xe9\xc3A0";
        let mut checked = 0usize;
        for (name, raw) in fixtures() {
            let mut variants = vec![raw.clone()];
            for _ in 0..300 {
                let mut v = raw.clone();
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(v.len());
                    v[at] = NOISE[rng.below(NOISE.len())];
                }
                variants.push(v);
            }
            for (i, v) in variants.iter().enumerate() {
                let fast = catch_unwind(AssertUnwindSafe(|| {
                    parse_unchecked(v, ContentSource::ParserWhereExact)
                }));
                let slow =
                    catch_unwind(AssertUnwindSafe(|| parse_unchecked(v, ContentSource::Raw)));
                if let (Ok(fast), Ok(slow)) = (fast, slow) {
                    let pairs = fast.iter().flat_map(|m| &m.parts);
                    for (a, b) in pairs.zip(slow.iter().flat_map(|m| &m.parts)) {
                        assert_eq!(
                            a.content, b.content,
                            "{name} variant {i} part {:?}",
                            a.part_id
                        );
                    }
                    assert_eq!(fast, slow, "{name} variant {i}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 5_000, "only {checked} messages compared");
    }

    /// The shortcut is taken for ordinary base64 parts (else the test above proves nothing).
    #[test]
    fn parser_bytes_are_used_for_clean_base64_and_utf8_text() {
        let raw = b"From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
Y2Fmw6k=\r\n--b\r\nContent-Type: application/pdf; name=x.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
        let message = MessageParser::default().parse(&raw[..]).expect("parses");
        let exact: Vec<bool> = parts::leaves(&message)
            .iter()
            .map(|leaf| parts::parser_content(raw, &message.parts[leaf.index]).is_some())
            .collect();
        assert_eq!(exact, [true, true]);
        let parsed = parse(raw).expect("parses");
        assert_eq!(parsed.body_text.as_deref(), Some("café"));
        assert_eq!(&parsed.parts[0].content[..], b"%PDF-1.4\n");
    }
}
