//! `parse` never panics: every fixture, every prefix of several messages,
//! seeded random byte flips / splices, and pathological nesting. Each call is
//! wrapped in `catch_unwind`, and every successful result is checked against
//! invariants the database relies on (valid unique part ids, no NUL in text).

mod mime_support;

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use ingest::mime::{MimeError, ParsedMessage, parse};
use mime_support::{all_fixture_messages, fixture, to_crlf};

/// xorshift64*: a fixed-seed generator so failures reproduce without a rand dependency.
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

fn check_invariants(label: &str, raw: &[u8], m: &ParsedMessage) {
    let mut seen = HashSet::new();
    for p in &m.parts {
        let id = p.part_id.as_str();
        assert!(
            id.parse::<ingest::mime::PartPath>().is_ok(),
            "{label}: invalid part id {id:?}"
        );
        assert!(
            seen.insert(id.to_owned()),
            "{label}: duplicate part id {id}"
        );
        assert!(
            p.content.len() <= raw.len(),
            "{label}: part {id} larger than the input"
        );
        assert!(
            p.mime_type.contains('/'),
            "{label}: mime type {:?}",
            p.mime_type
        );
    }
    for text in [&m.body_text, &m.body_html, &m.subject]
        .into_iter()
        .flatten()
    {
        assert!(!text.contains('\0'), "{label}: NUL in text");
    }
    for a in m
        .from
        .iter()
        .chain(&m.to)
        .chain(&m.cc)
        .chain(&m.bcc)
        .chain(&m.reply_to)
    {
        assert!(
            a.name.is_some() || a.address.is_some(),
            "{label}: empty address"
        );
    }
}

/// Parses under `catch_unwind`; a panic, or mail-parser failing internally (which
/// `parse` contains but which still means a message would be skipped), fails.
fn must_not_panic(label: &str, raw: &[u8]) {
    let outcome = catch_unwind(AssertUnwindSafe(|| parse(raw)));
    match outcome {
        Err(_) => panic!("{label}: parse panicked ({} bytes)", raw.len()),
        Ok(Ok(m)) => check_invariants(label, raw, &m),
        Ok(Err(MimeError::ParserFailure { .. })) => {
            panic!(
                "{label}: mail-parser failed internally ({} bytes)",
                raw.len()
            )
        }
        Ok(Err(_)) => {}
    }
}

#[test]
fn every_fixture_parses_without_panic() {
    let fixtures = all_fixture_messages();
    assert!(fixtures.len() >= 30, "fixtures found: {}", fixtures.len());
    for (name, raw) in &fixtures {
        must_not_panic(name, raw);
        must_not_panic(&format!("{name} (crlf)"), &to_crlf(raw));
        let parsed = parse(raw);
        assert!(
            parsed.is_ok(),
            "{name}: every fixture is a message: {parsed:?}"
        );
    }
}

#[test]
fn every_prefix_of_structured_messages() {
    for name in [
        "nested.eml",
        "encoded-words.eml",
        "digest.eml",
        "zero-byte-attachment.eml",
        "base64-garbage.eml",
        "traversal-filenames.eml",
        "zz-named-single-part-text.eml",
        "zz-named-inline-first-text.eml",
        "zz-named-attachment-first-text.eml",
        "zz-named-html.eml",
    ] {
        for raw in [fixture(name), to_crlf(&fixture(name))] {
            for len in 0..=raw.len() {
                must_not_panic(&format!("{name}[..{len}]"), &raw[..len]);
            }
        }
    }
}

#[test]
fn seeded_random_mutations() {
    // Bytes that matter to MIME parsers, so mutations hit interesting paths.
    const SPICY: &[u8] = b"-\r\n=:;\"<>?\\ \t\0\xff\x80Bb=";
    let mut rng = Rng(0x5EED_CAFE_F00D_0007);
    let fixtures: Vec<_> = all_fixture_messages()
        .into_iter()
        .filter(|(_, raw)| raw.len() <= 32 * 1024)
        .collect();
    for (name, original) in &fixtures {
        for round in 0..150 {
            let mut raw = original.clone();
            for _ in 0..=rng.below(8) {
                if raw.is_empty() {
                    break;
                }
                let at = rng.below(raw.len());
                match rng.below(5) {
                    0 => raw[at] = rng.next() as u8,
                    1 => raw[at] = SPICY[rng.below(SPICY.len())],
                    2 => {
                        let end = (at + rng.below(64)).min(raw.len());
                        raw.drain(at..end);
                    }
                    3 => {
                        // Duplicate a slice (boundaries, headers) somewhere else.
                        let end = (at + rng.below(80)).min(raw.len());
                        let chunk = raw[at..end].to_vec();
                        let to = rng.below(raw.len());
                        raw.splice(to..to, chunk);
                    }
                    _ => raw.insert(at, SPICY[rng.below(SPICY.len())]),
                }
            }
            must_not_panic(&format!("{name} mutation #{round}"), &raw);
        }
    }
}

#[test]
fn pathological_nesting_and_sizes() {
    // Run on a thread with tokio's spawn_blocking stack size (2 MiB), where the
    // engine calls parse.
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            // 5,000 nested multiparts, each with a fresh boundary.
            let depth = 5_000;
            let mut raw = String::from("From: a@example.com\n");
            for i in 0..depth {
                raw.push_str(&format!(
                    "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
                ));
            }
            raw.push_str("Content-Type: application/octet-stream\n\nleaf\n");
            for i in (0..depth).rev() {
                raw.push_str(&format!("--b{i}--\n"));
            }
            let m = parse(raw.as_bytes()).expect("deep multipart parses");
            assert_eq!(m.parts.len(), 1);
            assert_eq!(m.parts[0].part_id.as_str().split('.').count(), depth);

            // 2,000 nested message/rfc822 (mail-parser recurses for these).
            let mut raw = String::new();
            for _ in 0..2_000 {
                raw.push_str("From: a@example.com\nContent-Type: message/rfc822\n\n");
            }
            raw.push_str("Subject: innermost\n\nbody\n");
            must_not_panic("deep rfc822", raw.as_bytes());

            // Many siblings.
            let mut raw = String::from("Content-Type: multipart/mixed; boundary=s\n\n");
            for i in 0..10_000 {
                raw.push_str(&format!("--s\nContent-Type: application/x-{i}\n\n{i}\n"));
            }
            raw.push_str("--s--\n");
            let m = parse(raw.as_bytes()).expect("wide multipart parses");
            assert_eq!(m.parts.len(), 10_000);
            assert_eq!(m.parts[9_999].part_id.as_str(), "9999");
            assert_eq!(&m.parts[9_999].content[..], b"9999");

            // Only separators, only dashes, binary noise.
            must_not_panic("dashes", &[b'-'; 10_000]);
            must_not_panic("newlines", &[b'\n'; 10_000]);
            let noise: Vec<u8> = (0..65_536u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect();
            must_not_panic("noise", &noise);
        })
        .expect("spawn test thread");
    assert!(
        handle.join().is_ok(),
        "pathological inputs must not panic or overflow"
    );
}
