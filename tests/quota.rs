//! The quota cost model of a backfill (see `crates/ingest/src/engine/backfill.rs`),
//! checked unit for unit through the emulator's counters, on both of Gmail's
//! quota tables (the binary and the emulator on the same one; every figure is
//! `gmail::QuotaTable::cost` times calls). A first backfill spends one
//! messages.get per stored message plus listing (no threads.get for a thread
//! none of whose messages is stored), an unchanged re-run only the listing. A
//! relabel of L stored threads costs threads.get per thread on the 2025 table;
//! on the 2026 one, where threads.get costs 40, it costs history pages from the
//! mailbox's cursor, or without a usable cursor labels.list and a listing per
//! label, and never threads.get. The labels stored afterwards are Gmail's.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{TestBed, small_mailbox};
use gmail::{Method, QuotaTable};

/// Each case (an `async fn(QuotaTable)`) once per quota table, as
/// `case::table_2026` and `case::table_2025`.
macro_rules! on_both_tables {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn table_2026() {
                super::$case(gmail::QuotaTable::Y2026).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn table_2025() {
                super::$case(gmail::QuotaTable::Y2025).await
            }
        }
    )*};
}

on_both_tables!(
    a_backfill_costs_what_the_cost_model_says,
    a_relabel_costs_history_not_threads_get_where_threads_get_is_dear,
    a_relabel_without_a_cursor_lists_each_label,
    a_relabel_after_history_expired_lists_each_label,
    a_wider_window_later_fetches_what_a_narrow_one_left_out,
    including_spam_and_trash_later_stores_what_the_default_scope_left_out,
    the_estimate_prices_the_backfill_it_precedes,
    a_thread_reaching_past_the_window_is_refreshed_whole_without_a_cursor,
);

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

/// What `calls` of each method cost on `table`, keyed as the emulator names methods.
fn expect(table: QuotaTable, calls: &[(Method, u64)]) -> BTreeMap<String, u64> {
    calls
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(m, n)| {
            let name = format!("users.{}", m.name().trim_start_matches("users."));
            (name, u64::from(table.cost(*m)) * n)
        })
        .collect()
}

/// Gmail's labels of every live stored message, read through our client.
async fn gmail_labels(bed: &TestBed) -> BTreeMap<String, BTreeSet<String>> {
    let gmail = bed.gmail().await;
    let mut out = BTreeMap::new();
    for id in bed.live_labels().await.into_keys() {
        let m = gmail
            .message_minimal(&bed.mailbox, &id)
            .await
            .expect("minimal");
        out.insert(id, m.label_ids.into_iter().collect());
    }
    out
}

/// The rows' labels are Gmail's, message for message.
async fn assert_labels_are_gmails(bed: &TestBed) {
    assert_eq!(bed.live_labels().await, gmail_labels(bed).await);
}

async fn a_backfill_costs_what_the_cost_model_says(table: QuotaTable) {
    let bed = TestBed::on_table(table, small_mailbox(60)).await;
    let (messages, threads) = bed.expected_ids().await;
    assert!(
        threads.len() < messages.len(),
        "the seeded window has threads of several messages"
    );
    let m = messages.len() as u64;

    // First backfill: getProfile, labels.list, one page each of threads.list
    // and messages.list, and one raw get per stored message. No threads.get.
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    assert_eq!(first["messages"]["inserted"].as_u64(), Some(m), "{first}");
    assert_eq!(
        units(&bed),
        expect(
            table,
            &[
                (Method::GetProfile, 1),
                (Method::LabelsList, 1),
                (Method::ThreadsList, 1),
                (Method::MessagesList, 1),
                (Method::MessagesGet, m),
            ]
        )
    );
    // Where the time went, per stage (busy seconds): every stage did work.
    for stage in ["list", "fetch", "parse", "store", "write"] {
        let secs = first["stages"][stage].as_f64();
        assert!(secs.is_some_and(|s| s > 0.0), "{stage}: {first}");
    }
    let total: u64 = units(&bed).values().sum();
    let per_message = total as f64 / m as f64;
    let floor = f64::from(table.cost(Method::MessagesGet));
    assert!(
        per_message <= floor + 0.3,
        "{per_message} units per message on the {table} table"
    );
    assert_eq!(first["api"]["total"]["quota_units"].as_u64(), Some(total));

    // Unchanged re-run: the listing only.
    bed.emulator.reset_stats();
    let (code, rerun) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{rerun}");
    assert_eq!(
        units(&bed),
        expect(
            table,
            &[
                (Method::GetProfile, 1),
                (Method::LabelsList, 1),
                (Method::ThreadsList, 1),
            ],
        )
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
    let mut relabelled_threads = BTreeSet::new();
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
    // The cursor the first backfill set is a handful of records behind:
    // one history page says what was relabelled.
    let learning_labels = match table {
        QuotaTable::Y2026 => (Method::HistoryList, 1),
        QuotaTable::Y2025 => (Method::ThreadsGet, l),
    };
    assert_eq!(
        units(&bed),
        expect(
            table,
            &[
                (Method::GetProfile, 1),
                (Method::LabelsList, 1),
                (Method::ThreadsList, 1),
                (Method::MessagesList, 1),
                (Method::MessagesGet, k),
                learning_labels,
            ]
        )
    );
    assert_labels_are_gmails(&bed).await;
    bed.assert_verify_clean().await;
}

/// Relabels stored messages of three threads in several ways (a label
/// added, a user label new to the mailbox, archived, trashed while the rest
/// of its thread stays); returns how many messages' labels Gmail changed and
/// in how many threads. Resets the emulator's statistics.
async fn relabel_three_threads(bed: &TestBed, messages: &BTreeSet<String>) -> (u64, u64) {
    let mut by_thread: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in messages {
        let thread = bed.emulator.thread_of(&bed.mailbox, id).expect("thread");
        by_thread.entry(thread).or_default().push(id.clone());
    }
    let mut threads: Vec<&Vec<String>> = by_thread.values().collect();
    // Longest first: the trashed message must leave a thread still listed.
    threads.sort_by_key(|ids| std::cmp::Reverse(ids.len()));
    assert!(threads[0].len() >= 2, "a thread of several messages");
    let before = bed.live_labels().await;
    let (a, b, c) = (threads[0], threads[1], threads[2]);
    let relabel = |id: &str, add: &[&str], remove: &[&str]| {
        bed.emulator
            .modify_labels(&bed.mailbox, id, add, remove)
            .expect("relabel")
    };
    relabel(&a[0], &["STARRED"], &[]);
    bed.emulator.trash(&bed.mailbox, &a[1]).expect("trash");
    relabel(&b[0], &["e2e-reviewed"], &["INBOX"]);
    relabel(&c[0], &["IMPORTANT"], &["UNREAD", "INBOX"]);
    let after = gmail_labels(bed).await;
    let changed = after.iter().filter(|(id, l)| before[*id] != **l).count() as u64;
    assert!(changed >= 3, "Gmail took the relabels: {changed}");
    bed.emulator.reset_stats();
    (changed, 3)
}

/// A relabel alone: no messages.get on either table; on 2026 no threads.get
/// either, one history page from the cursor the first backfill set.
async fn a_relabel_costs_history_not_threads_get_where_threads_get_is_dear(table: QuotaTable) {
    let bed = TestBed::on_table(table, small_mailbox(60)).await;
    let (messages, _) = bed.expected_ids().await;
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    let (k, l) = relabel_three_threads(&bed, &messages).await;

    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["labels_changed"].as_u64(), Some(k), "{run}");
    assert_eq!(run["messages"]["inserted"].as_u64(), Some(0), "{run}");
    let listing = [
        (Method::GetProfile, 1),
        (Method::LabelsList, 1),
        (Method::ThreadsList, 1),
    ];
    let learning: &[(Method, u64)] = match table {
        QuotaTable::Y2026 => &[(Method::MessagesList, 1), (Method::HistoryList, 1)],
        QuotaTable::Y2025 => &[(Method::ThreadsGet, l)],
    };
    assert_eq!(
        units(&bed),
        expect(table, &[&listing[..], learning].concat())
    );
    assert_labels_are_gmails(&bed).await;

    // And the relabelled threads are current again.
    bed.emulator.reset_stats();
    let (code, rerun) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{rerun}");
    assert_eq!(units(&bed), expect(table, &listing));
}

#[derive(Debug, Clone, Copy)]
enum NoHistory {
    /// The mailbox has no cursor (as after a backfill that never completed).
    NoCursor,
    /// Gmail no longer holds history from the cursor (404).
    Expired,
}

/// Without usable history, the 2026 table's labels come from labels.list and
/// one messages.list per label over the window; the 2025 table's from
/// threads.get as ever.
async fn relabel_without_usable_history(table: QuotaTable, how: NoHistory) {
    let bed = TestBed::on_table(table, small_mailbox(60)).await;
    let (messages, _) = bed.expected_ids().await;
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    let (k, l) = relabel_three_threads(&bed, &messages).await;
    let labels = bed
        .gmail()
        .await
        .labels(&bed.mailbox)
        .await
        .expect("labels.list")
        .len() as u64;
    assert!(labels > 5, "system labels and the user's: {labels}");
    match how {
        NoHistory::NoCursor => {
            assert_eq!(
                bed.execute("UPDATE mailboxes SET history_id = NULL").await,
                1
            );
        }
        NoHistory::Expired => bed.emulator.expire_history(&bed.mailbox),
    }
    bed.emulator.reset_stats();

    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["labels_changed"].as_u64(), Some(k), "{run}");
    // Every run lists the labels once when it starts; the listing per
    // label reuses that list.
    let mut calls = vec![
        (Method::GetProfile, 1),
        (Method::LabelsList, 1),
        (Method::ThreadsList, 1),
    ];
    // Without a cursor no sync can say what was deleted before this run: one
    // listing of the window, SPAM and TRASH included, accounts for the stored
    // rows (`engine/vanished.rs`; one page here, and nothing vanished).
    let accounting = match how {
        NoHistory::NoCursor => 1,
        NoHistory::Expired => 0,
    };
    match (table, how) {
        (QuotaTable::Y2025, _) => {
            calls.push((Method::ThreadsGet, l));
            calls.push((Method::MessagesList, accounting));
        }
        (QuotaTable::Y2026, _) => {
            // The window's listing, then one per label (each one page here).
            calls.push((Method::MessagesList, 1 + labels + accounting));
            if let NoHistory::Expired = how {
                calls.push((Method::HistoryList, 1)); // the 404
            }
        }
    }
    assert_eq!(units(&bed), expect(table, &calls));
    assert_labels_are_gmails(&bed).await;
    if let NoHistory::NoCursor = how {
        assert_eq!(
            bed.count("SELECT count(*) FROM mailboxes WHERE history_id IS NOT NULL")
                .await,
            1,
            "the backfill set the cursor it found absent"
        );
    }
    bed.assert_verify_clean().await;
}

async fn a_relabel_without_a_cursor_lists_each_label(table: QuotaTable) {
    relabel_without_usable_history(table, NoHistory::NoCursor).await;
}

async fn a_relabel_after_history_expired_lists_each_label(table: QuotaTable) {
    relabel_without_usable_history(table, NoHistory::Expired).await;
}

/// A thread first backfilled through a narrow window is current for that
/// window only: a wider backfill later still fetches its older messages.
async fn a_wider_window_later_fetches_what_a_narrow_one_left_out(table: QuotaTable) {
    let bed = TestBed::on_table(table, small_mailbox(60)).await;
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
    let stored: BTreeSet<String> =
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
async fn including_spam_and_trash_later_stores_what_the_default_scope_left_out(table: QuotaTable) {
    let bed = TestBed::on_table(table, small_mailbox(60)).await;
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
    let stored: BTreeSet<String> =
        sqlx::query_scalar("SELECT provider_message_id FROM mail_messages")
            .fetch_all(bed.pg())
            .await
            .expect("ids")
            .into_iter()
            .collect();
    let every: BTreeSet<String> = all.into_iter().collect();
    assert_eq!(stored, every, "{wide}");
}

/// `backfill --estimate`'s units by method, keyed as the emulator names methods.
fn estimated(estimate: &serde_json::Value) -> BTreeMap<String, u64> {
    estimate["units_by_method"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let name = format!("users.{}", k.trim_start_matches("users."));
                    (name, v.as_u64().unwrap_or(0))
                })
                .filter(|(_, u)| *u > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// `backfill --estimate` lists the window with messages.list only and predicts, method for
/// method, what the backfill then spends; after it, nothing is left to fetch and the
/// estimate is the re-run's listing.
async fn the_estimate_prices_the_backfill_it_precedes(table: QuotaTable) {
    let bed = TestBed::on_table(table, small_mailbox(60)).await;
    let (messages, _) = bed.expected_ids().await;
    let m = messages.len() as u64;
    let args = ["backfill", "--mailbox", bed.mailbox.as_str(), "--estimate"];

    bed.emulator.reset_stats();
    let (code, estimate) = bed.run_json(&args).await;
    assert_eq!(code, 0, "{estimate}");
    assert_eq!(estimate["quota_table"], table.name(), "{estimate}");
    assert_eq!(estimate["to_fetch"].as_u64(), Some(m), "{estimate}");
    assert_eq!(estimate["stored"].as_u64(), Some(0), "{estimate}");
    // The estimate itself: one messages.list page, no get.
    assert_eq!(units(&bed), expect(table, &[(Method::MessagesList, 1)]));
    assert_eq!(
        estimate["estimate_units"].as_u64(),
        Some(u64::from(table.cost(Method::MessagesList)))
    );

    bed.emulator.reset_stats();
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    assert_eq!(first["messages"]["inserted"].as_u64(), Some(m), "{first}");
    let spent = units(&bed);
    assert_eq!(estimated(&estimate), spent, "{estimate}");
    assert_eq!(
        estimate["units"].as_u64(),
        Some(spent.values().sum::<u64>()),
        "{estimate}"
    );

    let (code, again) = bed.run_json(&args).await;
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["to_fetch"].as_u64(), Some(0), "{again}");
    assert_eq!(again["stored"].as_u64(), Some(m), "{again}");
    bed.emulator.reset_stats();
    let (code, rerun) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{rerun}");
    assert_eq!(estimated(&again), units(&bed), "{again}");
}

/// Without a usable cursor the labels come from a listing per label, which
/// knows the window only: a changed stored thread that also holds stored
/// messages outside the window is asked for with threads.get, so the labels
/// of those older messages are Gmail's before the thread is recorded current.
async fn a_thread_reaching_past_the_window_is_refreshed_whole_without_a_cursor(table: QuotaTable) {
    let bed = TestBed::on_table(table, small_mailbox(60)).await;
    let (messages, _) = bed.expected_ids().await;
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");

    // A message older than three days, in a thread that gains a new message.
    let gmail = bed.gmail().await;
    let cutoff = chrono::Utc::now().timestamp_millis() - 3 * 86_400_000;
    let mut old = None;
    for id in &messages {
        let m = gmail
            .message_minimal(&bed.mailbox, id)
            .await
            .expect("minimal");
        if m.internal_date_ms < cutoff {
            old = Some((m.id.clone(), m.thread_id.clone()));
            break;
        }
    }
    let (old_id, thread) = old.expect("a message older than three days");
    bed.emulator
        .insert_raw(
            &bed.mailbox,
            b"From: late@example.org\r\nSubject: a late reply\r\n\r\nlate\r\n",
            &["INBOX"],
            Some(&thread),
        )
        .expect("insert");
    bed.emulator
        .modify_labels(&bed.mailbox, &old_id, &["STARRED"], &["INBOX"])
        .expect("relabel");
    assert_eq!(
        bed.execute("UPDATE mailboxes SET history_id = NULL").await,
        1
    );
    bed.emulator.reset_stats();

    let (code, run) = bed.backfill(&["--days", "2"]).await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["messages"]["inserted"].as_u64(), Some(1), "{run}");
    assert!(bed.calls("users.threads.get") >= 1, "{run}");
    assert_labels_are_gmails(&bed).await;
    bed.assert_verify_clean().await;
}
