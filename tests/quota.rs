//! The quota cost model of a backfill (see `crates/ingest/src/engine/backfill.rs`),
//! checked unit for unit through the emulator's counters: a first backfill
//! spends 5 units per stored message plus listing (no threads.get for a thread
//! none of whose messages is stored), an unchanged re-run only the listing,
//! and a re-run after K new messages in new threads and L relabelled stored
//! threads 5K + 10L plus listing.

mod common;

use std::collections::BTreeMap;

use common::{TestBed, small_mailbox};

/// Units charged per method since the last reset.
fn units(bed: &TestBed) -> BTreeMap<String, u64> {
    bed.emulator
        .stats()
        .mailboxes
        .get(&bed.mailbox)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.quota_units))
                .filter(|(_, u)| *u > 0)
                .collect()
        })
        .unwrap_or_default()
}

fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs
        .iter()
        .filter(|(_, u)| *u > 0)
        .map(|(k, u)| ((*k).to_owned(), *u))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_costs_what_the_cost_model_says() {
    let bed = TestBed::new(small_mailbox(60)).await;
    let (messages, threads) = bed.expected_ids().await;
    assert!(
        threads.len() < messages.len(),
        "the seeded window has threads of several messages"
    );
    let m = messages.len() as u64;

    // First backfill: getProfile 1, one page each of threads.list (10) and
    // messages.list (5), and 5 per stored message. No threads.get.
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    assert_eq!(first["messages"]["inserted"].as_u64(), Some(m), "{first}");
    assert_eq!(
        units(&bed),
        expect(&[
            ("users.getProfile", 1),
            ("users.threads.list", 10),
            ("users.messages.list", 5),
            ("users.messages.get", 5 * m),
        ])
    );
    // Where the time went, per stage (busy seconds): every stage did work.
    for stage in ["list", "fetch", "parse", "store", "write"] {
        let secs = first["stages"][stage].as_f64();
        assert!(secs.is_some_and(|s| s > 0.0), "{stage}: {first}");
    }
    let total: u64 = units(&bed).values().sum();
    let per_message = total as f64 / m as f64;
    assert!(per_message <= 5.3, "{per_message} units per message");
    assert_eq!(first["api"]["total"]["quota_units"].as_u64(), Some(total));

    // Unchanged re-run: the listing only.
    bed.emulator.reset_stats();
    let (code, rerun) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{rerun}");
    assert_eq!(
        units(&bed),
        expect(&[("users.getProfile", 1), ("users.threads.list", 10)])
    );

    // K new messages (each a new thread) and L stored threads relabelled.
    let k = 3u64;
    for i in 0..k {
        bed.emulator
            .insert_raw(
                &bed.mailbox,
                format!("From: a@example.org\r\nSubject: new {i}\r\n\r\nnew {i}\r\n").as_bytes(),
                &["INBOX"],
                None,
            )
            .expect("insert");
    }
    let mut relabelled_threads = std::collections::BTreeSet::new();
    for id in &messages {
        if relabelled_threads.len() == 2 {
            break;
        }
        let thread = bed.emulator.thread_of(&bed.mailbox, id).expect("thread");
        if relabelled_threads.insert(thread) {
            bed.emulator
                .modify_labels(&bed.mailbox, id, &["STARRED"], &[])
                .expect("relabel");
        }
    }
    let l = relabelled_threads.len() as u64;
    bed.emulator.reset_stats();
    let (code, changed) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{changed}");
    assert_eq!(
        changed["messages"]["inserted"].as_u64(),
        Some(k),
        "{changed}"
    );
    assert_eq!(changed["labels_changed"].as_u64(), Some(l), "{changed}");
    assert_eq!(
        units(&bed),
        expect(&[
            ("users.getProfile", 1),
            ("users.threads.list", 10),
            ("users.messages.list", 5),
            ("users.messages.get", 5 * k),
            ("users.threads.get", 10 * l),
        ])
    );
    bed.assert_verify_clean().await;
}

/// A thread first backfilled through a narrow window is current for that
/// window only: a wider backfill later still fetches its older messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wider_window_later_fetches_what_a_narrow_one_left_out() {
    let bed = TestBed::new(small_mailbox(60)).await;
    let (messages, _) = bed.expected_ids().await;
    let (code, narrow) = bed.backfill(&["--days", "2"]).await;
    assert_eq!(code, 0, "{narrow}");
    let first = narrow["messages"]["inserted"].as_u64().expect("inserted");
    assert!(first > 0 && (first as usize) < messages.len(), "{narrow}");
    let spanning = bed
        .count(
            "SELECT count(*) FROM mail_threads t WHERE t.history_id IS NOT NULL
             AND t.complete_since IS NOT NULL",
        )
        .await;
    assert!(
        spanning > 0,
        "threads recorded current for the narrow window"
    );

    let (code, wide) = bed.backfill(&["--days", "7"]).await;
    assert_eq!(code, 0, "{wide}");
    let stored: std::collections::BTreeSet<String> =
        sqlx::query_scalar("SELECT provider_message_id FROM mail_messages")
            .fetch_all(bed.pg())
            .await
            .expect("ids")
            .into_iter()
            .collect();
    assert_eq!(stored, messages, "every message of the wide window");
    bed.assert_verify_clean().await;

    // And the wide window is now known current: a re-run fetches nothing.
    bed.emulator.reset_stats();
    let (code, rerun) = bed.backfill(&["--days", "7"]).await;
    assert_eq!(code, 0, "{rerun}");
    assert_eq!(bed.calls("users.messages.get"), 0, "{rerun}");
    assert_eq!(bed.calls("users.threads.get"), 0, "{rerun}");
}

/// What a thread's row vouches for is the default scope: a later backfill
/// that includes SPAM and TRASH still stores the spam of threads a default
/// backfill completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn including_spam_and_trash_later_stores_what_the_default_scope_left_out() {
    let bed = TestBed::new(small_mailbox(60)).await;
    let (in_scope, threads) = bed.expected_ids().await;
    // A thread that has both: its spam is not in the default scope.
    let mixed = threads.iter().next().expect("a thread").clone();
    let spam = bed
        .emulator
        .insert_raw(
            &bed.mailbox,
            b"From: s@example.org\r\nSubject: spam in a thread\r\n\r\nspam\r\n",
            &["SPAM"],
            Some(&mixed),
        )
        .expect("insert");
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    let known: bool = sqlx::query_scalar(
        "SELECT history_id IS NOT NULL FROM mail_threads WHERE provider_thread_id = $1",
    )
    .bind(&mixed)
    .fetch_one(bed.pg())
    .await
    .expect("thread row");
    assert!(known, "the default backfill completed the mixed thread");
    let all = bed.emulator.message_ids(&bed.mailbox);
    assert!(all.len() > in_scope.len() && all.contains(&spam));
    let (code, wide) = bed.backfill(&["--include-spam-trash"]).await;
    assert_eq!(code, 0, "{wide}");
    let stored: std::collections::BTreeSet<String> =
        sqlx::query_scalar("SELECT provider_message_id FROM mail_messages")
            .fetch_all(bed.pg())
            .await
            .expect("ids")
            .into_iter()
            .collect();
    let every: std::collections::BTreeSet<String> = all.into_iter().collect();
    assert_eq!(stored, every, "{wide}");
}
