//! Pins the Gmail-compatible part numbering of `ingest::mime::parse`: children of
//! a multipart from 0 in document order, grandchildren "1.0", …; message/rfc822
//! is a leaf; a root-level non-body leaf is "0". Also the `PartPath` type rules.

mod mime_support;

use ingest::mime::{PartPath, parse};
use mail_parser::MimeHeaders;
use mime_support::{fixture, parse_fixture, part, part_ids, sha256_hex, to_crlf};

const PNG_SHA: &str = "fd476ea4cdffcbf025ee111e9091f358b50be5e19b2e716a96c4a58dcc9388d9";
const PDF_SHA: &str = "5a838678058f6de375e8635b5f2fea47a4e5f07cb1a882a44b10f39abc6f34ff";

/// nested.eml:
/// ```text
/// ""  multipart/mixed
/// 0     multipart/alternative
/// 0.0     text/plain              → body_text
/// 0.1     multipart/related
/// 0.1.0     text/html             → body_html
/// 0.1.1     image/png (inline, cid)
/// 1     application/pdf (attachment)
/// 2     message/rfc822 (leaf; its own multipart is not walked)
/// ```
fn assert_nested(raw: &[u8]) {
    let m = parse(raw).expect("nested parses");
    assert_eq!(part_ids(&m), ["0.1.1", "1", "2"]);
    assert_eq!(m.body_text.as_deref(), Some("Plain body"));
    assert_eq!(
        m.body_html.as_deref(),
        Some("<p>HTML body <img src=\"cid:logo@example.com\"></p>")
    );

    let image = part(&m, "0.1.1");
    assert_eq!(image.mime_type, "image/png");
    assert_eq!(image.content_id.as_deref(), Some("logo@example.com"));
    assert_eq!(image.disposition.as_deref(), Some("inline"));
    assert_eq!(image.filename.as_deref(), Some("logo.png"));
    assert_eq!(image.size(), 70);
    assert_eq!(sha256_hex(&image.content), PNG_SHA);

    let pdf = part(&m, "1");
    assert_eq!(pdf.mime_type, "application/pdf");
    assert_eq!(pdf.disposition.as_deref(), Some("attachment"));
    assert_eq!(pdf.filename.as_deref(), Some("report.pdf"));
    assert_eq!(sha256_hex(&pdf.content), PDF_SHA);

    let inner = part(&m, "2");
    assert_eq!(inner.mime_type, "message/rfc822");
    assert_eq!(inner.filename, None);
    assert!(
        inner
            .content
            .starts_with(b"From: Carol <carol@example.net>")
    );
    assert!(
        inner.content.ends_with(b"--inner--"),
        "embedded message must end at its own closing boundary, not swallow the outer one: {:?}",
        String::from_utf8_lossy(&inner.content[inner.content.len().saturating_sub(40)..])
    );
    // The embedded message is itself parseable and keeps its own structure.
    let embedded = parse(&inner.content).expect("embedded message parses");
    assert_eq!(embedded.subject.as_deref(), Some("Forwarded inner message"));
    assert_eq!(
        embedded.rfc822_message_id.as_deref(),
        Some("inner-1@example.net")
    );
    assert_eq!(embedded.body_text.as_deref(), Some("Inner body"));
    assert_eq!(part_ids(&embedded), ["1"]);
    assert_eq!(embedded.parts[0].filename.as_deref(), Some("inner.txt"));
    assert_eq!(&embedded.parts[0].content[..], b"inner attachment");
}

#[test]
fn nested_mixed_alternative_related_rfc822_lf() {
    assert_nested(&fixture("nested.eml"));
}

#[test]
fn nested_mixed_alternative_related_rfc822_crlf() {
    // Gmail's format=raw uses CRLF; offsets must be right for both.
    assert_nested(&to_crlf(&fixture("nested.eml")));
}

#[test]
fn real_gmail_related_alternative_inline_image() {
    // multipart/related [ multipart/alternative [text, html], image/png ]:
    // Gmail's partIds are 0 (alternative), 0.0, 0.1, 1 (image).
    let m = parse_fixture("gmail-related-inline-image.eml");
    assert_eq!(part_ids(&m), ["1"]);
    let image = part(&m, "1");
    assert_eq!(image.mime_type, "image/png");
    assert_eq!(image.filename.as_deref(), Some("image.png"));
    assert_eq!(image.content_id.as_deref(), Some("ii_jukb4ame0"));
    assert_eq!(image.disposition.as_deref(), Some("attachment"));
    assert_eq!(image.size(), 74_563);
    assert!(image.content.starts_with(b"\x89PNG\r\n\x1a\n"));
    // Independently computed with Python's base64 module.
    assert_eq!(
        sha256_hex(&image.content),
        "598acdf64d3e3ec1299aeb6c758e96f6d1088ecd9703fb2190b3ef3d610a0f20"
    );
    assert_eq!(m.body_text.as_deref(), Some("[image: image.png]\r\n"));
    assert!(
        m.body_html
            .as_deref()
            .is_some_and(|h| h.contains("src=\"cid:ii_jukb4ame0\""))
    );
}

#[test]
fn single_part_non_text_root_is_part_zero() {
    let m = parse_fixture("single-part-pdf.eml");
    assert_eq!(part_ids(&m), ["0"]);
    let pdf = part(&m, "0");
    assert_eq!(pdf.mime_type, "application/pdf");
    assert_eq!(pdf.filename.as_deref(), Some("scan.pdf"));
    assert_eq!(sha256_hex(&pdf.content), PDF_SHA);
    assert_eq!(m.body_text, None);
    assert_eq!(m.body_html, None);
}

#[test]
fn single_part_text_message_has_no_parts() {
    let m = parse_fixture("gmail-reply-references.eml");
    assert!(m.parts.is_empty());
    assert!(
        m.body_text
            .as_deref()
            .is_some_and(|t| t.starts_with("You have added to the subscriber list of:"))
    );
}

#[test]
fn digest_children_default_to_message_rfc822() {
    let m = parse_fixture("digest.eml");
    assert_eq!(part_ids(&m), ["0", "1"]);
    for (id, subject) in [("0", "first digest entry"), ("1", "second digest entry")] {
        let p = part(&m, id);
        assert_eq!(p.mime_type, "message/rfc822");
        let inner = parse(&p.content).expect("digest entry parses");
        assert_eq!(inner.subject.as_deref(), Some(subject));
    }
}

#[test]
fn part_path_validation_and_display() {
    for ok in ["0", "1", "1.0", "10.2.33"] {
        let p: PartPath = ok.parse().expect(ok);
        assert_eq!(p.to_string(), ok);
        assert_eq!(p.as_str(), ok);
    }
    for bad in [
        "", ".", "1.", ".1", "1..2", "a", "1.a", "-1", " 1", "1 ", "１",
    ] {
        assert!(bad.parse::<PartPath>().is_err(), "{bad:?} must be rejected");
    }
    assert_eq!(
        PartPath::from_indices(&[1, 0, 3]).map(|p| p.to_string()),
        Some("1.0.3".into())
    );
    assert_eq!(PartPath::from_indices(&[]), None);
    assert_eq!(PartPath::root_leaf().as_str(), "0");
    let p: PartPath = "2.11".parse().expect("valid");
    assert_eq!(p.indices(), [2, 11]);
    assert_eq!(serde_json::to_string(&p).expect("serialize"), "\"2.11\"");
    assert!(serde_json::from_str::<PartPath>("\"1..2\"").is_err());
}

#[test]
fn body_choice_first_text_and_html_other_text_parts_stay_parts() {
    // Apple-Mail style mixed: text, inline image, text. The first text is the
    // body; the second is kept as part "2" so nothing is lost.
    let raw = b"From: a@b.c\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nfirst\n--b\nContent-Type: image/jpeg\nContent-Disposition: inline; filename=p.jpg\n\nJPG\n--b\nContent-Type: text/plain\n\nsecond\n--b--\n";
    let m = parse(raw).expect("parses");
    assert_eq!(m.body_text.as_deref(), Some("first"));
    assert_eq!(m.body_html, None);
    assert_eq!(part_ids(&m), ["1", "2"]);
    assert_eq!(part(&m, "1").disposition.as_deref(), Some("inline"));
    assert_eq!(part(&m, "2").mime_type, "text/plain");
    assert_eq!(&part(&m, "2").content[..], b"second");

    // text/calendar inside multipart/alternative is a part, not a body.
    let raw = b"From: a@b.c\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain\n--b\nContent-Type: text/html\n\n<i>html</i>\n--b\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\n--b--\n";
    let m = parse(raw).expect("parses");
    assert_eq!(m.body_text.as_deref(), Some("plain"));
    assert_eq!(m.body_html.as_deref(), Some("<i>html</i>"));
    assert_eq!(part_ids(&m), ["2"]);
    assert_eq!(part(&m, "2").mime_type, "text/calendar");

    // HTML-only single part: no text body is synthesised.
    let m = parse(b"From: a@b.c\nContent-Type: text/html; charset=utf-8\n\n<b>only html</b>\n")
        .expect("parses");
    assert_eq!(m.body_text, None);
    assert_eq!(m.body_html.as_deref(), Some("<b>only html</b>\n"));
    assert!(m.parts.is_empty());
}

/// An independent, recursive re-derivation of the numbering straight from
/// mail-parser's tree: path → part index for every leaf.
fn reference_leaves(
    message: &mail_parser::Message<'_>,
    index: usize,
    path: String,
    out: &mut Vec<(String, usize)>,
) {
    match &message.parts[index].body {
        mail_parser::PartType::Multipart(children) => {
            for (n, &child) in children.iter().enumerate() {
                let child_path = if path.is_empty() {
                    n.to_string()
                } else {
                    format!("{path}.{n}")
                };
                reference_leaves(message, child as usize, child_path, out);
            }
        }
        _ => out.push((path, index)),
    }
}

#[test]
fn numbering_and_content_agree_with_mail_parser_on_every_fixture() {
    let mut checked_binary = 0;
    for (name, raw) in mime_support::all_fixture_messages() {
        let Ok(parsed) = parse(&raw) else { continue };
        let Some(message) = mail_parser::MessageParser::default().parse(&raw) else {
            continue;
        };
        let mut reference = Vec::new();
        reference_leaves(&message, 0, String::new(), &mut reference);
        for p in &parsed.parts {
            // Gmail's root "" is stored as "0" (see PartPath docs).
            let (_, index) = reference
                .iter()
                .find(|(path, _)| {
                    path == p.part_id.as_str() || (path.is_empty() && p.part_id.as_str() == "0")
                })
                .unwrap_or_else(|| panic!("{name}: part {} not in mail-parser's tree", p.part_id));
            let mp = &message.parts[*index];
            // Where mail-parser decoded a binary part cleanly, our own decoder
            // must produce the same bytes.
            if let mail_parser::PartType::Binary(bytes) | mail_parser::PartType::InlineBinary(bytes) =
                &mp.body
                && !mp.is_encoding_problem
            {
                assert_eq!(&p.content[..], &bytes[..], "{name}: part {}", p.part_id);
                checked_binary += 1;
            }
        }
        // Every leaf with a filename is a part (Gmail lists it as an
        // attachment), even when it is also one of the bodies.
        let named: Vec<&str> = reference
            .iter()
            .filter(|(_, index)| {
                message.parts[*index]
                    .attachment_name()
                    .is_some_and(|n| !n.replace('\0', "").trim().is_empty())
            })
            .map(|(path, _)| if path.is_empty() { "0" } else { path.as_str() })
            .collect();
        for path in &named {
            assert!(
                parsed.parts.iter().any(|p| p.part_id.as_str() == *path),
                "{name}: named leaf {path} is not a part"
            );
        }
        // Every leaf is a part or one of the two bodies; only a named leaf
        // can be both.
        let bodies =
            usize::from(parsed.body_text.is_some()) + usize::from(parsed.body_html.is_some());
        let both = (parsed.parts.len() + bodies).checked_sub(reference.len());
        assert!(
            both.is_some_and(|both| both <= bodies.min(named.len())),
            "{name}: leaves = parts + bodies - named bodies ({} parts, {bodies} bodies, \
             {} leaves, {} named)",
            parsed.parts.len(),
            reference.len(),
            named.len()
        );
    }
    assert!(
        checked_binary >= 10,
        "binary parts cross-checked: {checked_binary}"
    );
}
