//! Ids are data (issue 26, finding 8): a label id with a CR/LF in it, served
//! by a broken or hostile endpoint, quarantines its message with a reason
//! (whether it arrives with a fetched message or as a label change of a
//! stored one) and never reaches a row, so an mbox export cannot be made to
//! hold a message Gmail never had. And (finding 10) an .eml export never
//! writes through a link planted at its partial file's name.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Backend, TestBed, small_mailbox};

on_both_backends!(
    a_hostile_label_id_quarantines_its_message_and_never_reaches_an_export,
    an_eml_export_never_writes_through_a_planted_link,
);

/// A label id that would end `X-Gmail-Labels` and start a message of its own.
const HOSTILE: &str = "Label_9\r\n\r\nFrom forged@example.com Thu Jan  1 00:00:00 2026";

async fn quarantine_reason(bed: &TestBed, id: &str) -> Option<String> {
    bed.strings(&format!(
        "SELECT reason FROM quarantined_messages WHERE provider_message_id = '{id}'"
    ))
    .await
    .into_iter()
    .next()
}

async fn a_hostile_label_id_quarantines_its_message_and_never_reaches_an_export(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(20)).await;
    let mb = bed.mailbox.clone();
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let stored = bed
        .strings("SELECT provider_message_id FROM mail_messages ORDER BY provider_message_id")
        .await;
    let labels_before = bed.live_labels().await;
    bed.emulator
        .create_label_with_id(&mb, HOSTILE, "hostile")
        .unwrap();

    // A stored message relabelled with it: the change is refused, the message quarantined.
    let relabelled = stored[2].clone();
    bed.emulator
        .modify_labels(&mb, &relabelled, &[HOSTILE], &[])
        .unwrap();
    // A new message arriving with it: archived, refused, quarantined; no row.
    let arrived = bed
        .emulator
        .insert_raw(
            &mb,
            b"From: a@example.org\r\nSubject: hostile\r\n\r\nbody\r\n",
            &["INBOX", HOSTILE],
            None,
        )
        .unwrap();
    let (code, run) = bed.sync().await;
    assert_eq!(code, 3, "completed with quarantined messages: {run}");

    for id in [&relabelled, &arrived] {
        let reason = quarantine_reason(&bed, id)
            .await
            .unwrap_or_else(|| panic!("{id} quarantined: {run}"));
        assert!(reason.contains("is not a label id"), "{reason}");
        assert!(reason.contains(r"Label_9\r\n"), "escaped: {reason}");
    }
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM mail_messages WHERE provider_message_id = '{arrived}'"
        ))
        .await,
        0,
        "no row for the refused message"
    );
    assert_eq!(
        bed.live_labels().await[&relabelled],
        labels_before[&relabelled],
        "the refused label change was not applied"
    );
    assert_eq!(
        bed.count(
            "SELECT count(*) FROM mail_messages WHERE CAST(label_ids AS TEXT) LIKE '%forged%'"
        )
        .await,
        0
    );

    // The export holds exactly the stored messages: no forged separator.
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("out.mbox");
    let out = bed
        .run(&[
            "export",
            "--format",
            "mbox",
            "--out",
            mbox.to_str().unwrap(),
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(&mbox).unwrap();
    let separators = text
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"From "))
        .count();
    assert_eq!(separators, stored.len());
    assert!(!String::from_utf8_lossy(&text).contains("forged@"));

    // Its retry (made due now) fetches it whole and refuses it again while
    // Gmail serves the id: still quarantined, still no hostile label stored.
    let out = bed.run(&["mailbox", "requeue", &mb]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bed.emulator.reset_stats();
    let (code, run) = bed.sync().await;
    assert_eq!(code, 3, "{run}");
    assert_eq!(bed.calls("users.messages.get"), 2, "both retried: {run}");
    for id in [&relabelled, &arrived] {
        let reason = quarantine_reason(&bed, id).await.unwrap_or_default();
        assert!(reason.contains("is not a label id"), "{reason}");
    }
    assert_eq!(
        bed.live_labels().await[&relabelled],
        labels_before[&relabelled]
    );
}

/// Every file under `dir`, by name, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

async fn export_eml(bed: &TestBed, dir: &Path) -> std::process::Output {
    let dir = dir.to_str().unwrap();
    bed.run(&[
        "export",
        "--format",
        "eml",
        "--out",
        dir,
        "--mailbox",
        &bed.mailbox,
    ])
    .await
}

async fn an_eml_export_never_writes_through_a_planted_link(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(5)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    // Where each message's file goes, from a clean export.
    let clean = tempfile::tempdir().unwrap();
    let out = export_eml(&bed, clean.path()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = files(clean.path());
    assert_eq!(expected.len(), 5);

    // Another user plants links at every partial file's name in a shared directory.
    let shared = tempfile::tempdir().unwrap();
    let victim_dir = tempfile::tempdir().unwrap();
    let mut victims = Vec::new();
    for (i, name) in expected.keys().enumerate() {
        let id = name.file_stem().unwrap().to_str().unwrap();
        let month = shared.path().join(name.parent().unwrap());
        std::fs::create_dir_all(&month).unwrap();
        let victim = victim_dir.path().join(format!("victim{i}"));
        std::fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, month.join(format!(".{id}.eml.partial"))).unwrap();
        victims.push(victim);
    }
    let out = export_eml(&bed, shared.path()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for victim in &victims {
        assert_eq!(
            std::fs::read(victim).unwrap(),
            b"keep me",
            "{}",
            victim.display()
        );
    }
    assert_eq!(
        files(shared.path()),
        expected,
        "the same files, no partial left"
    );
}
