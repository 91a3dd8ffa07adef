//! The hostile-MIME corpus: every damaged message still parses, with concrete
//! decoded values pinned (bodies, filenames kept verbatim as metadata, sizes,
//! sha256 of attachment content).

mod mime_support;

use ingest::mime::{MimeError, parse};
use mime_support::{parse_fixture, part, part_ids, sha256_hex};

const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn broken_boundary_body_is_shown_as_text() {
    // The declared boundary never appears: like a mail client, show the raw body.
    let m = parse_fixture("broken-boundary.eml");
    assert_eq!(m.subject.as_deref(), Some("Broken boundary"));
    let text = m.body_text.expect("body text");
    assert!(text.starts_with("--some-other-boundary\nContent-Type: text/plain\n"));
    assert!(text.contains("The declared boundary never appears."));
    assert!(m.parts.is_empty());
}

#[test]
fn unterminated_multipart_keeps_the_cut_off_attachment() {
    let m = parse_fixture("unterminated-multipart.eml");
    assert_eq!(
        m.body_text.as_deref(),
        Some("Body before a cut-off attachment.")
    );
    assert_eq!(part_ids(&m), ["1"]);
    let cut = part(&m, "1");
    assert_eq!(cut.filename.as_deref(), Some("cut.bin"));
    assert_eq!(&cut.content[..], b"0123456789");
}

#[test]
fn missing_headers_are_none_not_errors() {
    let m = parse_fixture("missing-headers.eml");
    assert_eq!(m.subject.as_deref(), Some("only a subject"));
    assert!(m.from.is_empty() && m.to.is_empty());
    assert_eq!(m.rfc822_message_id, None);
    assert_eq!(m.sent_at, None);
    assert_eq!(
        m.body_text.as_deref(),
        Some("No From, no Date, no Message-ID, no MIME-Version.\n")
    );
}

#[test]
fn headers_without_body() {
    let m = parse_fixture("headers-only.eml");
    assert_eq!(m.subject.as_deref(), Some("headers and no body"));
    assert_eq!(m.body_text.as_deref(), Some(""));
    assert!(m.parts.is_empty(), "an empty body is not an attachment");
}

#[test]
fn eight_bit_utf8_headers() {
    let m = parse_fixture("8bit-headers.eml");
    assert_eq!(m.subject.as_deref(), Some("Café ☕ déjà vu"));
    assert_eq!(m.from[0].name.as_deref(), Some("José María"));
    assert_eq!(
        m.body_text.as_deref(),
        Some("raw UTF-8 in headers, no MIME at all: naïve\n")
    );
}

#[test]
fn overlong_header_line_of_100_kb() {
    let long = "x".repeat(100 * 1024);
    let raw = format!("From: a@example.com\nX-Long: {long}\nSubject: after the long one\n\nbody\n");
    let m = parse(raw.as_bytes()).expect("parses");
    assert_eq!(m.subject.as_deref(), Some("after the long one"));
    assert_eq!(m.body_text.as_deref(), Some("body\n"));

    let raw = format!("From: a@example.com\nSubject: {long}\n\nbody\n");
    let m = parse(raw.as_bytes()).expect("parses");
    assert_eq!(m.subject.map(|s| s.len()), Some(100 * 1024));
}

#[test]
fn zero_byte_attachments_are_included() {
    let m = parse_fixture("zero-byte-attachment.eml");
    assert_eq!(m.body_text.as_deref(), Some("See the empty file."));
    assert_eq!(part_ids(&m), ["1", "2"]);
    for (id, name) in [("1", "empty.txt"), ("2", "empty.bin")] {
        let p = part(&m, id);
        assert_eq!(p.filename.as_deref(), Some(name));
        assert_eq!(p.size(), 0);
        assert_eq!(sha256_hex(&p.content), EMPTY_SHA);
    }
}

#[test]
fn duplicate_filenames_stay_distinct_parts() {
    let m = parse_fixture("duplicate-filenames.eml");
    assert_eq!(part_ids(&m), ["1", "2"]);
    assert_eq!(part(&m, "1").filename.as_deref(), Some("report.pdf"));
    assert_eq!(part(&m, "2").filename.as_deref(), Some("report.pdf"));
    assert_eq!(
        sha256_hex(&part(&m, "1").content),
        "80d8f975e768eecac59d22a788bf8e811e51ca85e309ee47f1e821e3e58280f2"
    );
    assert_eq!(
        sha256_hex(&part(&m, "2").content),
        "ebfa015966891a400bf353bdf8ef30444a71b1751e2808ef6c014db34d168d85"
    );
}

#[test]
fn traversal_filenames_are_kept_verbatim_as_metadata() {
    let m = parse_fixture("traversal-filenames.eml");
    assert_eq!(m.body_text.as_deref(), Some("Names are metadata."));
    assert_eq!(part(&m, "1").filename.as_deref(), Some("../../etc/passwd"));
    assert_eq!(&part(&m, "1").content[..], b"root:x:0:0");
    // RFC 2231 percent-encoded slashes decode to the same kind of name.
    assert_eq!(part(&m, "2").filename.as_deref(), Some("../../etc/shadow"));
    assert_eq!(
        part(&m, "3").filename.as_deref(),
        Some("C:\\Windows\\evil.dll")
    );
    // No disposition header: reported as such, not invented.
    assert_eq!(part(&m, "3").disposition, None);
}

#[test]
fn wrong_charset_labels_still_give_readable_text() {
    let m = parse_fixture("wrong-charsets.eml");
    // Labelled us-ascii, actually UTF-8.
    assert_eq!(
        m.body_text.as_deref(),
        Some("déjà vu: UTF-8 labelled us-ascii")
    );
    // Unknown label, Latin-1 bytes: Windows-1252 fallback.
    assert_eq!(
        m.body_html.as_deref(),
        Some("<p>café Latin-1 labelled x-no-such-charset</p>")
    );
}

#[test]
fn base64_with_garbage_is_decoded_leniently() {
    let m = parse_fixture("base64-garbage.eml");
    // mail-parser gives up on this body (junk characters); we skip the junk.
    assert_eq!(m.body_text.as_deref(), Some("Hello, world"));
    assert_eq!(part_ids(&m), ["1"]);
    let data = part(&m, "1");
    assert_eq!(&data.content[..], &[0u8, 1, 2, 3, 4, 5, 6, 7, 8][..]);
    assert_eq!(
        sha256_hex(&data.content),
        "f8348e0b1df00833cbbbd08f07abdecc10c0efb78829d7828c62a7f36d0cc549"
    );
}

#[test]
fn encoded_filenames_rfc2047_and_rfc2231_continuations() {
    let m = parse_fixture("encoded-words.eml");
    assert_eq!(part_ids(&m), ["1", "2"]);
    let pdf = part(&m, "1");
    assert_eq!(pdf.filename.as_deref(), Some("Résumé.pdf"));
    assert_eq!(pdf.mime_type, "application/pdf");
    assert_eq!(&pdf.content[..], b"%PDF-");
    let jp = part(&m, "2");
    assert_eq!(jp.filename.as_deref(), Some("日本語の名前.txt"));
    assert_eq!(&jp.content[..], b"hi");
}

#[test]
fn nul_bytes_are_removed_from_text() {
    let m = parse_fixture("nul-bytes.eml");
    assert_eq!(m.subject.as_deref(), Some("nul inside"));
    assert_eq!(m.body_text.as_deref(), Some("beforeafter\n"));
}

#[test]
fn attachment_bytes_are_not_charset_converted() {
    // A Latin-1 text attachment must come back byte for byte (as Gmail's
    // attachments.get returns it), not converted to UTF-8.
    let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\
Content-Type: text/plain\n\nbody\n--b\nContent-Type: text/plain; charset=iso-8859-1\n\
Content-Disposition: attachment; filename=latin1.txt\nContent-Transfer-Encoding: quoted-printable\n\n\
caf=E9\n--b--\n";
    let m = parse(raw).expect("parses");
    assert_eq!(&part(&m, "1").content[..], b"caf\xe9");
    assert_eq!(part(&m, "1").mime_type, "text/plain");
}

#[test]
fn only_inputs_without_a_message_are_errors() {
    assert_eq!(parse(b""), Err(MimeError::Empty));
    assert_eq!(parse(b" \r\n\t\n"), Err(MimeError::Empty));
    // Text with no header field at all (no colon before the first line break).
    assert_eq!(
        parse(b"hello world no colon\n"),
        Err(MimeError::NoHeaders { len: 21 })
    );
    // An empty header block followed by a body is still a message (lenient, as
    // mail-parser is): no headers, the body kept.
    let m = parse(b"\n\njust a body\n").expect("empty header block is accepted");
    assert!(m.subject.is_none() && m.from.is_empty());
    assert_eq!(m.body_text.as_deref(), Some("\njust a body\n"));
}
