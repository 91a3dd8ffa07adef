//! The S3 store going away, through the binary against the S3 test server
//! (moto, reached through a loopback TCP proxy the test takes down):
//! - an outage shorter than the budget (20 s against the default 60 s) mid-run
//!   is ridden out: the run completes, nothing lost, nothing doubled;
//! - a longer one fails the run with one line naming the store, and a re-run
//!   completes with nothing half-written;
//! - a store that cannot work at all (endpoint refusing connections, no
//!   credentials) is reported by the preflight before any run starts: one
//!   line, no SDK dump, no run row.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::TestBed;
use common::tcp_proxy::TcpProxy;
use gmail_emulator::{EmulatorConfig, Faults};

struct S3 {
    endpoint: SocketAddr,
    bucket: String,
}

fn s3() -> S3 {
    let (Ok(endpoint), Ok(bucket)) = (
        std::env::var("AWS_ENDPOINT_URL"),
        std::env::var("MAILINGEST_TEST_S3_BUCKET"),
    ) else {
        panic!(
            "needs AWS_ENDPOINT_URL and MAILINGEST_TEST_S3_BUCKET: run through scripts/test.sh \
             (or `source scripts/s3-server.sh; s3_server_start`)"
        );
    };
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    S3 {
        endpoint: hostport
            .parse()
            .expect("AWS_ENDPOINT_URL is http://127.0.0.1:PORT"),
        bucket,
    }
}

/// A bed whose backfill takes a few seconds (slow Gmail), so an outage can
/// start while it still has messages to store.
async fn slow_bed(seed: u64, mailbox: &str) -> TestBed {
    let bed = TestBed::new(EmulatorConfig {
        seed,
        messages: 240,
        days: 6,
        mailboxes: vec![mailbox.into()],
        ..EmulatorConfig::default()
    })
    .await;
    bed.emulator.set_faults(Faults {
        latency_ms: 80,
        latency_jitter_ms: 20,
        ..Faults::default()
    });
    bed
}

fn store_url(s3: &S3, bed: &TestBed) -> String {
    format!("s3://{}/outage-{}", s3.bucket, bed.db_name)
}

fn backfill(
    bed: &TestBed,
    store: &str,
    proxy: &TcpProxy,
    extra: &[&str],
) -> tokio::process::Command {
    let mut cmd = bed.command();
    cmd.env("MAILINGEST_STORE", store)
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(["backfill", "--mailbox", bed.mailbox.as_str(), "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn verify_deep(bed: &TestBed, store: &str, proxy: &TcpProxy) {
    let out = bed
        .command()
        .env("MAILINGEST_STORE", store)
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(["verify", "--deep"])
        .output()
        .await
        .expect("verify");
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify --deep:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn assert_all_stored_once(bed: &TestBed) {
    let (messages, _) = bed.expected_ids().await;
    let stored = bed.count("SELECT count(*) FROM mail_messages").await;
    let distinct = bed
        .count("SELECT count(DISTINCT provider_message_id) FROM mail_messages")
        .await;
    assert_eq!(stored, messages.len() as i64, "every message stored");
    assert_eq!(stored, distinct, "no message stored twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_of_20_seconds_mid_backfill_is_ridden_out() {
    let s3 = s3();
    let bed = slow_bed(71, "s3-outage@example.com").await;
    let store = store_url(&s3, &bed);
    let mut proxy = TcpProxy::start(s3.endpoint).await;
    let run = backfill(&bed, &store, &proxy, &[])
        .spawn()
        .expect("spawn backfill");
    bed.wait_for_count(
        "SELECT count(*) FROM mail_messages",
        1,
        Duration::from_secs(60),
    )
    .await;
    proxy.down();
    let during = bed.count("SELECT count(*) FROM mail_messages").await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    proxy.up().await;

    let out = run.wait_with_output().await.expect("backfill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The outage really hit the run: it was still storing when the store went
    // away, and said it was waiting for it.
    assert!(
        during < 240,
        "the backfill had finished before the outage ({during} stored)"
    );
    assert!(
        stderr.contains("store unavailable; retrying"),
        "no ride-out logged: {stderr}"
    );
    assert_all_stored_once(&bed).await;
    verify_deep(&bed, &store, &proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_s3_outage_fails_the_run_with_one_line_and_a_rerun_completes() {
    let s3 = s3();
    let bed = slow_bed(72, "s3-down@example.com").await;
    let store = store_url(&s3, &bed);
    let mut proxy = TcpProxy::start(s3.endpoint).await;
    let run = backfill(&bed, &store, &proxy, &["--outage-budget", "3s"])
        .spawn()
        .expect("spawn backfill");
    bed.wait_for_count(
        "SELECT count(*) FROM mail_messages",
        1,
        Duration::from_secs(60),
    )
    .await;
    proxy.down();
    let out = run.wait_with_output().await.expect("backfill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    // The failed run's summary carries the one line that says why.
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let line = summary["error"].as_str().unwrap_or_default();
    assert_eq!(line.lines().count(), 1, "one line: {summary}");
    assert!(
        line.contains(&store) && line.contains("riding out"),
        "the line names the store and the outage: {line}"
    );
    // The log says it waited, in lines without SDK internals.
    assert!(stderr.contains("store unavailable; retrying"), "{stderr}");
    assert!(
        !stderr.contains("DispatchFailure {"),
        "SDK Debug in the log: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status = 'failed'")
            .await,
        1
    );

    proxy.up().await;
    let again = backfill(&bed, &store, &proxy, &[])
        .output()
        .await
        .expect("re-run");
    assert_eq!(
        again.status.code(),
        Some(0),
        "re-run: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_all_stored_once(&bed).await;
    verify_deep(&bed, &store, &proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_one_line_before_any_run_starts() {
    let s3 = s3();
    let bed = TestBed::new(common::small_mailbox(5)).await;
    let store = store_url(&s3, &bed);
    let mut proxy = TcpProxy::start(s3.endpoint).await;
    proxy.down();
    let out = backfill(&bed, &store, &proxy, &[])
        .output()
        .await
        .expect("backfill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&store) && stderr.contains("cannot reach the S3 endpoint"),
        "{stderr}"
    );
    assert_eq!(bed.count("SELECT count(*) FROM sync_runs").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_aws_credentials_is_one_line_before_any_run_starts() {
    let s3 = s3();
    let bed = TestBed::new(common::small_mailbox(5)).await;
    let store = store_url(&s3, &bed);
    let home = tempfile::tempdir().expect("home");
    let out = bed
        .command()
        .env("MAILINGEST_STORE", &store)
        .env("AWS_ENDPOINT_URL", format!("http://{}", s3.endpoint))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        // What a user sees: the default log filter, not the test bed's.
        .env_remove("RUST_LOG")
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env("HOME", home.path())
        .args(["backfill", "--mailbox", bed.mailbox.as_str()])
        .output()
        .await
        .expect("backfill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&store) && stderr.contains("no AWS credentials found"),
        "{stderr}"
    );
    assert!(
        stderr.len() < 600,
        "no SDK dump: {} bytes: {stderr}",
        stderr.len()
    );
    assert_eq!(bed.count("SELECT count(*) FROM sync_runs").await, 0);
}
