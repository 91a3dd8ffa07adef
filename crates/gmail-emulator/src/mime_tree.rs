//! Parsing a raw RFC 822 message into Gmail's payload tree (partId numbering, headers,
//! decoded bodies), its snippet and the facts `q` needs (has:attachment).
//!
//! Numbering (shared with ingest): root "" ; children of a multipart "0", "1", … ;
//! grandchildren "1.0", …; message/rfc822 is a leaf.

use bytes::Bytes;
use mail_parser::{Encoding, MessageParser, MimeHeaders, PartType};

/// One node of the payload tree.
#[derive(Debug, Clone)]
pub(crate) struct PartNode {
    pub part_id: String,
    pub mime_type: String,
    pub filename: String,
    pub headers: Vec<(String, String)>,
    /// Decoded (transfer-encoding removed) body of a leaf; empty for multiparts and in
    /// the cached light tree (bodies are decoded again when a request needs them).
    pub body: Bytes,
    /// Decoded body size (kept in the light tree too).
    pub size: usize,
    /// Served by attachmentId rather than inline data.
    pub by_attachment_id: bool,
    pub children: Vec<PartNode>,
}

impl PartNode {
    pub fn find(&self, part_id: &str) -> Option<&PartNode> {
        if self.part_id == part_id {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(part_id))
    }

    fn any(&self, f: &dyn Fn(&PartNode) -> bool) -> bool {
        f(self) || self.children.iter().any(|c| c.any(f))
    }
}

/// What the emulator derives from a message's bytes.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub root: PartNode,
    pub snippet: String,
    pub has_attachment: bool,
}

/// Bodies above this size go by attachmentId even without a filename.
const INLINE_LIMIT: usize = 1 << 20;

impl Parsed {
    /// The tree with bodies (for format=full and attachments.get).
    pub fn parse(raw: &[u8]) -> Parsed {
        Self::parse_with(raw, true)
    }

    /// The tree without bodies: what is cached per message, so memory stays ~1x raw.
    pub fn parse_light(raw: &[u8]) -> Parsed {
        Self::parse_with(raw, false)
    }

    fn parse_with(raw: &[u8], bodies: bool) -> Parsed {
        let Some(msg) = MessageParser::default().parse(raw) else {
            // Unparseable: Gmail still serves it; model it as one opaque text part.
            return Parsed {
                root: PartNode {
                    part_id: String::new(),
                    mime_type: "text/plain".into(),
                    filename: String::new(),
                    headers: Vec::new(),
                    body: if bodies {
                        Bytes::copy_from_slice(raw)
                    } else {
                        Bytes::new()
                    },
                    size: raw.len(),
                    by_attachment_id: false,
                    children: Vec::new(),
                },
                snippet: String::new(),
                has_attachment: false,
            };
        };
        let root = build(&msg, raw, 0, String::new(), 0, bodies);
        let text = msg
            .body_text(0)
            .map(|t| t.into_owned())
            .or_else(|| msg.body_html(0).map(|h| strip_tags(&h)))
            .unwrap_or_default();
        let has_attachment = root.any(&|p| !p.filename.is_empty());
        Parsed {
            root,
            snippet: snippet(&text),
            has_attachment,
        }
    }
}

fn build(
    msg: &mail_parser::Message<'_>,
    raw: &[u8],
    idx: u32,
    part_id: String,
    depth: usize,
    bodies: bool,
) -> PartNode {
    let Some(part) = msg.part(idx) else {
        return PartNode {
            part_id,
            mime_type: "text/plain".into(),
            filename: String::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            size: 0,
            by_attachment_id: false,
            children: Vec::new(),
        };
    };
    let mime_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        })
        .unwrap_or_else(|| "text/plain".to_string());
    let filename = part.attachment_name().unwrap_or("").to_string();
    let headers = part
        .headers
        .iter()
        .map(|h| header_pair(raw, h.offset_field, h.offset_start, h.offset_end))
        .collect();
    let slice = |a: u32, b: u32| raw.get(a as usize..b as usize).unwrap_or(&[]);
    let mut children = Vec::new();
    let body = match &part.body {
        PartType::Multipart(ids) if depth < 64 => {
            for (n, child) in ids.iter().enumerate() {
                let id = if part_id.is_empty() {
                    n.to_string()
                } else {
                    format!("{part_id}.{n}")
                };
                children.push(build(msg, raw, *child, id, depth + 1, bodies));
            }
            Bytes::new()
        }
        PartType::Multipart(_) => Bytes::new(),
        PartType::Binary(b) | PartType::InlineBinary(b) => Bytes::copy_from_slice(b),
        PartType::Message(_) => Bytes::copy_from_slice(slice(part.offset_body, part.offset_end)),
        PartType::Text(_) | PartType::Html(_) => {
            let body = slice(part.offset_body, part.offset_end);
            let decoded = match part.encoding {
                Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
                Encoding::QuotedPrintable => {
                    mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                }
                Encoding::None => None,
            };
            Bytes::from(decoded.unwrap_or_else(|| body.to_vec()))
        }
    };
    let is_multipart = matches!(part.body, PartType::Multipart(_));
    let by_attachment_id = !is_multipart
        && (!filename.is_empty()
            || !(mime_type.starts_with("text/") || mime_type == "message/rfc822")
            || body.len() > INLINE_LIMIT);
    let size = body.len();
    PartNode {
        part_id,
        mime_type,
        filename,
        headers,
        body: if bodies { body } else { Bytes::new() },
        size,
        by_attachment_id,
        children,
    }
}

/// Header name and value as Gmail shows them: unfolded, encoded-words decoded.
fn header_pair(raw: &[u8], field: u32, start: u32, end: u32) -> (String, String) {
    let name_bytes = raw.get(field as usize..start as usize).unwrap_or(&[]);
    let name = String::from_utf8_lossy(name_bytes);
    let name = name.split(':').next().unwrap_or("").trim().to_string();
    let value_bytes = raw.get(start as usize..end as usize).unwrap_or(&[]);
    let mut unfolded = Vec::with_capacity(value_bytes.len());
    for &b in value_bytes {
        if b != b'\r' && b != b'\n' {
            unfolded.push(b);
        }
    }
    let text = String::from_utf8_lossy(&unfolded).trim().to_string();
    let value = if text.contains("=?") {
        let mut line = unfolded.clone();
        line.extend_from_slice(b"\r\n");
        match mail_parser::parsers::MessageStream::new(&line).parse_unstructured() {
            mail_parser::HeaderValue::Text(t) => t.trim().to_string(),
            _ => text,
        }
    } else {
        text
    };
    (name, value)
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Gmail's snippet: whitespace collapsed, ~200 chars, HTML-escaped.
fn snippet(text: &str) -> String {
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = collapsed.chars().take(200).collect();
    let mut out = String::with_capacity(cut.len());
    for c in cut.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: a@example.com\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello <world>\r\n--b2\r\nContent-Type: text/html\r\n\r\n<p>Hello</p>\r\n--b2--\r\n--b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b1--\r\n";

    #[test]
    fn numbers_parts_like_gmail() {
        let p = Parsed::parse(MIXED);
        assert_eq!(p.root.part_id, "");
        assert_eq!(p.root.mime_type, "multipart/mixed");
        assert_eq!(p.root.children[0].part_id, "0");
        assert_eq!(p.root.children[0].children[1].part_id, "0.1");
        assert_eq!(p.root.children[0].children[1].mime_type, "text/html");
        let pdf = p.root.find("1").expect("part 1");
        assert_eq!(pdf.filename, "a.pdf");
        assert!(pdf.by_attachment_id);
        assert_eq!(&pdf.body[..], b"%PDF-");
        assert!(p.has_attachment);
        assert_eq!(p.snippet, "Hello &lt;world&gt;");
        let subject = p.root.headers.iter().find(|(n, _)| n == "Subject");
        assert_eq!(subject.map(|(_, v)| v.as_str()), Some("Café"));
    }

    #[test]
    fn single_part_is_root_only() {
        let p = Parsed::parse(b"Subject: x\r\n\r\nbody text\r\n");
        let light = Parsed::parse_light(b"Subject: x\r\n\r\nbody text\r\n");
        assert!(light.root.body.is_empty());
        assert_eq!(light.root.size, p.root.size);
        assert_eq!(light.snippet, "body text");
        assert_eq!(p.root.part_id, "");
        assert!(p.root.children.is_empty());
        assert!(!p.root.by_attachment_id);
        assert!(!p.has_attachment);
    }
}
