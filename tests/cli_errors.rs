//! Bad input through the real `mailingest` binary: an unknown mailbox, an
//! unreachable database or Gmail endpoint, an inverted window, unreadable
//! credentials. Each ends with the documented exit code and one clear line
//! on stderr: no panic, no backtrace, never a password.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{TestBed, small_mailbox};

const PASSWORD: &str = "Sup3r-s3cret-pw";

fn unreachable_db() -> String {
    format!("postgres://mailingest:{PASSWORD}@127.0.0.1:1/mail")
}

/// The exit code and the one stderr line; fails on panics, leaked
/// passwords and multi-line noise.
fn one_line_error(out: &Output) -> (Option<i32>, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains(PASSWORD) && !stdout.contains(PASSWORD),
        "password leaked: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got:\n{stderr}");
    (out.status.code(), lines[0].to_owned())
}

async fn timed(bed: &TestBed, env: &[(&str, &str)], args: &[&str]) -> (Output, Duration) {
    let mut cmd = bed.command();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.args(args).output())
        .await
        .expect("mailingest hung")
        .expect("run mailingest");
    (out, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_mailbox_fails_with_one_line() {
    let bed = TestBed::new(small_mailbox(5)).await;
    let (out, _) = timed(&bed, &[], &["backfill", "--mailbox", "nobody@example.com"]).await;
    let (code, line) = one_line_error(&out);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("error:"), "{line}");
    assert!(
        line.contains("nobody@example.com"),
        "names the mailbox: {line}"
    );
    // Nothing was recorded as a run for it.
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status = 'completed'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_names_host_and_port_and_hides_the_password() {
    let bed = TestBed::new(small_mailbox(1)).await;
    let url = unreachable_db();
    for args in [
        vec!["backfill", "--mailbox", bed.mailbox.as_str()],
        vec!["migrate"],
        vec!["verify"],
    ] {
        let (out, took) = timed(&bed, &[("DATABASE_URL", url.as_str())], &args).await;
        let (code, line) = one_line_error(&out);
        assert_eq!(code, Some(1), "{args:?}: {line}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
        assert!(
            line.contains("127.0.0.1:1"),
            "{args:?} names host and port: {line}"
        );
    }
    // The password also stays out of --database-url's error path.
    let (out, _) = timed(&bed, &[], &["--database-url", &url, "migrate"]).await;
    let (code, _) = one_line_error(&out);
    assert_eq!(code, Some(1));
}

/// The single `error:` line, tolerating log records before it. The Gmail
/// client logs a WARN when it gives up, so an unreachable endpoint prints
/// that record and then the error (see the report to the lead).
fn final_error_line(out: &Output) -> (Option<i32>, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(!stderr.contains(PASSWORD), "password leaked: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line, got:\n{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some(errors[0]),
        "the error is the last line:\n{stderr}"
    );
    (out.status.code(), errors[0].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_gmail_endpoint_fails_with_one_error_line() {
    let bed = TestBed::new(small_mailbox(1)).await;
    let (out, took) = timed(
        &bed,
        &[("GMAIL_ENDPOINT", "http://127.0.0.1:1/")],
        &["backfill", "--mailbox", bed.mailbox.as_str()],
    )
    .await;
    let (code, line) = final_error_line(&out);
    assert_eq!(code, Some(1), "{line}");
    // Connection refused on a first contact is a wrong or dead endpoint: said
    // within seconds, not after the whole retry budget.
    assert!(took < Duration::from_secs(10), "took {took:?}: {line}");
    assert!(
        line.contains("users.getProfile"),
        "names the failing call: {line}"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs").await,
        0,
        "no run recorded: the profile is read before the run starts"
    );
}

/// An org is one segment of the store prefix: `a/sha256/aa` would write into
/// org `a`'s key space, so it is refused before anything is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_that_is_not_one_path_segment_is_a_usage_error() {
    let bed = TestBed::new(small_mailbox(1)).await;
    for org in ["a/sha256/aa", "..", ""] {
        let (out, _) = timed(&bed, &[("MAILINGEST_ORG", org)], &["status"]).await;
        let (code, line) = one_line_error(&out);
        assert_eq!(code, Some(2), "{org:?}: {line}");
        assert!(line.contains("org id"), "{line}");
    }
    let (out, _) = timed(&bed, &[], &["--org", "x/y", "verify"]).await;
    let (code, line) = one_line_error(&out);
    assert_eq!(code, Some(2), "{line}");
    // Refused before the database was opened: not even migrated.
    assert_eq!(
        bed.count("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_ending_before_it_starts_is_a_usage_error() {
    let bed = TestBed::new(small_mailbox(1)).await;
    let (out, _) = timed(
        &bed,
        &[],
        &[
            "backfill",
            "--mailbox",
            bed.mailbox.as_str(),
            "--since",
            "2026-03-10",
            "--until",
            "2026-03-01",
        ],
    )
    .await;
    let (code, line) = one_line_error(&out);
    assert_eq!(code, Some(2), "{line}");
    assert!(line.contains("window"), "{line}");
    assert_eq!(
        bed.calls("users.threads.list"),
        0,
        "no Gmail call for a bad window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_credentials_fail_with_one_line() {
    let bed = TestBed::new(small_mailbox(1)).await;
    let (out, _) = timed(
        &bed,
        &[],
        &[
            "--auth",
            "service-account:/nonexistent/key.json",
            "backfill",
            "--mailbox",
            bed.mailbox.as_str(),
        ],
    )
    .await;
    let (code, line) = one_line_error(&out);
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.contains("/nonexistent/key.json"),
        "names the file: {line}"
    );
    assert_eq!(bed.calls("users.threads.list"), 0);
}

/// `--days` / `--fallback-days` take any u32, but 4294967295 days back is
/// outside the dates chrono can represent: a usage error, not an overflow panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_beyond_the_supported_dates_is_a_usage_error() {
    let bed = TestBed::new(small_mailbox(1)).await;
    let mailbox = bed.mailbox.as_str();
    for args in [
        ["backfill", "--mailbox", mailbox, "--days", "4294967295"],
        [
            "sync",
            "--mailbox",
            mailbox,
            "--fallback-days",
            "4294967295",
        ],
    ] {
        let (out, _) = timed(&bed, &[], &args).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stderr.contains("overflow") && !stderr.contains("RUST_BACKTRACE"),
            "{args:?}: {stderr}"
        );
        let (code, line) = one_line_error(&out);
        assert_eq!(code, Some(2), "{args:?}: {line}");
        assert!(
            line.starts_with("error: invalid window:"),
            "{args:?}: {line}"
        );
        assert!(line.contains("4294967295 days"), "{args:?}: {line}");
    }
    assert_eq!(
        bed.calls("users.threads.list") + bed.calls("users.history.list"),
        0,
        "no Gmail listing for a bad window"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs").await,
        0,
        "no run recorded for a bad window"
    );
}
