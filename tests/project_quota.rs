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

/// The project's quota day: a backfill that would carry the day past
/// `--project-daily-units` stops before crossing it, at a batch boundary, with
/// what it committed kept (exit 75, status interrupted, one line naming the
/// day); a re-run the same day sends nothing; `status` shows the day's units;
/// with a larger budget the next run completes with no duplicates.
async fn the_daily_threshold_is_never_crossed(backend: common::Backend) {
    let bed = TestBed::on(backend, common::small_mailbox(60)).await;
    let (expected, _) = bed.expected_ids().await;
    let table = gmail::QuotaTable::default();
    let get = u64::from(table.cost(gmail::Method::MessagesGet));
    // Room for about half the mailbox.
    let daily = get * expected.len() as u64 / 2;
    let daily_arg = daily.to_string();

    let out = bed
        .command()
        .args(["--project-daily-units", &daily_arg])
        .args(["backfill", "--mailbox", &bed.mailbox, "--json"])
        .output()
        .await
        .expect("backfill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(out.status.code(), Some(75), "{summary}\n{stderr}");
    assert_eq!(summary["status"], "interrupted", "{summary}");
    assert!(
        summary["quota_day_resets_in_secs"]
            .as_u64()
            .is_some_and(|s| s <= 25 * 3600),
        "{summary}"
    );
    // One line says why, naming the day's units and when it resets.
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "project's {daily} quota units for today are spent"
        )) && error.contains("midnight Pacific")
            && !error.contains('\n'),
        "{summary}"
    );
    // Never past the day's units at Gmail, and what was fetched in time is kept.
    let charged = bed.emulator.stats().quota_units(&bed.mailbox);
    assert!(charged <= daily, "{charged} units charged, {daily} allowed");
    let stored = bed.count("SELECT count(*) FROM mail_messages").await;
    let inserted = summary["messages"]["inserted"].as_i64().unwrap_or(-1);
    assert_eq!(stored, inserted, "{summary}");
    assert!(
        stored > 0 && stored < expected.len() as i64,
        "{stored} stored"
    );

    // The same day again: nothing is sent.
    bed.emulator.reset_stats();
    let out = bed
        .command()
        .args(["--project-daily-units", &daily_arg])
        .args(["backfill", "--mailbox", &bed.mailbox, "--json"])
        .output()
        .await
        .expect("backfill");
    assert_eq!(out.status.code(), Some(75));
    let gets = bed
        .emulator
        .stats()
        .calls(&bed.mailbox, "users.messages.get");
    assert_eq!(gets, 0);

    let status = bed
        .command()
        .args(["--project-daily-units", &daily_arg, "status"])
        .output()
        .await
        .expect("status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("project quota today: ") && text.contains(&format!(" of {daily} units")),
        "{text}"
    );

    // A day's budget that fits: the next run completes, each message once.
    let (code, done) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{done}");
    let stored = bed.count("SELECT count(*) FROM mail_messages").await;
    assert_eq!(stored, expected.len() as i64);
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_threshold_is_never_crossed_postgres() {
    the_daily_threshold_is_never_crossed(common::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_threshold_is_never_crossed_sqlite() {
    the_daily_threshold_is_never_crossed(common::Backend::Sqlite).await;
}
