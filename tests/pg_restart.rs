//! A PostgreSQL restart mid-run is ridden out: connection-class errors are
//! retried with backoff for a bounded time, the batch transaction is replayed
//! (it is idempotent) after the lease is proved again, and the run completes
//! with nothing lost and nothing doubled. Through the binary, restarting the
//! local cluster the test bed runs on (scripts/lib/postgres.sh).
//!
//! Its own test binary: the restart drops every connection to the server, so
//! nothing else may run beside it.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestBed;
use gmail_emulator::{EmulatorConfig, Faults};

/// Restarts the local cluster (fast mode: every connection is terminated).
fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("the test bed's local PostgreSQL cluster (/etc/postgresql)")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
        .expect("a cluster version");
    let status = std::process::Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            "-m",
            "fast",
            &version,
            "main",
            "restart",
        ])
        .status()
        .expect("pg_ctlcluster");
    assert!(
        status.success(),
        "restarting PostgreSQL {version}/main failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_backfill_is_ridden_out() {
    let bed = TestBed::new(EmulatorConfig {
        seed: 31,
        messages: 400,
        days: 6,
        mailboxes: vec!["restart@example.com".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let (messages, _) = bed.expected_ids().await;
    bed.emulator.set_faults(Faults {
        latency_ms: 60,
        latency_jitter_ms: 30,
        ..Faults::default()
    });
    let run = bed
        .command()
        .args(["backfill", "--mailbox", bed.mailbox.as_str(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backfill");
    bed.wait_for_count(
        "SELECT count(*) FROM mail_messages",
        1,
        Duration::from_secs(60),
    )
    .await;
    restart_postgres();

    let out = run.wait_with_output().await.expect("backfill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("summary");
    assert_eq!(summary["status"], "completed");

    let stored = bed.count("SELECT count(*) FROM mail_messages").await;
    assert_eq!(
        stored as usize,
        messages.len(),
        "nothing lost, nothing doubled"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status <> 'completed'")
            .await,
        0
    );
    bed.emulator.set_faults(Faults::default());
    bed.assert_verify_clean().await;
}
