//! The run lease is fenced: a run whose lock connection drops (a failover, a
//! network cut, a takeover) while it keeps working commits nothing once
//! another run has taken the mailbox, stops with exit 75 and one line, and the
//! ledger stays consistent. Through the binary, on real PostgreSQL and the
//! emulator over HTTP.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestBed;
use gmail_emulator::{EmulatorConfig, Faults};

/// Latency on every Gmail call, so the first run is still working when the second starts.
fn slow() -> Faults {
    Faults {
        latency_ms: 80,
        latency_jitter_ms: 40,
        ..Faults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lock_dropped_is_fenced_out_once_taken_over() {
    let bed = TestBed::new(EmulatorConfig {
        seed: 21,
        messages: 600,
        days: 6,
        mailboxes: vec!["fence@example.com".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let (messages, _) = bed.expected_ids().await;
    bed.emulator.set_faults(slow());

    let first = bed
        .command()
        .args(["backfill", "--mailbox", bed.mailbox.as_str(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the first run");
    bed.wait_for_count(
        "SELECT count(*) FROM mail_messages",
        1,
        Duration::from_secs(60),
    )
    .await;
    let first_run: i64 = bed.count("SELECT max(id) FROM sync_runs").await;

    // Its lock connection drops; the process goes on working through its pool.
    let dropped: i64 = bed
        .count(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND objsubid = 2
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND classid = ({}::bigint & 4294967295)::oid",
            ingest::engine::RUN_LOCK_CLASS
        ))
        .await;
    assert_eq!(dropped, 1, "exactly the first run's lock connection");

    // A second run finds the lock free, takes the mailbox and completes.
    let (code, second) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{second}");
    let second_run = second["run_id"].as_i64().expect("run id");
    assert_ne!(second_run, first_run);

    let out = first.wait_with_output().await.expect("first run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "stderr: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(&format!("run {first_run} lost mailbox")),
        "one clear line: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The first run ended once, as interrupted by the second, and wrote
    // nothing after the second started.
    let status: String = sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = $1")
        .bind(first_run)
        .fetch_one(bed.pg())
        .await
        .unwrap();
    assert_eq!(status, "interrupted");
    let terminal = bed
        .count(&format!(
            "SELECT count(*) FROM ledger_events WHERE run_id = {first_run}
               AND event_type IN ('sync.completed', 'sync.failed', 'sync.interrupted')"
        ))
        .await;
    assert_eq!(terminal, 1);
    let late = bed
        .count(&format!(
            "SELECT count(*) FROM ledger_events WHERE run_id = {first_run} AND seq > (
                 SELECT seq FROM ledger_events WHERE run_id = {second_run} AND event_type = 'sync.started')"
        ))
        .await;
    assert_eq!(late, 0, "the fenced-out run committed after the takeover");

    // Nothing lost, nothing doubled, and verify agrees.
    let stored = bed.count("SELECT count(*) FROM mail_messages").await;
    assert_eq!(stored as usize, messages.len());
    bed.emulator.set_faults(Faults::default());
    bed.assert_verify_clean().await;
}
