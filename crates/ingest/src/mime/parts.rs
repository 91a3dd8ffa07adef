//! Walks mail-parser's part tree and numbers every leaf the way Gmail numbers
//! `partId`, then turns the non-body leaves into `ParsedPart`s.
//!
//! mail-parser keeps the parts of one message in a flat `Vec` in document order;
//! a multipart's `PartType::Multipart(ids)` lists its children's indices into
//! that `Vec`, in the order they appear. Gmail numbers the children of a
//! multipart from 0 in the same document order, so the path of a leaf is the
//! sequence of positions *within each parent's child list* (not the flat index).
//! A nested `message/rfc822` is a leaf: its parts live in a separate `Message`
//! inside `PartType::Message` and are not walked.

use std::borrow::Cow;

use bytes::Bytes;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::decode::{TransferEncoding, decode, is_canonical_base64};
use super::part_path::PartPath;
use super::text::clean_opt;

/// An attachment or inline part: every leaf that is not the chosen text or HTML
/// body, and every leaf with a filename (a named body is also a part).
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedPart {
    /// Gmail-style part path ("0", "1.2"); see [`PartPath`].
    pub part_id: PartPath,
    /// Lowercased `type/subtype` (defaults per RFC 2045/2046 when absent).
    pub mime_type: String,
    /// Decoded filename (RFC 2231 / RFC 2047). Metadata only: never a path.
    pub filename: Option<String>,
    /// Content-ID without `<>`.
    pub content_id: Option<String>,
    /// "attachment" or "inline" (unknown dispositions become "attachment", RFC 2183 §2.8).
    pub disposition: Option<String>,
    /// Content with the transfer encoding removed; no charset conversion.
    pub content: Bytes,
}

impl ParsedPart {
    /// Size of the decoded content in bytes.
    pub fn size(&self) -> u64 {
        self.content.len() as u64
    }
}

// Hand-written so logging a part never dumps megabytes of attachment bytes.
impl std::fmt::Debug for ParsedPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedPart")
            .field("part_id", &self.part_id)
            .field("mime_type", &self.mime_type)
            .field("filename", &self.filename)
            .field("content_id", &self.content_id)
            .field("disposition", &self.disposition)
            .field("size", &self.content.len())
            .finish()
    }
}

/// A leaf of the top-level tree.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// Index into `message.parts`.
    pub index: usize,
    /// `None` for the root (Gmail's `""`).
    pub path: Option<PartPath>,
    /// The parent is multipart/digest, where the default type is message/rfc822.
    pub in_digest: bool,
}

/// Every leaf of the top-level message in document order, with its path.
///
/// Iterative (an explicit stack) so a message with thousands of nested
/// multiparts cannot overflow the blocking thread's stack; each index is visited
/// at most once and only forward references are followed, so a malformed tree
/// cannot loop.
pub(crate) fn leaves(message: &Message<'_>) -> Vec<Leaf> {
    let mut out = Vec::new();
    if message.parts.is_empty() {
        return out;
    }
    let mut visited = vec![false; message.parts.len()];
    // (index, path indices, parent is digest)
    let mut stack: Vec<(usize, Vec<usize>, bool)> = vec![(0, Vec::new(), false)];
    while let Some((index, path, in_digest)) = stack.pop() {
        let Some(part) = message.parts.get(index) else {
            continue;
        };
        if std::mem::replace(&mut visited[index], true) {
            continue;
        }
        match &part.body {
            PartType::Multipart(children) => {
                let is_digest = is_type(part, "multipart", "digest");
                // Reverse so the stack pops children in document order.
                for (pos, &child) in children.iter().enumerate().rev() {
                    let child = child as usize;
                    if child > index && child < message.parts.len() {
                        let mut child_path = path.clone();
                        child_path.push(pos);
                        stack.push((child, child_path, is_digest));
                    }
                }
            }
            _ => out.push(Leaf {
                index,
                path: PartPath::from_indices(&path),
                in_digest,
            }),
        }
    }
    out
}

fn is_type(part: &MessagePart<'_>, ty: &str, subtype: &str) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ty)
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case(subtype))
    })
}

/// Whether the part carries a filename (Content-Disposition `filename` /
/// `filename*`, or Content-Type `name`), i.e. `ParsedPart::filename` is `Some`.
/// Gmail gives every such part an attachmentId, so it is an attachment even
/// when it is also the message's body.
pub(crate) fn has_filename(part: &MessagePart<'_>) -> bool {
    clean_opt(part.attachment_name()).is_some()
}

/// Lowercased `type/subtype`. Absent → text/plain (RFC 2045 §5.2), or
/// message/rfc822 inside multipart/digest (RFC 2046 §5.1.5). A type without a
/// subtype is invalid: "text" becomes text/plain, anything else
/// application/octet-stream.
pub(crate) fn mime_type(part: &MessagePart<'_>, in_digest: bool) -> String {
    match part.content_type() {
        None if in_digest => "message/rfc822".to_owned(),
        None => "text/plain".to_owned(),
        Some(ct) => {
            let ty = ct.ctype().trim().to_ascii_lowercase();
            match ct.subtype().map(|s| s.trim().to_ascii_lowercase()) {
                Some(sub) if !sub.is_empty() && !ty.is_empty() => format!("{ty}/{sub}"),
                _ if ty == "text" => "text/plain".to_owned(),
                _ => "application/octet-stream".to_owned(),
            }
        }
    }
}

/// The part's raw body bytes (between its header block and its closing
/// boundary), clamped to the input so inconsistent offsets from a damaged
/// message can never index out of bounds.
pub(crate) fn raw_body<'r>(raw: &'r [u8], part: &MessagePart<'_>) -> &'r [u8] {
    let start = (part.offset_body as usize).min(raw.len());
    let end = (part.offset_end as usize).clamp(start, raw.len());
    &raw[start..end]
}

/// Where a part's transfer-decoded bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentSource {
    /// mail-parser's decoded bytes where they are exactly the content (see
    /// [`parser_content`]), our lenient decoder otherwise.
    ParserWhereExact,
    /// Always our decoder over the raw bytes (the reference the fast path is
    /// tested against).
    #[cfg_attr(not(test), allow(dead_code))]
    Raw,
}

/// The part's content with its transfer encoding removed.
pub(crate) fn content<'p>(
    raw: &[u8],
    part: &'p MessagePart<'_>,
    source: ContentSource,
) -> Cow<'p, [u8]> {
    if source == ContentSource::ParserWhereExact
        && let Some(bytes) = parser_content(raw, part)
    {
        return Cow::Borrowed(bytes);
    }
    let encoding = TransferEncoding::from_header(part.content_transfer_encoding());
    Cow::Owned(decode(encoding, raw_body(raw, part)))
}

/// mail-parser has already removed the transfer encoding of every part; decoding
/// again was the largest single cost of parsing. Its bytes are used only where
/// they are provably ours: canonical base64 parts (line breaks, including the
/// one before the next boundary, are not content; junk, stray `=` and dangling
/// characters are where lenient decoders differ) with no encoding problem
/// reported (otherwise it hands back the still-encoded text) and, for text it converted
/// to UTF-8, a conversion that cannot have changed a byte: no charset decoder
/// ran (absent, UTF-8 or unknown label) and nothing became U+FFFD.
/// Quoted-printable and unencoded parts are sliced and decoded from the raw
/// bytes: mail-parser leaves the line break before the boundary out of those,
/// where our offsets (and the emulator's part data) keep it.
pub(crate) fn parser_content<'p>(raw: &[u8], part: &'p MessagePart<'_>) -> Option<&'p [u8]> {
    let base64 =
        TransferEncoding::from_header(part.content_transfer_encoding()) == TransferEncoding::Base64;
    if part.is_encoding_problem || !base64 || !is_canonical_base64(raw_body(raw, part)) {
        return None;
    }
    match &part.body {
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Some(bytes.as_ref()),
        PartType::Text(text) | PartType::Html(text) => {
            let decoder_ran = part
                .content_type()
                .and_then(|ct| ct.attribute("charset"))
                .is_some_and(|label| charset_decoder(label.as_bytes()).is_some());
            (!decoder_ran && !text.contains('\u{FFFD}')).then_some(text.as_bytes())
        }
        // A nested message's raw bytes are not always its part's (in a digest
        // they are the enclosing message's).
        PartType::Message(_) | PartType::Multipart(_) => None,
    }
}

/// Builds the `ParsedPart` for one leaf.
pub(crate) fn to_parsed_part(
    raw: &[u8],
    part: &MessagePart<'_>,
    leaf: &Leaf,
    source: ContentSource,
) -> ParsedPart {
    let disposition = part.content_disposition().map(|cd| {
        if cd.ctype().trim().eq_ignore_ascii_case("inline") {
            "inline".to_owned()
        } else {
            "attachment".to_owned()
        }
    });
    ParsedPart {
        part_id: leaf.path.clone().unwrap_or_else(PartPath::root_leaf),
        mime_type: mime_type(part, leaf.in_digest),
        filename: clean_opt(part.attachment_name()),
        content_id: clean_opt(
            part.content_id()
                .map(|id| id.trim().trim_start_matches('<').trim_end_matches('>')),
        ),
        disposition,
        content: Bytes::from(content(raw, part, source).into_owned()),
    }
}
