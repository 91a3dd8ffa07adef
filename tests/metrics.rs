//! `worker --metrics-addr`: the Prometheus text at /metrics parses, carries
//! what the worker did (runs, messages, quota units, commit latency, cursor
//! age per mailbox), and /healthz turns 503 when the database cannot be reached.

mod common;

use std::time::Duration;

use common::http::{free_port, get};
use common::{TestBed, admin_url, small_mailbox};
use prometheus_parse::{Scrape, Value};
use sqlx::postgres::PgPoolOptions;

fn value(scrape: &Scrape, metric: &str, label: (&str, &str)) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && s.labels.get(label.0) == Some(label.1))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(_) | Value::Summary(_) => f64::NAN,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_health_follows_the_database() {
    let bed = TestBed::new(small_mailbox(8)).await;
    let out = bed.run(&["mailbox", "add", &bed.mailbox]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let port = free_port();
    let mut worker = bed
        .command()
        .args([
            "worker",
            "--interval",
            "1h",
            "--poll",
            "1s",
            "--verify-every",
            "off",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .spawn()
        .expect("worker");
    bed.wait_for_count(
        "SELECT count(*) FROM sync_runs WHERE status = 'completed'",
        1,
        Duration::from_secs(60),
    )
    .await;
    let stored = bed.count("SELECT count(*) FROM mail_messages").await;

    // The worker counts a run once its run's row says completed, a moment
    // after: scrape until it has (a scrape right after the row changed
    // sometimes came first).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (scrape, body) = loop {
        let (status, body) = get(port, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        let scrape =
            Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("prometheus text");
        let runs = value(&scrape, "mailingest_runs_total", ("outcome", "completed"));
        if runs.is_some() || std::time::Instant::now() > deadline {
            break (scrape, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        value(&scrape, "mailingest_runs_total", ("outcome", "completed")),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(
            &scrape,
            "mailingest_messages_total",
            ("outcome", "inserted")
        ),
        Some(stored as f64),
        "{body}"
    );
    assert!(
        value(
            &scrape,
            "mailingest_gmail_quota_units",
            ("method", "messages.get")
        )
        .is_some_and(|u| u >= 5.0 * stored as f64),
        "{body}"
    );
    assert!(
        value(
            &scrape,
            "mailingest_cursor_age_seconds",
            ("mailbox", &bed.mailbox)
        )
        .is_some(),
        "{body}"
    );
    assert_eq!(
        value(&scrape, "mailingest_degraded", ("mailbox", &bed.mailbox)),
        Some(0.0),
        "{body}"
    );
    // Today's units: the mailbox's from its finished run, the project's as
    // reserved in chunks before spending (so never less).
    let run_units = bed
        .count("SELECT coalesce(sum((counts->>'quota_units')::bigint), 0)::bigint FROM sync_runs")
        .await;
    assert!(run_units > 0);
    assert_eq!(
        value(
            &scrape,
            "mailingest_quota_units_today",
            ("mailbox", &bed.mailbox)
        ),
        Some(run_units as f64),
        "{body}"
    );
    let project: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("mailingest_project_quota_units_today "))
        .and_then(|v| v.trim().parse().ok())
        .expect("project units today");
    assert!(
        project >= run_units as f64,
        "{project} < {run_units}\n{body}"
    );
    let commits: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("mailingest_batch_commit_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .expect("commit latency histogram");
    assert!(commits >= 1.0, "{body}");
    let (status, body) = get(port, "/healthz").await;
    assert_eq!(status, 200, "{body}");

    // The database goes away: no new connections, existing ones cut.
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url())
        .await
        .expect("admin");
    let db = bed.db_name.clone();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {db} ALLOW_CONNECTIONS false"
    )))
    .execute(&admin)
    .await
    .expect("close the database");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db)
        .execute(&admin)
        .await
        .expect("cut connections");
    let mut unhealthy = None;
    for _ in 0..40 {
        let (status, body) = get(port, "/healthz").await;
        if status == 503 {
            unhealthy = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let body = unhealthy.expect("/healthz turns 503 without the database");
    assert!(body.starts_with("database:"), "{body}");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {db} ALLOW_CONNECTIONS true"
    )))
    .execute(&admin)
    .await
    .expect("reopen the database");

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().expect("pid").to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(30), worker.wait()).await;
}
