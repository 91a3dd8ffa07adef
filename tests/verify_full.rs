//! `verify --full`: the whole mailbox against Gmail, both ways. It names mail
//! Gmail has that is not stored (nor recorded as skipped) and mail stored live
//! here that Gmail no longer has, exits 4 on any difference, and is clean
//! again once a sync has applied the changes.

mod common;

use common::{TestBed, small_mailbox};

fn raw_message(subject: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.org>\r\nTo: ann@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.org>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain\r\n\r\nbody\r\n"
    )
    .into_bytes()
}

async fn verify_full(bed: &TestBed) -> (i32, serde_json::Value) {
    bed.run_json(&["verify", "--full", "--mailbox", bed.mailbox.as_str()])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_names_every_difference_both_ways() {
    let bed = TestBed::new(small_mailbox(12)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    // The summary's API usage covers the whole command, getProfile included.
    assert_eq!(
        run["api"]["methods"]["users.getProfile"]["calls"], 1,
        "{run}"
    );
    let (code, report) = verify_full(&bed).await;
    assert_eq!(code, 0, "{report}");
    let full = &report["mailboxes"][0]["full"];
    assert_eq!(full["listed"], full["stored_live"], "{report}");
    assert_eq!(full["missing_here"], 0);

    // Gmail gains a message and loses a stored one; nothing synced yet.
    let arrived = bed
        .emulator
        .insert_raw(&bed.mailbox, &raw_message("arrived"), &["INBOX"], None)
        .unwrap();
    let stored: String = sqlx::query_scalar(
        "SELECT provider_message_id FROM mail_messages
         WHERE NOT (label_ids && ARRAY['SPAM', 'TRASH']) ORDER BY 1 LIMIT 1",
    )
    .fetch_one(bed.pg())
    .await
    .unwrap();
    bed.emulator.delete_message(&bed.mailbox, &stored).unwrap();

    // Both differences are named, whatever window the last backfill had.
    let (code, report) = verify_full(&bed).await;
    assert_eq!(code, 4, "{report}");
    let full = &report["mailboxes"][0]["full"];
    assert_eq!(
        (full["missing_here"].as_u64(), full["gone_there"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    let findings = report["mailboxes"][0]["findings"].to_string();
    assert!(findings.contains(&arrived), "{findings}");
    assert!(findings.contains(&stored), "{findings}");

    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    let (code, report) = verify_full(&bed).await;
    assert_eq!(code, 0, "{report}");

    // --full needs Gmail: it cannot be combined with --offline.
    let out = bed.run(&["verify", "--full", "--offline"]).await;
    assert_eq!(out.status.code(), Some(2));
}
