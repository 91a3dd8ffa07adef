//! Mail that enters the backed-up scope by a label change is stored: a message
//! that arrived in SPAM or TRASH (skipped then, as intended) and is then moved
//! to the inbox is fetched by the next sync. Before, the label change on an id
//! never stored was ignored and the message was lost while verify said clean.

mod common;

use common::{TestBed, small_mailbox};

fn raw_message(n: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\nTo: ann@example.com\r\nSubject: {subject} {n}\r\n\
         Message-ID: <rescue-{n}@example.org>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain\r\n\r\nbody {n}\r\n"
    )
    .into_bytes()
}

async fn stored(bed: &TestBed, id: &str) -> Option<Vec<String>> {
    sqlx::query_scalar("SELECT label_ids FROM mail_messages WHERE provider_message_id = $1")
        .bind(id)
        .fetch_optional(bed.pg())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_moved_out_of_spam_or_trash_is_stored_by_the_next_sync() {
    let bed = TestBed::new(small_mailbox(10)).await;
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");

    let spam = bed
        .emulator
        .insert_raw(&bed.mailbox, &raw_message(1, "spam"), &["SPAM"], None)
        .unwrap();
    let trash = bed
        .emulator
        .insert_raw(&bed.mailbox, &raw_message(2, "trash"), &["TRASH"], None)
        .unwrap();
    // Arrives in the inbox and is spammed before any sync sees it: out of scope.
    let spammed = bed
        .emulator
        .insert_raw(&bed.mailbox, &raw_message(3, "spammed"), &["INBOX"], None)
        .unwrap();
    bed.emulator
        .modify_labels(&bed.mailbox, &spammed, &["SPAM"], &["INBOX"])
        .unwrap();
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    for id in [&spam, &trash, &spammed] {
        assert_eq!(stored(&bed, id).await, None, "{id} is out of scope");
    }

    // The user rescues both: out of spam, out of the trash.
    bed.emulator
        .modify_labels(&bed.mailbox, &spam, &["INBOX"], &["SPAM"])
        .unwrap();
    bed.emulator
        .modify_labels(&bed.mailbox, &trash, &["INBOX"], &["TRASH"])
        .unwrap();
    bed.emulator.reset_stats();
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["messages"]["inserted"], 2, "{run}");
    assert_eq!(bed.calls("users.messages.get"), 2);
    for id in [&spam, &trash] {
        let labels = stored(&bed, id)
            .await
            .unwrap_or_else(|| panic!("{id} lost"));
        assert!(labels.contains(&"INBOX".to_owned()), "{id}: {labels:?}");
        assert!(!labels.iter().any(|l| l == "SPAM" || l == "TRASH"));
    }
    assert_eq!(stored(&bed, &spammed).await, None);

    // A replay of the same history changes nothing more.
    let (code, again) = bed.sync().await;
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["messages"]["inserted"], 0, "{again}");
    bed.assert_verify_clean().await;
}
