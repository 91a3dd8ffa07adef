//! A leaf with a filename (Content-Disposition `filename` / `filename*`, or
//! Content-Type `name`) is an attachment row even when it is also the body.
//!
//! Gmail gives every such part an attachmentId and lists it as an attachment
//! (the emulator models this: `by_attachment_id` whenever the filename is not
//! empty), numbering it like any other leaf: a lone part is Gmail's root `""`,
//! stored as "0". The body columns stay a convenience copy of the same text.

mod mime_support;

use ingest::mime::parse;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use mime_support::{fixture, parse_fixture, part, part_ids, to_crlf};

/// The fixtures of this file. Named to sort after every other fixture: the
/// seeded-mutation test draws from one random stream across the sorted corpus,
/// so a fixture sorted earlier would change the mutations every later fixture
/// gets (see the fixtures README).
const NAMED: [&str; 4] = [
    "zz-named-single-part-text.eml",
    "zz-named-inline-first-text.eml",
    "zz-named-attachment-first-text.eml",
    "zz-named-html.eml",
];

#[test]
fn single_part_text_with_a_name_is_body_and_part_zero() {
    for (label, raw, eol) in [
        ("lf", fixture("zz-named-single-part-text.eml"), "\n"),
        (
            "crlf",
            to_crlf(&fixture("zz-named-single-part-text.eml")),
            "\r\n",
        ),
    ] {
        let m = parse(&raw).expect("parses");
        assert_eq!(
            m.body_text.as_deref(),
            Some(format!("Café notes, line one.{eol}Line two.{eol}").as_str()),
            "{label}"
        );
        assert_eq!(m.body_html, None, "{label}");
        assert_eq!(part_ids(&m), ["0"], "{label}");
        let notes = part(&m, "0");
        assert_eq!(notes.mime_type, "text/plain", "{label}");
        assert_eq!(notes.filename.as_deref(), Some("notes.txt"), "{label}");
        assert_eq!(notes.disposition, None, "{label}: not invented");
        assert_eq!(notes.content_id, None, "{label}");
        // The attachment keeps its bytes: quoted-printable removed, Latin-1 kept.
        let expected = [
            b"Caf\xe9 notes, line one.".as_slice(),
            eol.as_bytes(),
            b"Line two.",
            eol.as_bytes(),
        ]
        .concat();
        assert_eq!(&notes.content[..], &expected[..], "{label}");
    }
}

#[test]
fn first_text_part_inline_with_a_filename_is_body_and_part() {
    let m = parse_fixture("zz-named-inline-first-text.eml");
    assert_eq!(m.body_text.as_deref(), Some("Read me first.\n"));
    assert_eq!(m.body_html, None);
    assert_eq!(part_ids(&m), ["0", "1"]);
    let readme = part(&m, "0");
    assert_eq!(readme.mime_type, "text/plain");
    assert_eq!(readme.filename.as_deref(), Some("readme.txt"));
    assert_eq!(readme.disposition.as_deref(), Some("inline"));
    assert_eq!(&readme.content[..], b"Read me first.\n");
    let pdf = part(&m, "1");
    assert_eq!(pdf.filename.as_deref(), Some("report.pdf"));
    assert_eq!(&pdf.content[..], b"%PDF-1.4\n%%EOF\n");
}

#[test]
fn first_text_part_as_attachment_with_rfc2231_filename_is_a_part() {
    let m = parse_fixture("zz-named-attachment-first-text.eml");
    // The attachment is not the body; the unnamed text after it is.
    assert_eq!(m.body_text.as_deref(), Some("Second text part."));
    assert_eq!(part_ids(&m), ["0"]);
    let resume = part(&m, "0");
    assert_eq!(resume.mime_type, "text/plain");
    assert_eq!(resume.filename.as_deref(), Some("résumé.txt"));
    assert_eq!(resume.disposition.as_deref(), Some("attachment"));
    assert_eq!(&resume.content[..], "Résumé as plain text.".as_bytes());
}

#[test]
fn html_part_with_a_name_is_body_and_part() {
    let m = parse_fixture("zz-named-html.eml");
    assert_eq!(m.body_text.as_deref(), Some("Plain version."));
    assert_eq!(m.body_html.as_deref(), Some("<p>HTML version.</p>"));
    assert_eq!(part_ids(&m), ["1"]);
    let page = part(&m, "1");
    assert_eq!(page.mime_type, "text/html");
    assert_eq!(page.filename.as_deref(), Some("page.html"));
    assert_eq!(page.disposition, None);
    assert_eq!(&page.content[..], b"<p>HTML version.</p>");

    // A lone named HTML part: the HTML body, and part "0".
    let m = parse(b"From: a@b.c\nContent-Type: text/html; name=\"only.html\"\n\n<b>hi</b>\n")
        .expect("parses");
    assert_eq!(m.body_text, None);
    assert_eq!(m.body_html.as_deref(), Some("<b>hi</b>\n"));
    assert_eq!(part_ids(&m), ["0"]);
    assert_eq!(part(&m, "0").filename.as_deref(), Some("only.html"));
    assert_eq!(&part(&m, "0").content[..], b"<b>hi</b>\n");
}

#[test]
fn unnamed_bodies_and_empty_names_are_not_parts() {
    // No filename: a body only, as before.
    let m = parse(b"From: a@b.c\nContent-Type: text/plain\n\nbody\n").expect("parses");
    assert_eq!(m.body_text.as_deref(), Some("body\n"));
    assert!(m.parts.is_empty());
    // An empty or blank name is no filename (`ParsedPart::filename` would be None).
    for header in [
        "Content-Type: text/plain; name=\"\"",
        "Content-Type: text/plain; name=\"  \"",
        "Content-Type: text/plain\nContent-Disposition: inline; filename=\"\"",
    ] {
        let raw = format!("From: a@b.c\n{header}\n\nbody\n");
        let m = parse(raw.as_bytes()).expect("parses");
        assert_eq!(m.body_text.as_deref(), Some("body\n"), "{header}");
        assert!(m.parts.is_empty(), "{header}: {:?}", m.parts);
    }
}

/// Gmail's numbering straight from mail-parser's tree: (path, part index) of
/// every leaf, the root leaf as "0".
fn gmail_leaves(message: &mail_parser::Message<'_>) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut stack = vec![(0usize, String::new())];
    while let Some((index, path)) = stack.pop() {
        match &message.parts[index].body {
            PartType::Multipart(children) => {
                for (n, &child) in children.iter().enumerate().rev() {
                    let child_path = if path.is_empty() {
                        n.to_string()
                    } else {
                        format!("{path}.{n}")
                    };
                    stack.push((child as usize, child_path));
                }
            }
            _ if path.is_empty() => out.push(("0".to_owned(), index)),
            _ => out.push((path, index)),
        }
    }
    out
}

#[test]
fn every_named_leaf_is_a_part_with_its_gmail_path_and_name() {
    for name in NAMED {
        for raw in [fixture(name), to_crlf(&fixture(name))] {
            let m = parse(&raw).expect("parses");
            let tree = MessageParser::default().parse(&raw).expect("mail-parser");
            let leaves = gmail_leaves(&tree);
            let named: Vec<_> = leaves
                .iter()
                .filter(|(_, i)| tree.parts[*i].attachment_name().is_some())
                .collect();
            assert!(!named.is_empty(), "{name}: has a named part");
            for (path, index) in named {
                let p = part(&m, path);
                assert_eq!(
                    p.filename.as_deref(),
                    tree.parts[*index].attachment_name(),
                    "{name}: part {path}"
                );
            }
            // No part is invented: every part id is a leaf.
            for p in &m.parts {
                assert!(
                    leaves.iter().any(|(path, _)| path == p.part_id.as_str()),
                    "{name}: part {} is not a leaf",
                    p.part_id
                );
            }
        }
    }
}
