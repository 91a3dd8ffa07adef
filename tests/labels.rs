//! Labels by name, end to end on both backends: a Takeout mbox (the real
//! sample, plus messages with nested, quoted, non-ASCII and system labels)
//! imported into the emulator, backed up and exported keeps every label
//! name; a label renamed, created or deleted in Gmail is a ledger event of
//! the next sync, and the next export shows the new name; `export --label`
//! takes a name or an id and they select the same mail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Backend, TestBed, small_mailbox};
use gmail_emulator::EmulatorConfig;
use sha2::Digest;

on_both_backends!(
    a_takeout_round_trip_keeps_every_label_name,
    a_label_renamed_in_gmail_is_a_ledger_event_and_the_next_export_shows_it,
    export_label_takes_a_name_or_an_id,
    the_worker_s_runs_refresh_labels_too,
);

/// Messages Takeout could have written, beside the real sample: nested user
/// labels, a name with a comma, non-ASCII names (Takeout Q-encodes the whole
/// list), and system labels by Takeout's words.
const EXTRA: &str = "From 1700000000000000001@xxx Mon Jan 01 10:00:00 +0000 2024\n\
X-GM-THRID: 1700000000000000001\n\
X-Gmail-Labels: Sent,Starred,Work/Projects/2026,\"Clients, big\"\n\
Message-ID: <labels-1@example.com>\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\n\
From: Ann <ann@example.com>\n\
To: bob@example.com\n\
Subject: nested and quoted\n\
\n\
one\n\
\n\
From 1700000000000000002@xxx Tue Jan 02 10:00:00 +0000 2024\n\
X-GM-THRID: 1700000000000000002\n\
X-Gmail-Labels: =?UTF-8?Q?Inbox,Category_Social,Caf=C3=A9/Men=C3=BC,Work/Projects?=\n\
Message-ID: <labels-2@example.com>\n\
Date: Tue, 2 Jan 2024 10:00:00 +0000\n\
From: Bob <bob@example.com>\n\
To: ann@example.com\n\
Subject: encoded names\n\
\n\
two\n\
\n\
From 1700000000000000003@xxx Wed Jan 03 10:00:00 +0000 2024\n\
X-GM-THRID: 1700000000000000003\n\
X-Gmail-Labels: Inbox,Important,Unread,Category Updates,Category Promotions,Category Forums,Category Personal\n\
Message-ID: <labels-3@example.com>\n\
Date: Wed, 3 Jan 2024 10:00:00 +0000\n\
From: Bob <bob@example.com>\n\
To: ann@example.com\n\
Subject: system labels\n\
\n\
three\n";

/// The real Takeout sample (see crates/gmail-emulator/tests/fixtures/README.md)
/// followed by [`EXTRA`], as one mbox file.
fn takeout_mbox(dir: &Path) -> PathBuf {
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gmail-emulator/tests/fixtures/takeout.mbox");
    let mut bytes = std::fs::read(sample).expect("the Takeout sample");
    if !bytes.ends_with(b"\n\n") {
        bytes.extend_from_slice(b"\n");
    }
    bytes.extend_from_slice(EXTRA.as_bytes());
    let path = dir.join("takeout.mbox");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn imported(mbox: &Path) -> EmulatorConfig {
    EmulatorConfig {
        messages: 0,
        import: Some(mbox.to_path_buf()),
        ..small_mailbox(0)
    }
}

/// The window the Takeout mail (2019, and the extras of 2024) lies in.
const ALL_TIME: [&str; 4] = ["--since", "2000-01-01", "--until", "2100-01-01"];

/// raw sha256 → the names of its labels, as the emulator serving `bed` has
/// them (labels.list names, messages' label ids).
async fn names_in_gmail(bed: &TestBed) -> BTreeMap<String, BTreeSet<String>> {
    let gmail = bed.gmail().await;
    let names: BTreeMap<String, String> = gmail
        .labels(&bed.mailbox)
        .await
        .expect("labels.list")
        .into_iter()
        .map(|l| (l.id, l.name))
        .collect();
    let mut out = BTreeMap::new();
    for id in bed.emulator.message_ids(&bed.mailbox) {
        let m = gmail
            .message_minimal(&bed.mailbox, &id)
            .await
            .expect("minimal");
        let raw = bed.emulator.raw_message(&bed.mailbox, &id).expect("raw");
        let labels = m
            .label_ids
            .iter()
            .map(|l| names.get(l).cloned().unwrap_or_else(|| format!("id:{l}")))
            .collect();
        out.insert(hex::encode(sha2::Sha256::digest(&raw)), labels);
    }
    out
}

async fn export(bed: &TestBed, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["export", "--format", "mbox", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = bed.run(&args).await;
    assert_eq!(
        run.status.code(),
        Some(0),
        "export {extra:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8_lossy(&std::fs::read(out).unwrap()).into_owned()
}

/// Every X-Gmail-Labels header of an mbox, unfolded.
fn label_headers(mbox: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_header = false;
    for line in mbox.split('\n') {
        let line = line.trim_end_matches('\r');
        if let Some(v) = line.strip_prefix("X-Gmail-Labels: ") {
            out.push(v.to_owned());
            in_header = true;
        } else if in_header && (line.starts_with(' ') || line.starts_with('\t')) {
            if let Some(last) = out.last_mut() {
                last.push_str(line);
            }
        } else {
            in_header = false;
        }
    }
    out
}

async fn a_takeout_round_trip_keeps_every_label_name(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let source = takeout_mbox(dir.path());
    let bed = TestBed::on(backend, imported(&source)).await;
    let original = names_in_gmail(&bed).await;
    let messages = bed.emulator.message_ids(&bed.mailbox).len();
    assert_eq!(messages, 42, "the sample's 39 messages and 3 more");
    let (code, run) = bed.backfill(&ALL_TIME).await;
    assert_eq!(code, 0, "{run}");

    let exported = dir.path().join("export.mbox");
    let text = export(&bed, &exported, &[]).await;
    let headers = label_headers(&text);
    assert_eq!(headers.len(), messages);
    for h in &headers {
        assert!(!h.contains("Label_"), "a label id, not its name: {h}");
    }
    assert!(
        headers
            .iter()
            .any(|h| h.contains("\"Clients, big\"") && h.contains("Work/Projects/2026")),
        "quoted and nested names as Takeout writes them: {headers:#?}"
    );
    assert!(
        headers.iter().any(|h| h.starts_with("=?UTF-8?Q?")),
        "non-ASCII names RFC 2047 encoded: {headers:#?}"
    );

    // The export, imported into a fresh emulator as Takeout would be, gives
    // every message the same label names.
    let back = TestBed::on(backend, imported(&exported)).await;
    assert_eq!(names_in_gmail(&back).await, original);
    for name in [
        "takeout",
        "☯",
        "Work/Projects/2026",
        "Clients, big",
        "Café/Menü",
        "CATEGORY_SOCIAL",
    ] {
        assert!(
            original.values().any(|l| l.contains(name)),
            "the fixture holds {name}"
        );
    }

    // The view gives each stored message its label names.
    let takeout = bed
        .count("SELECT count(*) FROM mail_message_labels WHERE label_name = 'takeout'")
        .await;
    let expected = original.values().filter(|l| l.contains("takeout")).count() as i64;
    assert_eq!(takeout, expected);
    assert!(expected > 30);
}

async fn a_label_renamed_in_gmail_is_a_ledger_event_and_the_next_export_shows_it(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let bed = TestBed::on(backend, imported(&takeout_mbox(dir.path()))).await;
    let (code, run) = bed.backfill(&ALL_TIME).await;
    assert_eq!(code, 0, "{run}");
    let label_events = "SELECT count(*) FROM ledger_events WHERE event_type LIKE 'label.%' AND event_type <> 'labels.changed'";
    let learned = bed.count(label_events).await;
    assert!(learned > 0, "the first run records the labels it learns");

    let mb = bed.mailbox.clone();
    let id = bed
        .emulator
        .label_id(&mb, "takeout")
        .expect("takeout label");
    bed.emulator.rename_label(&mb, &id, "archive/2019").unwrap();
    let fresh = bed.emulator.create_label(&mb, "brand new").unwrap();
    let doomed = bed.emulator.label_id(&mb, "☯").expect("☯ label");
    bed.emulator.delete_label(&mb, &doomed).unwrap();

    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    let of = |t: &str| {
        format!(
            "SELECT count(*) FROM ledger_events WHERE event_type = '{t}' AND subject_key = 'label:{}'",
            match t {
                "label.renamed" => id.as_str(),
                "label.created" => fresh.as_str(),
                _ => doomed.as_str(),
            }
        )
    };
    assert_eq!(bed.count(&of("label.renamed")).await, 1);
    assert_eq!(bed.count(&of("label.created")).await, 1);
    assert_eq!(bed.count(&of("label.deleted")).await, 1);
    let renamed = bed
        .strings(&format!(
            "SELECT CAST(payload AS TEXT) FROM ledger_events WHERE event_type = 'label.renamed' AND subject_key = 'label:{id}'"
        ))
        .await;
    assert!(
        renamed[0].contains("archive/2019") && renamed[0].contains("takeout"),
        "the new name and the old: {renamed:?}"
    );
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM mailbox_labels WHERE label_id = '{doomed}' AND deleted_at IS NOT NULL"
        ))
        .await,
        1,
        "a deleted label keeps its row, marked deleted"
    );
    let carrying = bed
        .count("SELECT count(*) FROM mail_message_labels WHERE label_name = 'archive/2019'")
        .await;
    assert!(carrying > 30);

    // An unchanged mailbox: no label event.
    let before = bed.count(label_events).await;
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(bed.count(label_events).await, before);

    let text = export(&bed, &dir.path().join("after.mbox"), &[]).await;
    let headers = label_headers(&text);
    let shown = headers
        .iter()
        .filter(|h| h.contains("archive/2019"))
        .count() as i64;
    assert_eq!(shown, carrying, "{headers:#?}");
    assert!(
        !headers.iter().any(|h| h.split(',').any(|l| l == "takeout")),
        "the old name is gone: {headers:#?}"
    );

    // show prints names, and takes a label by name.
    let show = bed
        .run(&[
            "show",
            "--mailbox",
            &mb,
            "--as-of",
            "2100-01-01",
            "--label",
            "archive/2019",
        ])
        .await;
    assert_eq!(show.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&show.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("archive/2019"))
            .count() as i64,
        carrying,
        "{stdout}"
    );
    assert!(!stdout.contains("Label_"), "names, not ids: {stdout}");
}

async fn export_label_takes_a_name_or_an_id(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let bed = TestBed::on(backend, imported(&takeout_mbox(dir.path()))).await;
    let (code, run) = bed.backfill(&ALL_TIME).await;
    assert_eq!(code, 0, "{run}");
    let id = bed
        .strings("SELECT label_id FROM mailbox_labels WHERE name = 'Work/Projects'")
        .await;
    assert_eq!(id.len(), 1);
    let by_name = export(
        &bed,
        &dir.path().join("name.mbox"),
        &["--label", "Work/Projects"],
    )
    .await;
    let by_id = export(&bed, &dir.path().join("id.mbox"), &["--label", &id[0]]).await;
    assert_eq!(label_headers(&by_name).len(), 1);
    assert_eq!(by_name, by_id);
    let inbox = export(&bed, &dir.path().join("inbox.mbox"), &["--label", "INBOX"]).await;
    let inbox_by_takeout_name =
        export(&bed, &dir.path().join("inbox2.mbox"), &["--label", "Inbox"]).await;
    assert!(label_headers(&inbox).len() > 20);
    assert_eq!(inbox, inbox_by_takeout_name);
}

async fn the_worker_s_runs_refresh_labels_too(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let bed = TestBed::on(backend, imported(&takeout_mbox(dir.path()))).await;
    let (code, run) = bed.backfill(&ALL_TIME).await;
    assert_eq!(code, 0, "{run}");
    let mb = bed.mailbox.clone();
    let id = bed
        .emulator
        .label_id(&mb, "takeout")
        .expect("takeout label");
    bed.emulator
        .rename_label(&mb, &id, "by the worker")
        .unwrap();
    let mut worker = bed
        .command()
        .args([
            "worker",
            "--interval",
            "1h",
            "--poll",
            "1s",
            "--verify-every",
            "off",
        ])
        .spawn()
        .expect("worker");
    bed.wait_for_count(
        "SELECT count(*) FROM sync_runs WHERE kind = 'sync' AND status = 'completed'",
        1,
        Duration::from_secs(60),
    )
    .await;
    worker.start_kill().expect("stop the worker");
    let _ = worker.wait().await;
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM ledger_events e JOIN sync_runs r ON r.id = e.run_id
             WHERE r.kind = 'sync' AND e.event_type = 'label.renamed' AND e.subject_key = 'label:{id}'"
        ))
        .await,
        1
    );
    assert_eq!(
        bed.strings(&format!(
            "SELECT name FROM mailbox_labels WHERE label_id = '{id}'"
        ))
        .await,
        ["by the worker"]
    );
}
