//! `mailingest changes`: the change feed end to end, on both backends, through
//! the binary, into a real HTTP receiver in this process (axum on loopback)
//! that checks every signature and deduplicates by each event's idempotency
//! key, as the README's receiver does.
//!
//! Every event of a backfill and of syncs with label changes and deletes
//! arrives exactly once after deduplication, in seq order per mailbox without
//! a gap, through a consumer restart, a receiver answering 503 for 10 s and a
//! `kill -9` of the consumer mid-batch; another org's events never arrive; a
//! second process of one consumer is refused while the first lives and takes
//! over the moment it dies; bad input is exit 2, a refusing receiver exit 1
//! naming the event, an unreachable one exit 1 naming the host, and the
//! secret and the URL's password never reach the output.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::{Backend, TestBed, small_mailbox};
use gmail_emulator::EmulatorConfig;
use serde_json::Value;

const SECRET: &str = "feed-test-secret-9f3c";
const ORG: &str = "default";

on_both_backends!(
    every_event_arrives_once_through_restart_outage_and_kill_9,
    one_consumer_runs_in_one_process_and_follow_delivers_new_commits,
    bad_input_refusals_and_an_unreachable_receiver,
    stdout_lines_and_positions,
    an_orgs_mailboxes_merge_by_commit_time_each_in_seq_order,
    events_name_labels_as_the_labels_table_does,
);

/// What the receiver has seen.
#[derive(Default)]
struct Seen {
    /// Every event of every accepted POST, in arrival order (duplicates too).
    arrivals: Vec<Value>,
    /// key → the event, first copy.
    unique: BTreeMap<String, Value>,
    /// The Idempotency-Key header of each accepted POST.
    batch_keys: Vec<String>,
    posts: usize,
    refused: usize,
    bad_signatures: usize,
    /// Answer 503 (with Retry-After: 1) until then.
    fail_until: Option<Instant>,
    /// Answer this status to everything (a receiver refusing the feed).
    always: Option<u16>,
    /// Record, then wait this long before answering (a slow receiver: a
    /// consumer killed meanwhile never acknowledges what was recorded).
    delay: Duration,
}

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.seen.lock().unwrap())
    }

    fn keys(&self) -> BTreeSet<String> {
        self.with(|s| s.unique.keys().cloned().collect())
    }
}

fn sign(body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
    format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, body)))
}

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = {
        let mut s = seen.lock().unwrap();
        s.posts += 1;
        let signature = headers
            .get("x-mailingest-signature")
            .and_then(|v| v.to_str().ok());
        if signature != Some(sign(&body).as_str()) {
            s.bad_signatures += 1;
            return StatusCode::UNAUTHORIZED.into_response();
        }
        if let Some(status) = s.always {
            s.refused += 1;
            return StatusCode::from_u16(status).unwrap().into_response();
        }
        if s.fail_until.is_some_and(|t| Instant::now() < t) {
            s.refused += 1;
            return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")]).into_response();
        }
        let batch: Value = serde_json::from_slice(&body).expect("a JSON body");
        assert_eq!(batch["schema"], 1);
        let events = batch["events"].as_array().expect("events").clone();
        let header = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .expect("Idempotency-Key")
            .to_owned();
        let first = events[0]["idempotency_key"].as_str().unwrap().to_owned();
        let last = events[events.len() - 1]["idempotency_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let expected = if events.len() == 1 {
            first
        } else {
            format!("{first}..{last}")
        };
        assert_eq!(
            header, expected,
            "the header names the batch's first and last"
        );
        s.batch_keys.push(header);
        for e in events {
            let key = e["idempotency_key"].as_str().unwrap().to_owned();
            s.unique.entry(key).or_insert_with(|| e.clone());
            s.arrivals.push(e);
        }
        s.delay
    };
    tokio::time::sleep(delay).await;
    StatusCode::OK.into_response()
}

fn two_orgs() -> EmulatorConfig {
    EmulatorConfig {
        mailboxes: vec!["ann@example.com".into(), "bob@example.com".into()],
        ..small_mailbox(30)
    }
}

/// The keys of every ledger event of `org`'s `email`.
async fn ledger_keys(bed: &TestBed, org: &str, email: &str) -> BTreeSet<String> {
    bed.strings(&format!(
        "SELECT CAST(e.seq AS TEXT) FROM ledger_events e JOIN mailboxes m ON m.id = e.mailbox_id
         WHERE m.org_id = '{org}' AND m.provider_email = '{email}'"
    ))
    .await
    .into_iter()
    .map(|seq| format!("{org}/{email}/{seq}"))
    .collect()
}

/// Each mailbox's events arrive in seq order, never past a gap: an event is
/// a re-delivery (at or below what came before) or exactly the next one.
fn assert_no_gap(arrivals: &[Value]) {
    let mut high: BTreeMap<String, i64> = BTreeMap::new();
    for e in arrivals {
        let mailbox = e["mailbox"].as_str().unwrap().to_owned();
        let seq = e["seq"].as_i64().unwrap();
        let top = high.entry(mailbox.clone()).or_insert(0);
        assert!(
            seq <= *top + 1,
            "{mailbox}: seq {seq} arrived after {top}: a gap"
        );
        *top = (*top).max(seq);
    }
}

fn consumer(bed: &TestBed, name: &str, url: &str, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = bed.command();
    cmd.env("MAILINGEST_WEBHOOK_SECRET", SECRET)
        .args(["changes", "--consumer", name, "--post", url])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn run_consumer(bed: &TestBed, name: &str, url: &str, extra: &[&str]) -> (i32, String) {
    let out = consumer(bed, name, url, extra).output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn raw_message(n: usize) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\n\
         To: ann@example.com\r\n\
         Subject: feed {n}\r\n\
         Message-ID: <feed-{n}@example.org>\r\n\
         Date: {}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Body of message {n}.\r\n",
        chrono::Utc::now().to_rfc2822()
    )
    .into_bytes()
}

/// Adds, relabels and deletes in Gmail, then syncs: events of every kind.
async fn change_gmail_and_sync(bed: &TestBed, round: usize) {
    // Stored, live, not yet starred messages of the test mailbox.
    let stored = bed
        .strings(&format!(
            "SELECT m.provider_message_id FROM mail_messages m JOIN mailboxes b ON b.id = m.mailbox_id
             WHERE b.provider_email = '{}' AND m.deleted_at IS NULL ORDER BY 1",
            bed.mailbox
        ))
        .await;
    let labels = bed.live_labels().await;
    let plain: Vec<&String> = stored
        .iter()
        .filter(|id| !labels[*id].contains("STARRED"))
        .collect();
    for i in 0..2 {
        bed.emulator
            .insert_raw(&bed.mailbox, &raw_message(round * 10 + i), &["INBOX"], None)
            .unwrap();
    }
    bed.emulator
        .modify_labels(&bed.mailbox, plain[0], &["STARRED"], &[])
        .unwrap();
    bed.emulator.delete_message(&bed.mailbox, plain[1]).unwrap();
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
}

async fn every_event_arrives_once_through_restart_outage_and_kill_9(backend: Backend) {
    let bed = TestBed::on(backend, two_orgs()).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    // Another org's mailbox on the same database.
    let (code, run) = bed
        .run_json(&["--org", "beta", "backfill", "--mailbox", "bob@example.com"])
        .await;
    assert_eq!(code, 0, "{run}");
    let rx = Receiver::start().await;
    let url = rx.url();

    // The backfill, in batches of 7.
    let (code, err) = run_consumer(&bed, "crm", &url, &["--batch-size", "7"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(rx.keys(), ledger_keys(&bed, ORG, &bed.mailbox).await);

    // A restart with nothing new delivers nothing again.
    let posts = rx.with(|s| s.posts);
    let (code, err) = run_consumer(&bed, "crm", &url, &["--batch-size", "7"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rx.with(|s| s.posts),
        posts,
        "a restart resumes after the last acknowledged event"
    );

    // Syncs with new mail, label changes and deletes; the receiver answers
    // 503 for 10 s, and the consumer rides it out.
    change_gmail_and_sync(&bed, 0).await;
    rx.with(|s| s.fail_until = Some(Instant::now() + Duration::from_secs(10)));
    let started = Instant::now();
    let (code, err) = run_consumer(&bed, "crm", &url, &["--batch-size", "7"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "it waited out the outage"
    );
    assert!(
        rx.with(|s| s.refused) >= 3,
        "the outage was met and retried"
    );
    assert_eq!(rx.keys(), ledger_keys(&bed, ORG, &bed.mailbox).await);

    // kill -9 mid-batch: the receiver records a batch, then answers slowly.
    change_gmail_and_sync(&bed, 1).await;
    change_gmail_and_sync(&bed, 2).await;
    rx.with(|s| s.delay = Duration::from_millis(400));
    let before = rx.with(|s| s.posts);
    let mut child = consumer(&bed, "crm", &url, &["--batch-size", "3"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.with(|s| s.posts) < before + 2 {
        assert!(Instant::now() < deadline, "the consumer never posted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    let expected = ledger_keys(&bed, ORG, &bed.mailbox).await;
    assert_ne!(rx.keys(), expected, "killed before the end");
    rx.with(|s| s.delay = Duration::ZERO);
    let (code, err) = run_consumer(&bed, "crm", &url, &["--batch-size", "3"]).await;
    assert_eq!(code, 0, "{err}");

    // Every event once after deduplication, no gap, only org default's.
    assert_eq!(rx.keys(), expected);
    let (arrivals, bad) = rx.with(|s| (s.arrivals.clone(), s.bad_signatures));
    assert_eq!(bad, 0, "every body is signed with the secret");
    assert!(
        arrivals.len() > expected.len(),
        "the killed batch came again (at least once)"
    );
    assert_no_gap(&arrivals);
    assert!(
        arrivals
            .iter()
            .all(|e| e["org"] == ORG && e["mailbox"] == "ann@example.com")
    );

    // What a consumer needs is in the events.
    let unique = rx.with(|s| s.unique.clone());
    let of_type = |t: &str| {
        unique
            .values()
            .filter(|e| e["type"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    let ingested = of_type("message.ingested");
    assert!(!ingested.is_empty());
    for e in &ingested {
        assert!(
            e["thread_id"].is_string() && e["message_id"].is_string(),
            "{e}"
        );
        assert!(
            e["raw_sha256"].as_str().is_some_and(|s| s.len() == 64),
            "{e}"
        );
        let key = e["raw_store_key"].as_str().expect("raw_store_key");
        assert!(key.ends_with(e["raw_sha256"].as_str().unwrap()), "{e}");
        assert!(e["labels"].is_array() && e["label_ids"].is_array(), "{e}");
        assert_eq!(e["deleted"], false);
    }
    let relabelled = of_type("labels.changed");
    assert!(relabelled.len() >= 3, "one per sync round");
    for e in &relabelled {
        let labels: Vec<&str> = e["labels"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(labels.contains(&"STARRED"), "{e}");
        assert!(e["thread_id"].is_string(), "{e}");
    }
    let deleted = of_type("message.deleted");
    assert_eq!(deleted.len(), 3, "one per sync round");
    assert!(
        deleted
            .iter()
            .all(|e| e["deleted"] == true && e["message_id"].is_string())
    );
    for e in of_type("attachment.saved") {
        assert!(
            e["part"].is_string() && e["part_store_key"].is_string(),
            "{e}"
        );
    }

    // status shows the consumer caught up.
    let (code, status) = bed.run_json(&["status"]).await;
    assert_eq!(code, 0);
    let ann = status
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["provider_email"] == "ann@example.com")
        .unwrap_or_else(|| panic!("{status}"));
    let crm = &ann["consumers"][0];
    assert_eq!(crm["consumer"], "crm", "{ann}");
    assert_eq!(crm["seq"], crm["head"], "{ann}");
    assert_eq!(crm["lag_events"], 0, "{ann}");
}

async fn one_consumer_runs_in_one_process_and_follow_delivers_new_commits(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(20)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let rx = Receiver::start().await;
    let url = rx.url();
    let mut first = consumer(&bed, "search", &url, &["--follow"])
        .spawn()
        .unwrap();
    let expected = ledger_keys(&bed, ORG, &bed.mailbox).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.keys() != expected {
        assert!(Instant::now() < deadline, "the follower never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A second process of the same consumer is refused while the first lives.
    let (code, err) = run_consumer(&bed, "search", &url, &[]).await;
    assert_eq!(code, 75, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("search") && err.contains("another live process"),
        "{err}"
    );

    // A commit reaches the follower without anyone asking.
    change_gmail_and_sync(&bed, 0).await;
    let expected = ledger_keys(&bed, ORG, &bed.mailbox).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.keys() != expected {
        assert!(Instant::now() < deadline, "the follower missed the sync");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Its death frees the consumer at once; the next process delivers the rest.
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    change_gmail_and_sync(&bed, 1).await;
    let (code, err) = run_consumer(&bed, "search", &url, &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(rx.keys(), ledger_keys(&bed, ORG, &bed.mailbox).await);
    assert_no_gap(&rx.with(|s| s.arrivals.clone()));
}

async fn bad_input_refusals_and_an_unreachable_receiver(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(10)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let rx = Receiver::start().await;
    let url = rx.url();

    let usage =
        |args: &'static [&'static str], secret: Option<&'static str>, needle: &'static str| {
            let mut cmd = bed.command();
            cmd.args(args);
            match secret {
                Some(s) => cmd.env("MAILINGEST_WEBHOOK_SECRET", s),
                None => cmd.env_remove("MAILINGEST_WEBHOOK_SECRET"),
            };
            async move {
                let out = cmd.output().await.unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
                assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
                assert!(err.contains(needle), "{args:?}: {err}");
                assert!(
                    !err.contains("hunter2"),
                    "{args:?}: the password leaked: {err}"
                );
            }
        };
    usage(&["changes", "--since", "yesterday"], None, "--since").await;
    usage(&["changes", "--since=-3"], None, "--since").await;
    usage(
        &["changes", "--since", "0", "--mailbox", "nobody@example.com"],
        None,
        "nobody@example.com",
    )
    .await;
    usage(
        &["changes", "--consumer", "c", "--post", "not a url"],
        Some(SECRET),
        "--post",
    )
    .await;
    usage(
        &[
            "changes",
            "--consumer",
            "c",
            "--post",
            "ftp://user:hunter2@example.com/x",
        ],
        Some(SECRET),
        "scheme",
    )
    .await;
    usage(
        &[
            "changes",
            "--consumer",
            "c",
            "--post",
            "https://example.com/hook",
        ],
        None,
        "MAILINGEST_WEBHOOK_SECRET",
    )
    .await;
    usage(
        &[
            "changes",
            "--consumer",
            "c",
            "--post",
            "https://example.com/hook",
        ],
        Some(""),
        "MAILINGEST_WEBHOOK_SECRET",
    )
    .await;
    // Another org's view of this mailbox does not exist.
    usage(
        &[
            "--org",
            "beta",
            "changes",
            "--since",
            "0",
            "--mailbox",
            "ann@example.com",
        ],
        None,
        "ann@example.com",
    )
    .await;

    // A receiver that refuses (400): exit 1, one line naming the event, no
    // position moved.
    rx.with(|s| s.always = Some(400));
    let (code, err) = run_consumer(&bed, "crm", &url, &[]).await;
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{ORG}/{}/1", bed.mailbox)) && err.contains("400"),
        "{err}"
    );
    assert_eq!(bed.count("SELECT count(*) FROM feed_positions").await, 0);

    // 429 and timeouts are retried, for the outage budget, then exit 1.
    for (always, delay, why) in [
        (Some(429), Duration::ZERO, "HTTP 429"),
        (None, Duration::from_secs(3), "no answer within 1s"),
    ] {
        rx.with(|s| {
            s.always = always;
            s.delay = delay;
            s.posts = 0;
        });
        let (code, err) = run_consumer(
            &bed,
            "crm",
            &url,
            &["--outage-budget", "3s", "--post-timeout", "1s"],
        )
        .await;
        assert_eq!(code, 1, "{err}");
        let last = err.trim().lines().last().unwrap();
        assert!(last.contains(why) && last.contains("127.0.0.1"), "{last}");
        assert!(rx.with(|s| s.posts) >= 2, "{why}: retried");
    }
    rx.with(|s| {
        s.always = Some(400);
        s.delay = Duration::ZERO;
    });
    assert_eq!(bed.count("SELECT count(*) FROM feed_positions").await, 0);

    // /metrics shows the consumer's lag (the mailbox disabled: the worker
    // leaves its ledger alone while it serves the metrics).
    let head = ledger_keys(&bed, ORG, &bed.mailbox).await.len();
    let out = bed.run(&["mailbox", "disable", &bed.mailbox]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
        ])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let metrics = scrape_until(port, "mailingest_feed_consumer_lag_events").await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    let lag = metrics
        .lines()
        .find(|l| {
            l.starts_with("mailingest_feed_consumer_lag_events{") && l.contains("consumer=\"crm\"")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(lag.ends_with(&format!(" {head}")), "{lag}");
    let seconds = metrics
        .lines()
        .find(|l| {
            l.starts_with("mailingest_feed_consumer_lag_seconds{") && l.contains("consumer=\"crm\"")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    let secs: f64 = seconds.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(secs > 0.0, "{seconds}");

    // Unreachable past the outage budget: exit 1, one line naming the host
    // and the event; neither the password nor the secret in any output,
    // even at debug level.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://feeduser:hunter2@127.0.0.1:{closed}/hook");
    let out = consumer(&bed, "crm", &dead, &["--outage-budget", "2s"])
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.starts_with("error:") && last.contains("127.0.0.1"),
        "{last}"
    );
    assert!(last.contains(&format!("{ORG}/{}/1", bed.mailbox)), "{last}");
    let all = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        !all.contains("hunter2") && !all.contains(SECRET),
        "a secret leaked:\n{all}"
    );

    // A re-run with the receiver back resumes where it stopped: from event 1.
    rx.with(|s| s.always = None);
    let (code, err) = run_consumer(&bed, "crm", &url, &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(rx.keys(), ledger_keys(&bed, ORG, &bed.mailbox).await);
}

/// GET /metrics until it holds `needle`.
async fn scrape_until(port: u16, needle: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out).await;
            if out.contains(needle) {
                return out;
            }
        }
        assert!(Instant::now() < deadline, "no {needle} in /metrics");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stdout_lines_and_positions(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(10)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let head = ledger_keys(&bed, ORG, &bed.mailbox).await.len();
    let lines = |out: &std::process::Output| -> Vec<Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    };

    let out = bed.run(&["changes", "--since", "0", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let all = lines(&out);
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=head as i64).collect::<Vec<_>>());
    assert!(
        all.iter()
            .all(|e| e["schema"] == 1 && e["type"].is_string() && e["hash"].is_string())
    );

    let out = bed
        .run(&[
            "changes",
            "--mailbox",
            &bed.mailbox,
            "--since",
            "5",
            "--json",
        ])
        .await;
    assert_eq!(
        lines(&out).first().map(|e| e["seq"].clone()),
        Some(6.into())
    );
    let out = bed.run(&["changes", "--since", "now", "--json"]).await;
    assert!(lines(&out).is_empty(), "{out:?}");

    // A consumer on stdout: everything, then nothing until something commits.
    let out = bed.run(&["changes", "--consumer", "tail", "--json"]).await;
    assert_eq!(lines(&out).len(), head, "{out:?}");
    let out = bed.run(&["changes", "--consumer", "tail", "--json"]).await;
    assert!(lines(&out).is_empty(), "{out:?}");
    change_gmail_and_sync(&bed, 0).await;
    let out = bed.run(&["changes", "--consumer", "tail", "--json"]).await;
    let next = lines(&out);
    assert_eq!(
        next.first().map(|e| e["seq"].clone()),
        Some((head as i64 + 1).into())
    );
    assert_eq!(
        next.last().map(|e| e["seq"].as_i64().unwrap()),
        Some(ledger_keys(&bed, ORG, &bed.mailbox).await.len() as i64)
    );
}

async fn an_orgs_mailboxes_merge_by_commit_time_each_in_seq_order(backend: Backend) {
    let bed = TestBed::on(backend, two_orgs()).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let (code, run) = bed
        .run_json(&["backfill", "--mailbox", "bob@example.com"])
        .await;
    assert_eq!(code, 0, "{run}");
    change_gmail_and_sync(&bed, 0).await;

    let out = bed
        .run(&["changes", "--since", "0", "--json", "--batch-size", "7"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let mut seqs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut previous: Option<chrono::DateTime<chrono::Utc>> = None;
    for e in &events {
        let at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(e["committed_at"].clone()).unwrap();
        assert!(
            previous.is_none_or(|p| p <= at),
            "out of commit order at {e}"
        );
        previous = Some(at);
        seqs.entry(e["mailbox"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["seq"].as_i64().unwrap());
    }
    for email in ["ann@example.com", "bob@example.com"] {
        let head = ledger_keys(&bed, ORG, email).await.len() as i64;
        assert_eq!(seqs[email], (1..=head).collect::<Vec<_>>(), "{email}");
    }
    // ann's sync came after bob's backfill: the merge interleaves, it does
    // not hand out one mailbox after the other by id.
    let last_ann = events
        .iter()
        .rposition(|e| e["mailbox"] == "ann@example.com");
    let first_bob = events
        .iter()
        .position(|e| e["mailbox"] == "bob@example.com");
    assert!(first_bob < last_ann, "merged by commit time");
}

/// An event's `labels` are the names labels.list gave (a user label by name,
/// not `Label_N`), and a rename in Gmail is an event of its own after which
/// the feed names the label by its new name.
async fn events_name_labels_as_the_labels_table_does(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(5)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let (messages, _) = bed.expected_ids().await;
    let message = messages.iter().next().expect("a message").clone();
    let id = bed
        .emulator
        .create_label(&bed.mailbox, "Projects/2026")
        .expect("create label");
    bed.emulator
        .modify_labels(&bed.mailbox, &message, &[id.as_str()], &[])
        .expect("label the message");
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    let events = |out: &std::process::Output| -> Vec<Value> {
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    };
    let relabelled = |all: &[Value]| -> Value {
        all.iter()
            .rfind(|e| e["type"] == "labels.changed" && e["message_id"] == message.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("no labels.changed for {message}: {all:?}"))
    };
    let all = events(&bed.run(&["changes", "--since", "0", "--json"]).await);
    let e = relabelled(&all);
    let at = e["label_ids"]
        .as_array()
        .and_then(|ids| ids.iter().position(|v| v == id.as_str()))
        .unwrap_or_else(|| panic!("{id} not in label_ids: {e}"));
    assert_eq!(e["labels"][at], "Projects/2026", "{e}");
    assert!(
        all.iter().any(|e| e["type"] == "label.created"),
        "the new label is an event"
    );

    bed.emulator
        .rename_label(&bed.mailbox, &id, "Archive/2026")
        .expect("rename");
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    let all = events(&bed.run(&["changes", "--since", "0", "--json"]).await);
    assert!(
        all.iter().any(|e| e["type"] == "label.renamed"),
        "the rename is an event: {all:?}"
    );
    let e = relabelled(&all);
    assert_eq!(e["labels"][at], "Archive/2026", "{e}");
}
