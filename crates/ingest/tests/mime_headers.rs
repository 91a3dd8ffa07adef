//! Header extraction of `ingest::mime::parse`: ids without brackets, references
//! in order, encoded-word subjects and names, group flattening, Date → UTC.

mod mime_support;

use chrono::{TimeZone, Utc};
use ingest::mime::{Address, parse};
use mime_support::{fixture, parse_fixture, split_mbox};

fn addr(name: Option<&str>, address: Option<&str>) -> Address {
    Address {
        name: name.map(str::to_owned),
        address: address.map(str::to_owned),
    }
}

#[test]
fn gmail_reply_ids_references_and_date() {
    let m = parse_fixture("gmail-reply-references.eml");
    assert_eq!(
        m.rfc822_message_id.as_deref(),
        Some("20190416214813.D9DDC204F6@bendel.debian.org")
    );
    assert_eq!(
        m.in_reply_to.as_deref(),
        Some("CAM8C-xwy+7f0faBZr4+=G124sadgG9XcguechZ5wd=f_nDjsJA@mail.gmail.com")
    );
    assert_eq!(
        m.references,
        [
            "20190416214714.0F4E7204F3@bendel.debian.org",
            "20190416214717.E64EE204F3@bendel.debian.org",
            "CAM8C-xwy+7f0faBZr4+=G124sadgG9XcguechZ5wd=f_nDjsJA@mail.gmail.com",
        ]
    );
    assert_eq!(
        m.subject.as_deref(),
        Some("Re: subscribe gyb-travis@pdl.jaylee.us")
    );
    assert_eq!(
        m.from,
        [addr(
            Some("SmartList"),
            Some("debian-user-request@lists.debian.org")
        )]
    );
    assert_eq!(m.to, [addr(None, Some("gyb-travis-1@pdl.jaylee.us"))]);
    assert_eq!(
        m.sent_at,
        Some(Utc.with_ymd_and_hms(2019, 4, 16, 21, 48, 13).unwrap())
    );
}

#[test]
fn gmail_baddate_sample_has_a_parseable_date_after_all() {
    // The sample's README calls its Date unparseable, but the header is
    // "Tue, 16 Apr 2019 17:47:58 -0400" (the file differs from 16a281f0121945af
    // only by a trailing newline); pin what we actually get.
    let m = parse_fixture("gmail-baddate.eml");
    assert_eq!(
        m.sent_at,
        Some(Utc.with_ymd_and_hms(2019, 4, 16, 21, 47, 58).unwrap())
    );
}

#[test]
fn timezone_offset_is_applied() {
    let m = parse_fixture("nested.eml"); // Mon, 16 Nov 2026 09:30:00 +0100
    assert_eq!(
        m.sent_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 16, 8, 30, 0).unwrap())
    );
}

#[test]
fn impossible_or_garbage_dates_are_none() {
    // 31 Feb does not exist.
    assert_eq!(parse_fixture("group-addresses.eml").sent_at, None);
    for date in [
        "yesterday",
        "",
        "99 Foo 20xx 25:61:61 +9999",
        "Tue, 16 Apr 2019",
    ] {
        let raw = format!("From: a@example.com\nDate: {date}\nSubject: d\n\nbody\n");
        let m = parse(raw.as_bytes()).expect("parses");
        assert_eq!(m.sent_at, None, "Date: {date:?}");
    }
    // Absent.
    assert_eq!(parse_fixture("missing-headers.eml").sent_at, None);
}

#[test]
fn encoded_word_subject_and_names() {
    let m = parse_fixture("encoded-words.eml");
    // B (UTF-8, with an emoji) followed by Q (Latin-1); whitespace between
    // adjacent encoded words is dropped, the encoded "_" is a space.
    assert_eq!(m.subject.as_deref(), Some("Hello 👋 world café"));
    assert_eq!(
        m.from,
        [addr(Some("Jürgen Müller"), Some("juergen@example.de"))]
    );
    assert_eq!(m.to, [addr(Some("François"), Some("francois@example.fr"))]);
    assert_eq!(m.body_text.as_deref(), Some("Grüße aus Köln"));
}

#[test]
fn rfc2047_sample_mbox() {
    let messages = split_mbox(&fixture("rfc2047-samples.mbox"));
    assert_eq!(messages.len(), 11);
    let parsed: Vec<_> = messages
        .iter()
        .map(|m| parse(m).expect("sample parses"))
        .collect();
    // Two encoded words in different charsets, folded over two lines.
    assert_eq!(
        parsed[0].subject.as_deref(),
        Some("If you can read this you understand the example.")
    );
    assert_eq!(
        parsed[0].from,
        [addr(Some("Keith Moore"), Some("moore@cs.utk.edu"))]
    );
    assert_eq!(
        parsed[0].to,
        [addr(Some("Keld Jørn Simonsen"), Some("keld@dkuug.dk"))]
    );
    assert_eq!(
        parsed[0].cc,
        [addr(Some("André Pirard"), Some("PIRARD@vm1.ulg.ac.be"))]
    );
    assert_eq!(
        parsed[2].from,
        [addr(Some("Patrik Fältström"), Some("paf@nada.kth.se"))]
    );
    // Lowercase "b" encoding, ISO-8859-8 (Hebrew), in a comment after the address.
    assert_eq!(
        parsed[3].from[0].name.as_deref(),
        Some("Nathaniel Borenstein (םולש ןב ילטפנ)")
    );
    // Folded To with three addresses.
    assert_eq!(parsed[3].to.len(), 3);
    assert_eq!(
        parsed[3].to[1],
        addr(Some("Ned Freed"), Some("ned@innosoft.com"))
    );
    // RFC 2047 §8's own examples, decoded as the RFC displays them (mail-parser
    // alone gives "( a )", "( ab )", …: it pads encoded words with spaces).
    let subjects: Vec<_> = parsed[4..]
        .iter()
        .map(|m| m.subject.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(
        subjects,
        ["(a)", "(a b)", "(ab)", "(ab)", "(ab)", "(a b)", "(a b)"]
    );
}

#[test]
fn odd_mails_header_case_and_bad_addresses() {
    let parsed: Vec<_> = split_mbox(&fixture("odd-mails.mbox"))
        .iter()
        .map(|m| parse(m).expect("odd mail parses"))
        .collect();
    assert_eq!(parsed.len(), 6);
    assert_eq!(
        parsed[0].from,
        [addr(Some("Lowercase Sender"), Some("lowercase@sender.com"))]
    );
    assert_eq!(
        parsed[1].from,
        [addr(Some("uppercase sender"), Some("uppercase@sender.com"))]
    );
    assert_eq!(parsed[2].subject.as_deref(), Some("mIxEd CaSe"));
    assert_eq!(parsed[3].from, [addr(None, Some("notanemail"))]);
    assert_eq!(parsed[4].from, [addr(Some("notbracketed"), None)]);
    assert_eq!(parsed[5].subject, None);
    assert_eq!(
        parsed[5].body_text.as_deref(),
        Some("Minimal email headers\n")
    );
}

#[test]
fn groups_are_flattened_and_empty_groups_vanish() {
    let m = parse_fixture("group-addresses.eml");
    assert_eq!(
        m.to,
        [
            addr(Some("Ann"), Some("ann@example.com")),
            addr(None, Some("ben@example.com")),
            addr(Some("Outsider"), Some("out@example.com")),
        ]
    );
    assert!(m.cc.is_empty(), "undisclosed-recipients:; has no members");
    assert_eq!(m.bcc, [addr(None, Some("hidden@example.com"))]);
    assert_eq!(
        m.reply_to,
        [addr(Some("Replies, Inc."), Some("replies@example.com"))]
    );
    assert_eq!(m.in_reply_to.as_deref(), Some("parent@example.com"));
    assert_eq!(m.references, ["root@example.com", "parent@example.com"]);
    assert_eq!(m.rfc822_message_id, None);
}

#[test]
fn subject_edge_cases() {
    let cases: [(&[u8], &str); 5] = [
        // Encoded word touching punctuation: no space inserted.
        (b"=?UTF-8?Q?Rechnung?=: 123", "Rechnung: 123"),
        // Raw Latin-1 8-bit header (not valid UTF-8): Windows-1252.
        (b"Caf\xe9 cr\xe8me", "Café crème"),
        // Malformed encoded word stays literal.
        (b"=?utf-8?q?never closed", "=?utf-8?q?never closed"),
        // Folded over lines.
        (b"one\r\n two", "one two"),
        // Unknown charset label in an encoded word, Latin-1 bytes.
        (b"=?x-unknown?Q?caf=E9?=", "café"),
    ];
    for (subject, expected) in cases {
        let mut raw = b"From: a@example.com\r\nSubject: ".to_vec();
        raw.extend_from_slice(subject);
        raw.extend_from_slice(b"\r\n\r\nbody\r\n");
        let m = parse(&raw).expect("parses");
        assert_eq!(m.subject.as_deref(), Some(expected), "{subject:?}");
    }
}

#[test]
fn first_occurrence_of_a_repeated_header_wins() {
    let raw = b"Subject: first\nSubject: second\nMessage-ID: <one@x>\nMessage-ID: <two@x>\n\nb\n";
    let m = parse(raw).expect("parses");
    assert_eq!(m.subject.as_deref(), Some("first"));
    assert_eq!(m.rfc822_message_id.as_deref(), Some("one@x"));
}

#[test]
fn addresses_serialize_as_name_and_address() {
    let json = serde_json::to_value(addr(Some("Ann"), None)).expect("serialize");
    assert_eq!(json, serde_json::json!({"name": "Ann", "address": null}));
}

#[test]
fn sloppy_message_id_headers() {
    let raw = b"From: a@b.c\nMessage-ID: not-bracketed@x\nIn-Reply-To: your message of Tuesday <abc@x>\nReferences: <a@x> junk <b@x>\n\nb\n";
    let m = parse(raw).expect("parses");
    assert_eq!(m.rfc822_message_id.as_deref(), Some("not-bracketed@x"));
    assert_eq!(m.in_reply_to.as_deref(), Some("abc@x"));
    assert_eq!(m.references, ["a@x", "b@x"]);
}
