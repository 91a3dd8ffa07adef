//! Incremental sync end to end: the real binary against the emulator and a
//! fresh database. Adds, deletes, label changes and trash are mirrored
//! exactly; replayed history changes nothing; expired history falls back to a
//! backfill; workers share mailboxes through Postgres alone; SIGTERM resumes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{TestBed, small_mailbox};
use gmail_emulator::{EmulatorConfig, Faults};

fn raw_message(n: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\n\
         To: ann@example.com\r\n\
         Subject: {subject}\r\n\
         Message-ID: <sync-{n}-{subject}@example.org>\r\n\
         Date: {}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Body of message {n}.\r\n",
        chrono::Utc::now().to_rfc2822()
    )
    .into_bytes()
}

/// provider id → label set of every live (not deleted) stored message.
async fn stored_labels(bed: &TestBed) -> BTreeMap<String, BTreeSet<String>> {
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT provider_message_id, label_ids FROM mail_messages WHERE deleted_at IS NULL",
    )
    .fetch_all(bed.pg())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, labels)| (id, labels.into_iter().collect()))
        .collect()
}

async fn gmail_labels(
    bed: &TestBed,
    ids: impl IntoIterator<Item = String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let gmail = bed.gmail().await;
    let mut out = BTreeMap::new();
    for id in ids {
        let m = gmail
            .message_minimal(&bed.mailbox, &id)
            .await
            .expect("minimal");
        out.insert(id, m.label_ids.into_iter().collect());
    }
    out
}

async fn ledger_count(bed: &TestBed, run_id: i64, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ledger_events WHERE run_id = $1 AND event_type = $2")
        .bind(run_id)
        .bind(event_type)
        .fetch_one(bed.pg())
        .await
        .unwrap()
}

fn n(v: &serde_json::Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{path:?} missing in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mirrors_adds_deletes_relabels_and_trash() {
    let bed = TestBed::new(small_mailbox(30)).await;
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    let before = stored_labels(&bed).await;
    assert!(before.len() >= 10);

    let existing: Vec<String> = before.keys().cloned().collect();
    let deleted = &existing[0..2];
    let relabelled = &existing[2..5];
    let trashed = &existing[5];
    let mut added = Vec::new();
    for i in 0..5 {
        added.push(
            bed.emulator
                .insert_raw(
                    &bed.mailbox,
                    &raw_message(i, "new"),
                    &["INBOX", "UNREAD"],
                    None,
                )
                .unwrap(),
        );
    }
    for id in deleted {
        bed.emulator.delete_message(&bed.mailbox, id).unwrap();
    }
    for id in relabelled {
        bed.emulator
            .modify_labels(&bed.mailbox, id, &["STARRED"], &["UNREAD"])
            .unwrap();
    }
    bed.emulator.trash(&bed.mailbox, trashed).unwrap();
    bed.emulator.reset_stats();

    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(n(&run, &["messages", "inserted"]), 5);
    assert_eq!(n(&run, &["messages_deleted"]), 2);
    // 3 relabelled + 1 trashed; a relabel that changed nothing would not count.
    assert_eq!(n(&run, &["labels_changed"]), 4);
    assert_eq!(run["history_expired"], false);
    // Only what changed was fetched: no listing, no thread calls.
    assert_eq!(bed.calls("users.messages.get"), 5);
    assert_eq!(
        bed.calls("users.threads.list") + bed.calls("users.threads.get"),
        0
    );
    assert_eq!(bed.calls("users.messages.list"), 0);
    let pages = n(&run, &["history_pages"]);
    let cost = |m| u64::from(bed.quota_table.cost(m));
    assert_eq!(
        n(&run, &["api", "total", "quota_units"]),
        cost(gmail::Method::LabelsList)
            + cost(gmail::Method::HistoryList) * pages
            + cost(gmail::Method::MessagesGet) * 5
    );

    // The database mirrors Gmail exactly.
    let after = stored_labels(&bed).await;
    let expected_ids: BTreeSet<String> = existing
        .iter()
        .filter(|id| !deleted.contains(id))
        .cloned()
        .chain(added.iter().cloned())
        .collect();
    assert_eq!(after.keys().cloned().collect::<BTreeSet<_>>(), expected_ids);
    assert_eq!(after, gmail_labels(&bed, expected_ids.clone()).await);
    assert!(after[trashed].contains("TRASH"));
    for id in deleted {
        let deleted_at: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT deleted_at FROM mail_messages WHERE provider_message_id = $1",
        )
        .bind(id)
        .fetch_one(bed.pg())
        .await
        .unwrap();
        assert!(deleted_at.is_some(), "soft delete keeps the row of {id}");
    }

    // One ledger event per change.
    let run_id = run["run_id"].as_i64().unwrap();
    assert_eq!(ledger_count(&bed, run_id, "message.ingested").await, 5);
    assert_eq!(ledger_count(&bed, run_id, "message.deleted").await, 2);
    assert_eq!(ledger_count(&bed, run_id, "labels.changed").await, 4);
    assert_eq!(ledger_count(&bed, run_id, "sync.completed").await, 1);

    // The cursor is Gmail's current historyId.
    let stored_cursor: Option<i64> = sqlx::query_scalar("SELECT history_id FROM mailboxes")
        .fetch_one(bed.pg())
        .await
        .unwrap();
    assert_eq!(
        stored_cursor.map(|c| c as u64),
        bed.emulator.history_id(&bed.mailbox)
    );
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_history_changes_nothing() {
    let bed = TestBed::new(small_mailbox(20)).await;
    assert_eq!(bed.backfill(&[]).await.0, 0);
    let old_cursor: i64 = bed.count("SELECT history_id FROM mailboxes").await;
    let ids = bed.emulator.message_ids(&bed.mailbox);
    bed.emulator
        .insert_raw(&bed.mailbox, &raw_message(1, "replay"), &["INBOX"], None)
        .unwrap();
    bed.emulator.delete_message(&bed.mailbox, &ids[0]).unwrap();
    bed.emulator
        .modify_labels(&bed.mailbox, &ids[1], &["STARRED"], &[])
        .unwrap();
    let (code, first) = bed.sync().await;
    assert_eq!(code, 0, "{first}");
    assert_eq!(n(&first, &["messages", "inserted"]), 1);
    let snapshot = stored_labels(&bed).await;
    let tuples: i64 = bed.count("SELECT count(*) FROM mail_messages").await;

    // Rewind the cursor: the same history is replayed.
    sqlx::query("UPDATE mailboxes SET history_id = $1")
        .bind(old_cursor)
        .execute(bed.pg())
        .await
        .unwrap();
    bed.emulator.reset_stats();
    let (code, replay) = bed.sync().await;
    assert_eq!(code, 0, "{replay}");
    assert_eq!(n(&replay, &["messages", "inserted"]), 0);
    assert_eq!(n(&replay, &["messages", "updated"]), 0);
    assert_eq!(n(&replay, &["labels_changed"]), 0);
    assert_eq!(n(&replay, &["messages_deleted"]), 0);
    assert_eq!(
        bed.calls("users.messages.get"),
        0,
        "nothing stored is fetched again"
    );
    assert_eq!(stored_labels(&bed).await, snapshot);
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_messages").await,
        tuples
    );
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_history_falls_back_to_a_backfill_with_a_fresh_cursor() {
    let bed = TestBed::new(small_mailbox(20)).await;
    assert_eq!(bed.backfill(&[]).await.0, 0);
    let added = bed
        .emulator
        .insert_raw(
            &bed.mailbox,
            &raw_message(1, "after-expiry"),
            &["INBOX"],
            None,
        )
        .unwrap();
    bed.emulator.expire_history(&bed.mailbox);

    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["history_expired"], true);
    assert_eq!(n(&run, &["messages", "inserted"]), 1);
    assert!(
        run["window"].is_object(),
        "the fallback window is reported: {run}"
    );
    let run_id = run["run_id"].as_i64().unwrap();
    assert_eq!(ledger_count(&bed, run_id, "history.expired").await, 1);
    let stored: i64 = bed
        .count(&format!(
            "SELECT count(*) FROM mail_messages WHERE provider_message_id = '{added}'"
        ))
        .await;
    assert_eq!(stored, 1);
    let cursor: i64 = bed.count("SELECT history_id FROM mailboxes").await;
    assert_eq!(Some(cursor as u64), bed.emulator.history_id(&bed.mailbox));

    // The fresh cursor works: the next sync replays from it without falling back.
    let (code, next) = bed.sync().await;
    assert_eq!(code, 0, "{next}");
    assert_eq!(next["history_expired"], false);
    bed.assert_verify_clean().await;
}

/// Mail deleted while history was out of reach: history cannot say so, and
/// the fallback window may not even hold it. The fallback accounts for every
/// stored row against Gmail's listing of the mailbox and asks Gmail about
/// each one the listing no longer names: a 404 marks it deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_deleted_while_history_expired_is_marked_deleted_by_the_fallback() {
    let bed = TestBed::new(small_mailbox(20)).await;
    assert_eq!(bed.backfill(&[]).await.0, 0);
    let stored = stored_labels(&bed).await;
    let gmail = bed.gmail().await;
    let day_ago = chrono::Utc::now().timestamp_millis() - 86_400_000;
    let mut old = None;
    for id in stored.keys() {
        let meta = gmail.message_minimal(&bed.mailbox, id).await.unwrap();
        if meta.internal_date_ms < day_ago {
            old = Some(id.clone());
            break;
        }
    }
    let old = old.expect("a stored message older than the 1-day fallback window");
    bed.emulator.delete_message(&bed.mailbox, &old).unwrap();
    bed.emulator.expire_history(&bed.mailbox);
    bed.emulator.reset_stats();

    let (code, run) = bed
        .run_json(&["sync", "--mailbox", &bed.mailbox, "--fallback-days", "1"])
        .await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["history_expired"], true);
    assert_eq!(n(&run, &["messages_deleted"]), 1, "{run}");
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM mail_messages WHERE provider_message_id = '{old}' \
             AND deleted_at IS NOT NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        bed.calls("users.messages.get"),
        1,
        "only the message the listing no longer names is asked about"
    );
    let mut want = stored;
    want.remove(&old);
    assert_eq!(stored_labels(&bed).await, want);
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_without_records_are_followed() {
    let bed = TestBed::new(small_mailbox(10)).await;
    assert_eq!(bed.backfill(&[]).await.0, 0);
    let mut added = BTreeSet::new();
    for i in 0..8 {
        added.insert(
            bed.emulator
                .insert_raw(&bed.mailbox, &raw_message(i, "paged"), &["INBOX"], None)
                .unwrap(),
        );
    }
    bed.emulator.set_faults(Faults {
        empty_history_page_rate: 0.5,
        ..Faults::default()
    });
    let (code, run) = bed.sync().await;
    bed.emulator.set_faults(Faults::default());
    assert_eq!(code, 0, "{run}");
    assert_eq!(n(&run, &["messages", "inserted"]), 8);
    let stored = stored_labels(&bed).await;
    assert!(added.iter().all(|id| stored.contains_key(id)));
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_without_a_cursor_backs_up_the_window() {
    let bed = TestBed::new(small_mailbox(15)).await;
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["history_expired"], false);
    assert!(run["window"].is_object());
    let stored = bed.count("SELECT count(*) FROM mail_messages").await;
    assert!(stored > 0);
    assert_eq!(n(&run, &["messages", "inserted"]), stored as u64);
    let cursor: i64 = bed.count("SELECT history_id FROM mailboxes").await;
    assert_eq!(Some(cursor as u64), bed.emulator.history_id(&bed.mailbox));
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_sync_resumes_from_the_committed_cursor() {
    let bed = TestBed::new(small_mailbox(5)).await;
    assert_eq!(bed.backfill(&[]).await.0, 0);
    let mut added = BTreeSet::new();
    for i in 0..60 {
        added.insert(
            bed.emulator
                .insert_raw(&bed.mailbox, &raw_message(i, "slow"), &["INBOX"], None)
                .unwrap(),
        );
    }
    // Slow enough that the signal lands mid-run: 60 messages, 16 in flight,
    // 150 ms each, so fetching lasts ~0.45 s after the first answer.
    bed.emulator.set_faults(Faults {
        latency_ms: 150,
        ..Faults::default()
    });
    bed.emulator.reset_stats();
    let child = bed
        .command()
        .args(["sync", "--mailbox", &bed.mailbox, "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // Signal once the first message has been served (the emulator counts a
    // call after its latency), not after a fixed delay a faster build outruns.
    let started = std::time::Instant::now();
    while bed.calls("users.messages.get") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sync fetched nothing within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: String = sqlx::query_scalar(
        "SELECT status FROM sync_runs WHERE kind = 'sync' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(bed.pg())
    .await
    .unwrap();
    assert_eq!(status, "interrupted");

    bed.emulator.set_faults(Faults::default());
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    let stored = stored_labels(&bed).await;
    assert!(
        added.iter().all(|id| stored.contains_key(id)),
        "nothing lost"
    );
    let dups = bed
        .count("SELECT count(*) FROM (SELECT provider_message_id FROM mail_messages GROUP BY 1 HAVING count(*) > 1) d")
        .await;
    assert_eq!(dups, 0);
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_twelve_mailboxes_without_overlap() {
    let mailboxes: Vec<String> = (0..12).map(|i| format!("user{i}@example.com")).collect();
    let bed = TestBed::new(EmulatorConfig {
        seed: 11,
        messages: 6,
        days: 6,
        mailboxes: mailboxes.clone(),
        ..EmulatorConfig::default()
    })
    .await;
    for m in &mailboxes {
        let out = bed.run(&["mailbox", "add", m]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(
            bed.command()
                .args([
                    "worker",
                    "--interval",
                    "1s",
                    "--poll",
                    "1s",
                    "--concurrency",
                    "3",
                ])
                .spawn()
                .unwrap(),
        );
    }
    // Every mailbox synced at least three times.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let least: i64 = bed
            .count(
                "SELECT coalesce(min(n), 0) FROM (
                    SELECT m.id, count(r.id) AS n FROM mailboxes m
                    LEFT JOIN sync_runs r ON r.mailbox_id = m.id AND r.status = 'completed'
                    GROUP BY m.id) c",
            )
            .await;
        if least >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workers did not sync every mailbox 3 times"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for w in &workers {
        let pid = w.id().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    for w in workers {
        let out = w.wait_with_output().await.unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "worker exit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // No two runs of one mailbox overlapped.
    let overlaps = bed
        .count(
            "SELECT count(*) FROM sync_runs a JOIN sync_runs b
               ON a.mailbox_id = b.mailbox_id AND a.id < b.id
              AND tstzrange(a.started_at, coalesce(a.finished_at, 'infinity'))
                  && tstzrange(b.started_at, coalesce(b.finished_at, 'infinity'))",
        )
        .await;
    assert_eq!(overlaps, 0);
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status = 'failed'")
            .await,
        0
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status = 'running'")
            .await,
        0
    );
    bed.assert_verify_clean().await;
}

/// Holds the run lock of the bed's mailbox on its own connection, as a live
/// but hung process would, with a running row whose heartbeat is `age_secs` old.
async fn hung_holder(bed: &TestBed, age_secs: i64) -> (sqlx::PgConnection, i64) {
    use sqlx::Connection;
    let out = bed.run(&["mailbox", "add", &bed.mailbox]).await;
    assert_eq!(out.status.code(), Some(0));
    let mailbox_id: i64 = bed.count("SELECT id FROM mailboxes").await;
    let mut holder = sqlx::PgConnection::connect(&bed.db_url).await.unwrap();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(ingest::engine::RUN_LOCK_CLASS)
        .bind(mailbox_id as i32)
        .fetch_one(&mut holder)
        .await
        .unwrap();
    assert!(locked);
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO sync_runs (mailbox_id, kind, heartbeat_at, started_at)
         VALUES ($1, 'sync', now() - make_interval(secs => $2), now() - make_interval(secs => $2))
         RETURNING id",
    )
    .bind(mailbox_id)
    .bind(age_secs as f64)
    .fetch_one(bed.pg())
    .await
    .unwrap();
    (holder, run_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_holds_the_mailbox_exit_75() {
    let bed = TestBed::new(small_mailbox(5)).await;
    let (_holder, run_id) = hung_holder(&bed, 5).await;
    let out = bed.run(&["backfill", "--mailbox", &bed.mailbox]).await;
    assert_eq!(out.status.code(), Some(75));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("run {run_id}")),
        "names the live run: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert_eq!(bed.count("SELECT count(*) FROM mail_messages").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_run_past_its_lease_is_taken_over() {
    let bed = TestBed::new(small_mailbox(5)).await;
    let (mut holder, run_id) = hung_holder(&bed, 600).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let status: String = sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(bed.pg())
        .await
        .unwrap();
    assert_eq!(status, "interrupted");
    // The hung session was terminated: its connection is gone.
    assert!(sqlx::query("SELECT 1").execute(&mut holder).await.is_err());
    bed.assert_verify_clean().await;
}

/// A worker serves its own org only (`--org`), and works on the mailbox row it
/// claimed: before, it claimed every org's due mailboxes and then registered a
/// second row under its own org, writing blobs under the wrong prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_its_own_org_only() {
    let bed = TestBed::new(EmulatorConfig {
        seed: 13,
        messages: 6,
        days: 6,
        mailboxes: vec!["ours@example.com".into(), "theirs@example.com".into()],
        ..EmulatorConfig::default()
    })
    .await;
    for (org, mailbox) in [
        ("org-a", "ours@example.com"),
        ("org-b", "theirs@example.com"),
    ] {
        let out = bed.run(&["--org", org, "mailbox", "add", mailbox]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = bed
        .command()
        .args([
            "--org",
            "org-a",
            "worker",
            "--poll",
            "1s",
            "--max-rounds",
            "1",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        bed.count("SELECT count(*) FROM mailboxes").await,
        2,
        "no second row"
    );
    let runs: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.org_id, m.provider_email, r.status FROM sync_runs r JOIN mailboxes m ON m.id = r.mailbox_id",
    )
    .fetch_all(bed.pg())
    .await
    .unwrap();
    assert_eq!(
        runs,
        vec![(
            "org-a".into(),
            "ours@example.com".into(),
            "completed".into()
        )]
    );
    assert!(bed.store_path().join("org-a").exists());
    assert!(
        !bed.store_path().join("org-b").exists(),
        "blobs under another org's prefix"
    );
}
