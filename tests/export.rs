//! `mailingest export` end to end on both backends: an mbox export imported
//! into a fresh emulator and backed up into a fresh database gives the same
//! messages, raw bytes and labels; an .eml export writes one file per message
//! under <yyyy>/<mm>, byte for byte, and a re-run keeps them; filters select;
//! a damaged blob is an error naming its message and nothing of it is
//! written, while every other message is exported.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{Backend, TestBed, small_mailbox};
use gmail_emulator::EmulatorConfig;
use serde_json::Value;
use sha2::Digest;

on_both_backends!(
    an_mbox_export_imports_back_to_the_same_mail,
    eml_files_are_byte_for_byte_and_a_rerun_keeps_them,
    a_damaged_blob_names_its_message_and_the_rest_is_exported,
);

/// raw sha256 → labels, user labels (ids differ between mailboxes) as "user".
async fn by_raw(bed: &TestBed) -> BTreeMap<String, Vec<String>> {
    let labels = bed.live_labels().await;
    let ids = bed
        .strings("SELECT provider_message_id FROM mail_messages WHERE deleted_at IS NULL ORDER BY provider_message_id")
        .await;
    let shas = bed
        .strings("SELECT raw_sha256 FROM mail_messages WHERE deleted_at IS NULL ORDER BY provider_message_id")
        .await;
    ids.iter()
        .zip(shas)
        .map(|(id, sha)| {
            let mut l: Vec<String> = labels[id]
                .iter()
                .map(|l| {
                    if l.starts_with("Label_") {
                        "user".into()
                    } else {
                        l.clone()
                    }
                })
                .collect();
            l.sort();
            (sha, l)
        })
        .collect()
}

async fn export(bed: &TestBed, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = bed.run(&all).await;
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        summary,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn an_mbox_export_imports_back_to_the_same_mail(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(40)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let original = by_raw(&bed).await;
    let out = tempfile::tempdir().unwrap();
    let mbox = out.path().join("export.mbox");
    let mbox_arg = mbox.to_str().unwrap();

    let (code, summary, stderr) = export(&bed, &["--format", "mbox", "--out", mbox_arg]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["exported"], original.len(), "{summary}");
    // Never overwritten.
    let (code, _, stderr) = export(&bed, &["--format", "mbox", "--out", mbox_arg]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");

    let back = TestBed::on(
        backend,
        EmulatorConfig {
            messages: 0,
            import: Some(mbox.clone()),
            ..small_mailbox(0)
        },
    )
    .await;
    let (code, run) = back.backfill(&["--days", "30"]).await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(by_raw(&back).await, original, "same raw bytes, same labels");

    // Filters: a label, and a window that holds nothing.
    let mbox2 = out.path().join("starred.mbox");
    let starred = bed
        .count("SELECT count(*) FROM mail_messages WHERE CAST(label_ids AS TEXT) LIKE '%STARRED%'")
        .await;
    let (code, summary, stderr) = export(
        &bed,
        &[
            "--format",
            "mbox",
            "--out",
            mbox2.to_str().unwrap(),
            "--label",
            "STARRED",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["exported"], starred, "{summary}");
    let mbox3 = out.path().join("old.mbox");
    let (code, summary, _) = export(
        &bed,
        &[
            "--format",
            "mbox",
            "--out",
            mbox3.to_str().unwrap(),
            "--until",
            "2000-01-01",
        ],
    )
    .await;
    assert_eq!(code, Some(0));
    assert_eq!(summary["exported"], 0);
}

fn eml_files(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for year in std::fs::read_dir(dir).unwrap() {
        let year = year.unwrap().path();
        for month in std::fs::read_dir(&year).unwrap() {
            let month = month.unwrap().path();
            for file in std::fs::read_dir(&month).unwrap() {
                let file = file.unwrap().path();
                let name = file.file_name().unwrap().to_str().unwrap().to_owned();
                assert!(name.ends_with(".eml"), "only whole files: {name}");
                let bytes = std::fs::read(&file).unwrap();
                out.insert(
                    name.trim_end_matches(".eml").to_owned(),
                    hex::encode(sha2::Sha256::digest(&bytes)),
                );
            }
        }
    }
    out
}

async fn eml_files_are_byte_for_byte_and_a_rerun_keeps_them(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(20)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "--format",
        "eml",
        "--out",
        out,
        "--mailbox",
        bed.mailbox.as_str(),
    ];
    let (code, summary, stderr) = export(&bed, &args).await;
    assert_eq!(code, Some(0), "{stderr}");
    let ids = bed
        .strings("SELECT provider_message_id FROM mail_messages ORDER BY provider_message_id")
        .await;
    let shas = bed
        .strings("SELECT raw_sha256 FROM mail_messages ORDER BY provider_message_id")
        .await;
    let expected: BTreeMap<String, String> = ids.into_iter().zip(shas).collect();
    assert_eq!(summary["exported"], expected.len());
    assert_eq!(eml_files(dir.path()), expected);

    let (code, summary, stderr) = export(&bed, &args).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["exported"], 0);
    assert_eq!(summary["already_there"], expected.len());
    let (code, _, stderr) = export(&bed, &["--format", "eml", "--out", out]).await;
    assert_eq!(code, Some(1), "eml needs --mailbox: {stderr}");
}

async fn a_damaged_blob_names_its_message_and_the_rest_is_exported(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(12)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    // A message whose raw blob is its own (not shared with another message).
    let (victim, sha) = {
        let ids = bed
            .strings("SELECT provider_message_id FROM mail_messages ORDER BY provider_message_id")
            .await;
        let shas = bed
            .strings("SELECT raw_sha256 FROM mail_messages ORDER BY provider_message_id")
            .await;
        (ids[0].clone(), shas[0].clone())
    };
    let blob = bed
        .store_path()
        .join("default/sha256")
        .join(&sha[..2])
        .join(&sha[2..4])
        .join(&sha);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&blob, &bytes).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("out.mbox");
    let (code, summary, stderr) =
        export(&bed, &["--format", "mbox", "--out", mbox.to_str().unwrap()]).await;
    assert_eq!(code, Some(1), "{stderr}");
    let total = bed.count("SELECT count(*) FROM mail_messages").await;
    assert_eq!(summary["exported"], total - 1, "{summary}");
    assert_eq!(summary["failed"][0]["message"], victim.as_str());
    let line = stderr
        .lines()
        .find(|l| l.contains(&victim))
        .expect("names the message");
    assert!(line.starts_with("error: "), "{stderr}");
    // The file holds exactly the other messages, each whole.
    let text = std::fs::read(&mbox).unwrap();
    let separators = text
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"From "))
        .count() as i64;
    assert_eq!(separators, total - 1);
    assert!(!String::from_utf8_lossy(&text).contains(&format!("From {victim}@")));

    let eml = tempfile::tempdir().unwrap();
    let (code, summary, _) = export(
        &bed,
        &[
            "--format",
            "eml",
            "--out",
            eml.path().to_str().unwrap(),
            "--mailbox",
            bed.mailbox.as_str(),
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert_eq!(summary["exported"], total - 1);
    let files: BTreeSet<String> = eml_files(eml.path()).into_keys().collect();
    assert!(
        !files.contains(&victim),
        "no file, whole or partial, for the damaged message"
    );
    assert_eq!(files.len() as i64, total - 1);
}
