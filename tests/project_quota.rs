//! A fleet shares one Cloud project's quota through the database: three
//! worker processes serving twenty mailboxes under a project budget that the
//! emulator enforces across all mailboxes stay under it (no storm of
//! project-level 429s) and every mailbox progresses.

mod common;

use std::time::{Duration, Instant};

use common::TestBed;
use gmail_emulator::{EmulatorConfig, Quota};

const BUDGET: u32 = 300;

/// Without the project budget the same fleet draws about a fifth of its
/// requests as project-level 429s (measured: 91 of 415).
async fn fleet(bed: &TestBed) -> Vec<tokio::process::Child> {
    let mut workers = Vec::new();
    for _ in 0..3 {
        let mut cmd = bed.command();
        cmd.args([
            "worker",
            "--interval",
            "1h",
            "--poll",
            "1s",
            "--concurrency",
            "4",
        ])
        .env("MAILINGEST_QUOTA_UNITS_PER_SEC", "250")
        .env("MAILINGEST_PROJECT_QUOTA_UNITS_PER_SEC", BUDGET.to_string());
        workers.push(cmd.spawn().expect("spawn worker"));
    }
    workers
}

async fn stop(workers: Vec<tokio::process::Child>) {
    for w in &workers {
        if let Some(pid) = w.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(30), w.wait_with_output()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_stay_under_the_project_budget_and_every_mailbox_progresses() {
    let mailboxes: Vec<String> = (0..20).map(|i| format!("fleet{i}@example.com")).collect();
    let bed = TestBed::new(EmulatorConfig {
        seed: 16,
        messages: 15,
        days: 6,
        mailboxes: mailboxes.clone(),
        quota: Quota {
            project_per_second: Some(BUDGET),
            ..Quota::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    for m in &mailboxes {
        let out = bed.run(&["mailbox", "add", m]).await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let started = Instant::now();
    let workers = fleet(&bed).await;
    bed.wait_for_count(
        "SELECT count(DISTINCT mailbox_id) FROM sync_runs WHERE status = 'completed'",
        mailboxes.len() as i64,
        Duration::from_secs(120),
    )
    .await;
    let elapsed = started.elapsed();
    stop(workers).await;

    let stats = bed.emulator.stats();
    let requests: u64 = stats
        .mailboxes
        .values()
        .flat_map(|m| m.values())
        .map(|s| s.calls)
        .sum();
    let units: u64 = mailboxes.iter().map(|m| stats.quota_units(m)).sum();
    let refused = stats
        .faults_injected
        .get("projectQuota")
        .copied()
        .unwrap_or(0);
    eprintln!(
        "{} mailboxes in {:.1}s: {requests} requests, {units} units ({:.0} units/s), {refused} project 429s",
        mailboxes.len(),
        elapsed.as_secs_f64(),
        units as f64 / elapsed.as_secs_f64()
    );
    assert!(
        refused * 50 <= requests,
        "project-level 429s: {refused} of {requests} requests (more than 2%)"
    );
    bed.assert_verify_clean().await;
}
