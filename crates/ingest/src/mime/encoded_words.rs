//! RFC 2047 decoding of unstructured header text (the Subject).
//!
//! mail-parser decodes encoded words but inserts a space between an encoded word
//! and text touching it (`=?UTF-8?Q?caf=C3=A9?=.` → "café ."), and drops to
//! lossy UTF-8 on raw 8-bit Latin-1 headers. Subjects are what people search
//! and read, so we decode them from the raw header bytes here, as leniently as
//! mail clients do: encoded words are recognised even when not separated by
//! whitespace, whitespace *between* two encoded words is dropped (RFC 2047
//! §6.2), malformed encoded words stay literal, and 8-bit bytes outside encoded
//! words are read as UTF-8, or Windows-1252 when they are not valid UTF-8.

use super::decode::decode_base64;
use super::text::decode_text;

enum Segment {
    Literal(Vec<u8>),
    Encoded(String),
}

/// Decodes a raw (possibly folded) unstructured header value.
pub(crate) fn decode_unstructured(raw: &[u8]) -> String {
    // Unfolding (RFC 5322 §2.2.3): drop the line breaks, keep the whitespace.
    let unfolded: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();

    let mut segments: Vec<Segment> = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    while i + 1 < unfolded.len() {
        if unfolded[i] == b'='
            && unfolded[i + 1] == b'?'
            && let Some((decoded, len)) = encoded_word(&unfolded[i..])
        {
            if literal_start < i {
                segments.push(Segment::Literal(unfolded[literal_start..i].to_vec()));
            }
            segments.push(Segment::Encoded(decoded));
            i += len;
            literal_start = i;
            continue;
        }
        i += 1;
    }
    if literal_start < unfolded.len() {
        segments.push(Segment::Literal(unfolded[literal_start..].to_vec()));
    }

    let mut out = String::new();
    for (n, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Encoded(text) => out.push_str(text),
            Segment::Literal(bytes) => {
                let between_encoded = n > 0
                    && matches!(segments.get(n - 1), Some(Segment::Encoded(_)))
                    && matches!(segments.get(n + 1), Some(Segment::Encoded(_)));
                if between_encoded && bytes.iter().all(|b| *b == b' ' || *b == b'\t') {
                    continue;
                }
                out.push_str(&decode_text(bytes, None));
            }
        }
    }
    out
}

/// Parses `=?charset?enc?text?=` at the start of `s`; returns the decoded text
/// and the encoded word's length, or `None` if it is not a well-formed one.
fn encoded_word(s: &[u8]) -> Option<(String, usize)> {
    let rest = s.strip_prefix(b"=?")?;
    let q1 = rest.iter().position(|&b| b == b'?')?;
    let charset = &rest[..q1];
    let rest = &rest[q1 + 1..];
    let (&encoding, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b"?")?;
    let end = rest.windows(2).position(|w| w == b"?=")?;
    let text = &rest[..end];
    let valid_charset = !charset.is_empty()
        && charset
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b'?' && *b != b'=');
    if !valid_charset || text.contains(&b'?') {
        return None;
    }
    let bytes = match encoding {
        b'B' | b'b' => {
            let alphabet = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
            if !text.iter().all(alphabet) {
                return None;
            }
            decode_base64(text)
        }
        b'Q' | b'q' => decode_q(text),
        _ => return None,
    };
    // RFC 2231 §5: "charset*language".
    let charset = String::from_utf8_lossy(charset);
    let charset = charset.split('*').next().unwrap_or_default();
    let total = 2 + q1 + 1 + 1 + 1 + end + 2;
    Some((decode_text(&bytes, Some(charset)), total))
}

/// The "Q" encoding: `_` is a space, `=XX` a byte, anything else itself.
fn decode_q(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'=');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::decode_unstructured as d;

    #[test]
    fn adjacent_text_gets_no_extra_space() {
        assert_eq!(d(b" =?UTF-8?Q?caf=C3=A9?=."), " café.");
        assert_eq!(d(b"(=?ISO-8859-1?Q?a?=)"), "(a)");
        assert_eq!(d(b"x=?UTF-8?Q?a?=b"), "xab");
    }

    #[test]
    fn rfc2047_section_8_examples() {
        assert_eq!(d(b"(=?ISO-8859-1?Q?a?= b)"), "(a b)");
        assert_eq!(d(b"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)"), "(ab)");
        assert_eq!(d(b"(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)"), "(ab)");
        assert_eq!(d(b"(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)"), "(ab)");
        assert_eq!(d(b"(=?ISO-8859-1?Q?a_b?=)"), "(a b)");
        assert_eq!(d(b"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)"), "(a b)");
    }

    #[test]
    fn malformed_words_stay_literal_and_8bit_is_read() {
        assert_eq!(d(b"=?utf-8?q?broken"), "=?utf-8?q?broken");
        assert_eq!(d(b"=?UTF-8?B?!!!?="), "=?UTF-8?B?!!!?=");
        assert_eq!(d(b"=?UTF-8?X?abc?="), "=?UTF-8?X?abc?=");
        assert_eq!(d(b"caf\xe9"), "café");
        assert_eq!(d("café".as_bytes()), "café");
        assert_eq!(d(b"=?UTF-8*en?Q?lang?="), "lang");
        assert_eq!(d(b"=?x-unknown?Q?caf=E9?="), "café");
    }
}
