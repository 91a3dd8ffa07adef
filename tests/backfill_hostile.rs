//! Hostile MIME through `mailingest backfill`, end to end: broken boundaries,
//! missing headers, 8-bit and overlong headers, zero-byte and duplicate-named
//! attachments, `../` filenames, nested message/rfc822, wrong charsets. The
//! run never panics; every message is stored or recorded as skipped; filenames
//! never become paths; a raw message with no header is archived and skipped.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{TestBed, small_mailbox};
use serde_json::Value;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../crates/ingest/tests/fixtures/mime/", $name)).to_vec(),
        )
    };
}

/// A raw message the parser must reject: no header field at all.
const NO_HEADER: &[u8] = b"this raw message has no header at all\n";

fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = vec![
        fixture!("8bit-headers.eml"),
        fixture!("base64-garbage.eml"),
        fixture!("broken-boundary.eml"),
        fixture!("digest.eml"),
        fixture!("duplicate-filenames.eml"),
        fixture!("encoded-words.eml"),
        fixture!("gmail-baddate.eml"),
        fixture!("gmail-related-inline-image.eml"),
        fixture!("gmail-reply-references.eml"),
        fixture!("group-addresses.eml"),
        fixture!("headers-only.eml"),
        fixture!("missing-headers.eml"),
        fixture!("nested.eml"),
        fixture!("nul-bytes.eml"),
        fixture!("single-part-pdf.eml"),
        fixture!("traversal-filenames.eml"),
        fixture!("unterminated-multipart.eml"),
        fixture!("wrong-charsets.eml"),
        fixture!("zero-byte-attachment.eml"),
    ];
    let long = "x".repeat(100_000);
    v.push((
        "overlong-header",
        format!("From: a@example.com\r\nSubject: {long}\r\nX-Long: {long}\r\n\r\nbody\r\n")
            .into_bytes(),
    ));
    v.push(("no-header", NO_HEADER.to_vec()));
    v
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mime_is_stored_or_skipped_never_a_panic() {
    let bed = TestBed::new(small_mailbox(0)).await;
    let mut ids = Vec::new();
    for (name, raw) in corpus() {
        let id = bed
            .emulator
            .insert_raw(&bed.mailbox, &raw, &["INBOX"], None)
            .unwrap_or_else(|e| panic!("insert {name}: {e}"));
        ids.push((name, id));
    }
    let out = bed
        .run(&["backfill", "--mailbox", bed.mailbox.as_str(), "--json"])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("summary ({e}); stderr: {stderr}"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "done with skips: {summary}\n{stderr}"
    );
    assert_eq!(summary["status"], "completed");

    let stored: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("SELECT provider_message_id FROM mail_messages")
            .fetch_all(bed.pg())
            .await
            .unwrap()
            .into_iter()
            .collect();
    let skipped: Vec<(String, String)> = summary["skipped"]
        .as_array()
        .expect("skipped list")
        .iter()
        .map(|s| {
            (
                s["message_id"].as_str().unwrap_or_default().to_owned(),
                s["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (name, id) in &ids {
        let is_skipped = skipped.iter().any(|(s, _)| s == id);
        assert!(
            stored.contains(id) ^ is_skipped,
            "{name} ({id}): stored {} skipped {is_skipped}",
            stored.contains(id)
        );
    }
    // Only the header-less message is beyond the lenient parser.
    let no_header = &ids.iter().find(|(n, _)| *n == "no-header").unwrap().1;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    let (skipped_id, reason) = &skipped[0];
    assert_eq!(skipped_id, no_header);
    assert!(reason.contains("unparseable"), "{reason}");
    assert_eq!(stored.len(), ids.len() - 1);

    // Its raw bytes are archived all the same, as a blob named in the reason.
    let sha = sha_in(reason).unwrap_or_else(|| panic!("no sha256 in {reason:?}"));
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM blobs WHERE sha256 = '{sha}'"
        ))
        .await,
        1,
        "the rejected raw has a blob row"
    );
    let object = bed
        .store_path()
        .join("default/sha256")
        .join(&sha[0..2])
        .join(&sha[2..4])
        .join(&sha);
    assert_eq!(std::fs::read(object).expect("raw object"), NO_HEADER);
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM ledger_events WHERE event_type = 'message.skipped' \
             AND subject_key = 'message:{no_header}'"
        ))
        .await,
        1,
        "the skip is in the ledger"
    );

    // `../` names are metadata: stored verbatim, never a path.
    assert!(
        bed.count("SELECT count(*) FROM mail_attachments WHERE filename = '../../etc/passwd'")
            .await
            == 1,
        "the traversal filename is kept as metadata"
    );
    let mut files = Vec::new();
    files_under(&bed.store_path(), &mut files);
    assert!(!files.is_empty());
    for f in &files {
        let rel = f.strip_prefix(bed.store_path()).unwrap();
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "only content-addressed objects in the store, found {rel:?}"
        );
        // objects, and the ledger heads runs leave for gc
        assert!(
            rel.starts_with("default/sha256") || rel.starts_with("default/.ledger-heads/sha256"),
            "{rel:?}"
        );
    }
    // Zero-byte attachment and duplicate filenames survive as distinct parts.
    assert!(
        bed.count("SELECT count(*) FROM mail_attachments WHERE size = 0")
            .await
            >= 1
    );
    assert_eq!(
        bed.count(
            "SELECT count(*) FROM (SELECT message_id, filename FROM mail_attachments \
             WHERE filename IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
        .await,
        1,
        "duplicate-filenames.eml keeps both parts"
    );
    // Nested message/rfc822 is one leaf, numbered as Gmail numbers partIds.
    let nested = &ids.iter().find(|(n, _)| *n == "nested.eml").unwrap().1;
    let parts: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT a.part_id, a.mime_type FROM mail_attachments a \
         JOIN mail_messages m ON m.id = a.message_id WHERE m.provider_message_id = $1",
    )
    .bind(nested)
    .fetch_all(bed.pg())
    .await
    .unwrap()
    .into_iter()
    .collect();
    for want in [
        ("0.1.1", "image/png"),
        ("1", "application/pdf"),
        ("2", "message/rfc822"),
    ] {
        assert!(
            parts.contains(&(want.0.to_owned(), want.1.to_owned())),
            "nested.eml part {want:?} in {parts:?}"
        );
    }
    bed.assert_verify_clean().await;

    // The skip is settled: a re-run fetches nothing and reports nothing new.
    bed.emulator.reset_stats();
    let (code, again) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{again}");
    assert_eq!(bed.calls("users.messages.get"), 0);
}

/// The 64-hex sha256 quoted in a skip reason.
fn sha_in(reason: &str) -> Option<String> {
    reason
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 64)
        .map(str::to_owned)
}
