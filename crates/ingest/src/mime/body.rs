//! Chooses the text and HTML bodies among the leaves and decodes them to UTF-8.
//!
//! mail-parser already classifies body parts the way mail clients do
//! (`text_body` / `html_body`, following multipart/alternative and inline
//! disposition rules). Those lists also carry substitutes (an HTML part listed as
//! the "text" body of an HTML-only message, inline images), so we pick the first
//! entry of each list whose real type matches: text/plain for `body_text`,
//! text/html for `body_html`. We do not synthesise one from the other: both
//! columns hold what the sender wrote. Any other text part (a second inline
//! text, text/calendar, …) stays a `ParsedPart`, so nothing is lost; a chosen
//! body that carries a filename is a `ParsedPart` as well (see `parse`).

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::parts::{ContentSource, Leaf, content, mime_type};
use super::text::decode_text;

/// The chosen body parts, as indices into `message.parts`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BodyChoice {
    pub text: Option<usize>,
    pub html: Option<usize>,
}

pub(crate) fn choose(message: &Message<'_>, leaves: &[Leaf]) -> BodyChoice {
    // Part index → leaf, so each lookup below is O(1) even for messages with
    // thousands of parts.
    let mut leaf_of: Vec<Option<&Leaf>> = vec![None; message.parts.len()];
    for leaf in leaves {
        if let Some(slot) = leaf_of.get_mut(leaf.index) {
            *slot = Some(leaf);
        }
    }
    let leaf_at = |i: usize| leaf_of.get(i).copied().flatten();
    let is_leaf = |i: usize| leaf_at(i).is_some();
    let type_of =
        |i: usize| leaf_at(i).and_then(|l| message.parts.get(i).map(|p| mime_type(p, l.in_digest)));
    let text = message
        .text_body
        .iter()
        .map(|&i| i as usize)
        .find(|&i| {
            is_leaf(i)
                && matches!(
                    message.parts.get(i).map(|p| &p.body),
                    Some(PartType::Text(_))
                )
                && type_of(i).as_deref() == Some("text/plain")
        })
        .or_else(|| undecodable_body(message, leaves, "text/plain"))
        .or_else(|| broken_multipart_root(message, leaves));
    let html = message
        .html_body
        .iter()
        .map(|&i| i as usize)
        .find(|&i| {
            is_leaf(i)
                && matches!(
                    message.parts.get(i).map(|p| &p.body),
                    Some(PartType::Html(_))
                )
                && type_of(i).as_deref() == Some("text/html")
        })
        .or_else(|| undecodable_body(message, leaves, "text/html"));
    BodyChoice { text, html }
}

/// mail-parser drops a body part from its body lists when its transfer encoding
/// does not decode cleanly (base64 with junk, a truncated last part, a
/// headers-only message). Our own decoder is lenient, so such a part is still the
/// body when it looks like one: the first leaf of the wanted type that is marked
/// as an encoding problem and is neither a named file nor an attachment.
fn undecodable_body(message: &Message<'_>, leaves: &[Leaf], wanted: &str) -> Option<usize> {
    leaves
        .iter()
        .find(|leaf| {
            message.parts.get(leaf.index).is_some_and(|part| {
                part.is_encoding_problem
                    && mime_type(part, leaf.in_digest) == wanted
                    && part.attachment_name().is_none()
                    && !part
                        .content_disposition()
                        .is_some_and(|cd| cd.is_attachment())
            })
        })
        .map(|leaf| leaf.index)
}

/// A message that declares multipart but whose boundary never appears is one
/// leaf of text as far as mail-parser can tell; mail clients show that text as
/// the body, so we do too instead of filing it as an attachment.
fn broken_multipart_root(message: &Message<'_>, leaves: &[Leaf]) -> Option<usize> {
    let [leaf] = leaves else { return None };
    let part = message.parts.get(leaf.index)?;
    let declared_multipart = part
        .content_type()
        .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"));
    (leaf.path.is_none() && declared_multipart && matches!(part.body, PartType::Text(_)))
        .then_some(leaf.index)
}

/// A body part's text: transfer-decoded from the raw bytes, then converted from
/// its declared charset (see `decode_text` for the fallbacks). Never contains NUL.
pub(crate) fn body_text(raw: &[u8], part: &MessagePart<'_>, source: ContentSource) -> String {
    let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
    decode_text(&content(raw, part, source), charset)
}
