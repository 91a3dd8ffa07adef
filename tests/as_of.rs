//! `mailingest show --as-of`: a mailbox as its ledger says it was at an
//! instant. A scripted sequence of backfill, relabels, trash, deletes and new
//! mail, synced step by step; at each step the live rows are recorded, and
//! afterwards `show --as-of` at each instant must give exactly those rows'
//! messages and labels, on both backends (and PostgreSQL's
//! `mailbox_state_as_of` function the same).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use common::{Backend, TestBed, small_mailbox};

on_both_backends!(show_as_of_replays_the_mailbox_at_each_instant);

type Labels = BTreeMap<String, BTreeSet<String>>;

fn raw_message(n: usize) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\nTo: ann@example.com\r\nSubject: as-of {n}\r\n\
         Message-ID: <as-of-{n}@example.org>\r\nDate: {}\r\nContent-Type: text/plain\r\n\r\nBody {n}.\r\n",
        Utc::now().to_rfc2822()
    )
    .into_bytes()
}

/// An instant strictly between the step just done and the next one.
async fn instant() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let at = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    at
}

async fn show(bed: &TestBed, at: DateTime<Utc>) -> Labels {
    let at = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let (code, state) = bed
        .run_json(&["show", "--mailbox", &bed.mailbox, "--as-of", &at])
        .await;
    assert_eq!(code, 0, "{state}");
    state["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let labels = m["label_ids"].as_array().expect("labels recorded");
            (
                m["id"].as_str().unwrap().to_owned(),
                labels
                    .iter()
                    .map(|l| l.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

async fn show_as_of_replays_the_mailbox_at_each_instant(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(20)).await;
    let before_anything = Utc::now();
    let mut steps: Vec<(DateTime<Utc>, Labels)> = Vec::new();

    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    steps.push((instant().await, bed.live_labels().await));
    let ids: Vec<String> = steps[0].1.keys().cloned().collect();

    for id in &ids[0..3] {
        bed.emulator
            .modify_labels(&bed.mailbox, id, &["STARRED"], &["UNREAD", "INBOX"])
            .unwrap();
    }
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    steps.push((instant().await, bed.live_labels().await));

    bed.emulator.trash(&bed.mailbox, &ids[3]).unwrap();
    bed.emulator.delete_message(&bed.mailbox, &ids[4]).unwrap();
    bed.emulator.delete_message(&bed.mailbox, &ids[0]).unwrap();
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    steps.push((instant().await, bed.live_labels().await));

    bed.emulator
        .insert_raw(&bed.mailbox, &raw_message(1), &["INBOX", "UNREAD"], None)
        .unwrap();
    bed.emulator
        .modify_labels(&bed.mailbox, &ids[1], &["IMPORTANT"], &[])
        .unwrap();
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    steps.push((instant().await, bed.live_labels().await));

    // The steps differ from each other, so a wrong instant cannot pass.
    for pair in steps.windows(2) {
        assert_ne!(pair[0].1, pair[1].1);
    }
    assert!(show(&bed, before_anything).await.is_empty(), "nothing yet");
    for (at, expected) in &steps {
        assert_eq!(&show(&bed, *at).await, expected, "as of {at}");
    }

    if backend == Backend::Postgres {
        for (at, expected) in &steps {
            let rows: Vec<(String, Vec<String>)> =
                sqlx::query_as("SELECT * FROM mailbox_state_as_of((SELECT id FROM mailboxes), $1)")
                    .bind(at)
                    .fetch_all(bed.pg())
                    .await
                    .unwrap();
            let got: Labels = rows
                .into_iter()
                .map(|(id, labels)| (id, labels.into_iter().collect()))
                .collect();
            assert_eq!(&got, expected, "mailbox_state_as_of at {at}");
        }
    }

    let (code, text) = {
        let out = bed
            .run(&["show", "--mailbox", &bed.mailbox, "--as-of", "2000-01-01"])
            .await;
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(code, Some(0));
    assert!(text.contains("0 messages"), "{text}");

    // `show | head`: the reader is gone before anything is printed. The end
    // of the output, not a failure: exit 0, nothing on stderr (no panic).
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    // Not `output()`: it would give the child a pipe of its own.
    let closed = bed
        .command()
        .args(["show", "--mailbox", &bed.mailbox, "--as-of", &now])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mailingest")
        .wait_with_output()
        .await
        .expect("mailingest ends");
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert_eq!(closed.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "a closed stdout printed on stderr");
    let unknown = bed
        .run(&[
            "show",
            "--mailbox",
            "nobody@example.com",
            "--as-of",
            "2000-01-01",
        ])
        .await;
    // A usage error: an address --org has no mailbox for (whether another
    // org has one is not this org's to know).
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let bad = bed
        .run(&[
            "show",
            "--mailbox",
            &bed.mailbox,
            "--as-of",
            "yesterday-ish",
        ])
        .await;
    assert_eq!(bad.status.code(), Some(2));
}
