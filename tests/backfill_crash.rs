//! Crash and interrupt safety of `mailingest backfill`, end to end: the real
//! binary is killed (-9) at several points of a slowed-down run, or sent
//! SIGTERM; the next run completes with no duplicate and nothing lost, and
//! after SIGTERM fetches only what is missing.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestBed, small_mailbox};
use gmail_emulator::Faults;
use serde_json::Value;

/// Non-spam, non-trash message ids and their threads (what a backfill stores).
async fn expected(bed: &TestBed) -> (BTreeSet<String>, BTreeSet<String>) {
    bed.expected_ids().await
}

/// Latency on every Gmail call, so a run takes a few seconds.
fn slow() -> Faults {
    Faults {
        latency_ms: 60,
        latency_jitter_ms: 40,
        ..Faults::default()
    }
}

fn spawn_backfill(bed: &TestBed) -> tokio::process::Child {
    bed.command()
        .args(["backfill", "--mailbox", bed.mailbox.as_str(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backfill")
}

async fn wait_for_rows(bed: &TestBed, at_least: i64, deadline: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        // The schema may not exist yet: the binary migrates on start.
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_messages")
            .fetch_one(bed.pg())
            .await
            .unwrap_or(0);
        if rows >= at_least {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn assert_complete(bed: &TestBed, messages: &BTreeSet<String>, threads: &BTreeSet<String>) {
    let stored: Vec<String> = sqlx::query_scalar("SELECT provider_message_id FROM mail_messages")
        .fetch_all(bed.pg())
        .await
        .unwrap();
    assert_eq!(stored.len(), messages.len(), "no duplicate, nothing lost");
    assert_eq!(&stored.into_iter().collect::<BTreeSet<_>>(), messages);
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_threads").await,
        threads.len() as i64
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_threads WHERE history_id IS NULL")
            .await,
        0,
        "every thread recorded as current"
    );
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_several_points_then_rerun_completes() {
    let bed = TestBed::new(small_mailbox(240)).await;
    let (messages, threads) = expected(&bed).await;
    bed.emulator.set_faults(slow());

    // Kill points: before anything can be committed, early, right after a
    // batch is visible, and once half the mailbox is stored. The later points
    // follow progress, not the clock, so a faster build still dies mid-run.
    enum Point {
        After(u64),
        NextBatch,
        Stored(usize),
    }
    let points = [
        Point::After(150),
        Point::After(700),
        Point::NextBatch,
        Point::Stored(messages.len() / 2),
    ];
    let mut killed_mid_run = 0;
    for point in &points {
        let mut child = spawn_backfill(&bed);
        match point {
            Point::After(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Point::NextBatch => {
                let current: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_messages")
                    .fetch_one(bed.pg())
                    .await
                    .unwrap_or(0);
                assert!(
                    wait_for_rows(&bed, current + 1, Duration::from_secs(30)).await,
                    "no batch committed within 30 s"
                );
            }
            Point::Stored(n) => assert!(
                wait_for_rows(&bed, *n as i64, Duration::from_secs(30)).await,
                "{n} messages not stored within 30 s"
            ),
        }
        let finished_already = child.try_wait().expect("try_wait").is_some();
        child.start_kill().expect("kill -9");
        let status = child.wait().await.expect("wait");
        if !finished_already {
            killed_mid_run += 1;
            assert_eq!(status.code(), None, "killed by a signal");
        }
    }
    assert!(killed_mid_run >= 3, "the kills hit running processes");
    let partial = bed.count("SELECT count(*) FROM mail_messages").await;
    assert!(
        (partial as usize) < messages.len(),
        "the killed runs must not have finished the job ({partial} stored)"
    );
    assert_eq!(
        bed.count(
            "SELECT count(*) FROM (SELECT provider_message_id FROM mail_messages \
             GROUP BY 1 HAVING count(*) > 1) d"
        )
        .await,
        0,
        "no duplicate after the kills"
    );

    bed.emulator.set_faults(Faults::default());
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "re-run after kill -9: {run}");
    assert_eq!(run["status"], "completed");
    // A killed process's last COMMIT may still land after it died (the
    // server reads what was already sent), so count what the earlier runs
    // committed from the ledger, which shares their transactions.
    let run_id = run["run_id"].as_i64().expect("run id");
    let earlier = bed
        .count(&format!(
            "SELECT count(*) FROM ledger_events WHERE event_type = 'message.ingested' \
             AND run_id <> {run_id}"
        ))
        .await;
    assert!(earlier >= partial, "ledger {earlier} vs rows {partial}");
    assert_eq!(
        run["messages"]["inserted"].as_i64(),
        Some(messages.len() as i64 - earlier),
        "the re-run inserts exactly what is missing: {run}"
    );
    // Every killed run is recorded interrupted, never left running.
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status = 'running'")
            .await,
        0
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status <> 'interrupted'")
            .await,
        1,
        "only the last run completed; every killed run that started is interrupted"
    );
    assert!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status = 'interrupted'")
            .await
            >= 2,
        "the kills hit started runs"
    );
    assert_complete(&bed, &messages, &threads).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_marks_the_run_interrupted_and_the_next_run_fetches_only_the_rest() {
    let bed = TestBed::new(small_mailbox(120)).await;
    let (messages, threads) = expected(&bed).await;
    bed.emulator.set_faults(slow());

    let child = spawn_backfill(&bed);
    let pid = child.id().expect("pid");
    assert!(
        wait_for_rows(&bed, 1, Duration::from_secs(30)).await,
        "no batch committed within 30 s"
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill -TERM");
    assert!(kill.success());
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("stops within 60 s of SIGTERM")
        .expect("wait");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "summary after SIGTERM ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(130), "{summary}");
    assert_eq!(summary["status"], "interrupted");
    let run_id = summary["run_id"].as_i64().expect("run id");
    let status: String = sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(bed.pg())
        .await
        .unwrap();
    assert_eq!(status, "interrupted");
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM ledger_events WHERE run_id = {run_id} \
             AND event_type = 'sync.interrupted'"
        ))
        .await,
        1,
        "one terminal event"
    );
    // The cursor is only set by a completed run.
    assert_eq!(
        bed.count("SELECT count(*) FROM mailboxes WHERE history_id IS NOT NULL")
            .await,
        0
    );

    let stored = bed.count("SELECT count(*) FROM mail_messages").await;
    // Threads with a row but not known current: on Gmail's 2026 table (the
    // bed's), where threads.get costs 40 units, the re-run learns what is
    // new in them from messages.list, like threads without a row, and their
    // labels by listing each label (the interrupted run set no cursor),
    // from the labels.list the run made when it started.
    assert!(
        (stored as usize) < messages.len(),
        "interrupted before the end ({stored} of {})",
        messages.len()
    );
    // What the interrupted run reported is what it committed.
    assert_eq!(summary["messages"]["inserted"].as_i64(), Some(stored));

    bed.emulator.set_faults(Faults::default());
    bed.emulator.reset_stats();
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let missing = messages.len() as i64 - stored;
    assert_eq!(run["messages"]["inserted"].as_i64(), Some(missing), "{run}");
    assert_eq!(
        bed.calls("users.messages.get") as i64,
        missing,
        "fetches only the missing messages"
    );
    assert_eq!(bed.quota_table, gmail::QuotaTable::Y2026);
    assert_eq!(bed.calls("users.threads.get"), 0, "no thread calls");
    assert_eq!(
        bed.calls("users.labels.list"),
        1,
        "labels listed once, when the run starts; the unfinished threads that have a row reuse the list"
    );
    assert_complete(&bed, &messages, &threads).await;
}
