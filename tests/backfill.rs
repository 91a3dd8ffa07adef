//! `mailingest backfill` end to end: the real binary against the Gmail
//! emulator, a fresh database and a temporary store (S3 for one variant).
//! Counts and raw bytes equal the source; a re-run fetches and rewrites
//! nothing; changes fetch only the changed threads; faults and quota are
//! survived; one live run per mailbox; `verify --deep` is clean throughout.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{TestBed, small_mailbox};
use gmail_emulator::{Faults, Quota};
use serde_json::Value;

/// What a backfill of the default window must store: every message not in
/// SPAM or TRASH, and the threads they belong to. Read through the API
/// before the run (call stats are reset afterwards by the callers).
struct Expected {
    messages: BTreeSet<String>,
    threads: BTreeSet<String>,
}

async fn expected(bed: &TestBed) -> Expected {
    let (messages, threads) = bed.expected_ids().await;
    Expected { messages, threads }
}

async fn stored_message_ids(bed: &TestBed) -> BTreeSet<String> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT provider_message_id FROM mail_messages")
        .fetch_all(bed.pg())
        .await
        .expect("stored ids");
    ids.into_iter().collect()
}

/// Stored counts equal the source, and no natural key is duplicated.
async fn assert_matches_source(bed: &TestBed, exp: &Expected) {
    assert_eq!(
        stored_message_ids(bed).await,
        exp.messages,
        "stored message ids"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_messages").await,
        exp.messages.len() as i64,
        "one row per message"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_threads").await,
        exp.threads.len() as i64,
        "one row per thread"
    );
    assert_eq!(
        bed.count(
            "SELECT count(*) FROM (SELECT message_id, part_id FROM mail_attachments \
             GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
        .await,
        0,
        "duplicate attachment keys"
    );
}

fn get(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("summary has no number at {path:?}: {v}"))
}

/// (inserted, updated) of one entity in a run summary.
fn iu(v: &Value, entity: &str) -> (u64, u64) {
    (get(v, &[entity, "inserted"]), get(v, &[entity, "updated"]))
}

fn blob_path(store: &Path, sha: &str) -> PathBuf {
    store
        .join("default")
        .join("sha256")
        .join(&sha[0..2])
        .join(&sha[2..4])
        .join(sha)
}

/// Files under `dir`, less the ledger heads runs leave beside the objects
/// (`<org>/.ledger-heads/`, for gc).
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name() != ".ledger-heads")
        .map(|e| {
            let p = e.path();
            if p.is_dir() { count_files(&p) } else { 1 }
        })
        .sum()
}

fn rfc822(n: usize, subject: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Peer {n} <peer{n}@example.org>\r\n\
         To: ann@example.com\r\n\
         Subject: {subject}\r\n\
         Message-ID: <e2e-{n}@example.org>\r\n\
         Date: {}\r\n\
         {extra_headers}\
         MIME-Version: 1.0\r\n\
         {body}",
        chrono::Utc::now().to_rfc2822()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_mailbox_is_copied_exactly_and_a_rerun_fetches_nothing() {
    let bed = TestBed::new(small_mailbox(60)).await;
    let exp = expected(&bed).await;
    assert!(exp.messages.len() > 40, "the seeded mailbox has mail");

    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "first backfill: {first}");
    assert_eq!(first["status"], "completed");
    assert_matches_source(&bed, &exp).await;
    assert_eq!(iu(&first, "messages"), (exp.messages.len() as u64, 0));
    assert_eq!(iu(&first, "threads"), (exp.threads.len() as u64, 0));
    assert_eq!(
        bed.calls("users.messages.get"),
        exp.messages.len() as u64,
        "each message fetched once"
    );
    assert!(
        get(&first, &["attachments", "inserted"]) > 0,
        "seeded mail has attachments"
    );

    // The raw archive is byte-for-byte what Gmail serves.
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT provider_message_id, raw_sha256 FROM mail_messages")
            .fetch_all(bed.pg())
            .await
            .unwrap();
    for (id, sha) in &rows {
        let stored = std::fs::read(blob_path(&bed.store_path(), sha))
            .unwrap_or_else(|e| panic!("raw blob of {id} ({sha}): {e}"));
        let source = bed
            .emulator
            .raw_message(&bed.mailbox, id)
            .expect("source raw");
        assert!(stored == source, "raw bytes of {id} differ from Gmail's");
    }
    // Every blob row has exactly one object; shared attachments share it.
    let blobs = bed.count("SELECT count(*) FROM blobs").await;
    assert_eq!(
        count_files(&bed.store_path()) as i64,
        blobs,
        "objects vs blob rows"
    );
    assert!(
        bed.count("SELECT count(DISTINCT sha256) FROM mail_attachments")
            .await
            < bed.count("SELECT count(*) FROM mail_attachments").await,
        "the seeded pool repeats attachments, so some share a blob"
    );
    bed.assert_verify_clean().await;

    let tables = "SELECT (SELECT count(*) FROM mail_threads) * 1000000000 \
                  + (SELECT count(*) FROM mail_messages) * 1000000 \
                  + (SELECT count(*) FROM mail_attachments) * 1000 + (SELECT count(*) FROM blobs)";
    let before = bed.count(tables).await;
    bed.emulator.reset_stats();
    let (code, second) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "re-run: {second}");
    for entity in ["threads", "messages", "attachments"] {
        assert_eq!(iu(&second, entity), (0, 0), "re-run {entity}: {second}");
    }
    assert_eq!(
        get(&second, &["blobs", "stored"]),
        0,
        "re-run stores no blob"
    );
    assert_eq!(get(&second, &["messages_fetched"]), 0);
    assert_eq!(
        bed.calls("users.messages.get"),
        0,
        "re-run fetched messages"
    );
    assert_eq!(bed.calls("users.threads.get"), 0, "re-run fetched threads");
    assert_eq!(bed.count(tables).await, before, "table counts changed");
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_attachment_in_two_messages_is_one_blob() {
    let bed = TestBed::new(small_mailbox(0)).await;
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    let b64 = {
        use std::fmt::Write as _;
        // A tiny base64 encoder keeps this test free of extra dependencies.
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for (i, c) in payload.chunks(3).enumerate() {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    s.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
            if i % 19 == 18 {
                let _ = write!(s, "\r\n");
            }
        }
        s
    };
    for n in 0..2 {
        let body = format!(
            "Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n\
             --b{n}\r\nContent-Type: text/plain\r\n\r\nsee attached ({n})\r\n\
             --b{n}\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"same-{n}.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b{n}--\r\n"
        );
        bed.emulator
            .insert_raw(
                &bed.mailbox,
                &rfc822(n, "shared", "", &body),
                &["INBOX"],
                None,
            )
            .expect("insert");
    }
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(iu(&run, "messages"), (2, 0));
    let shas: Vec<String> = sqlx::query_scalar(
        "SELECT sha256 FROM mail_attachments WHERE mime_type = 'application/octet-stream'",
    )
    .fetch_all(bed.pg())
    .await
    .unwrap();
    assert_eq!(shas.len(), 2, "one attachment row per message");
    assert_eq!(shas[0], shas[1], "same bytes, same sha256");
    let rows = bed
        .count(&format!(
            "SELECT count(*) FROM blobs WHERE sha256 = '{}'",
            shas[0]
        ))
        .await;
    assert_eq!(rows, 1, "one blob row");
    let file = blob_path(&bed.store_path(), &shas[0]);
    assert_eq!(std::fs::read(&file).expect("attachment object"), payload);
    // Two raws + one shared attachment + two text parts (if kept as parts) —
    // whatever the parts are, objects and rows agree one to one.
    assert_eq!(
        count_files(&bed.store_path()) as i64,
        bed.count("SELECT count(*) FROM blobs").await
    );
    assert!(get(&run, &["blobs", "deduplicated"]) >= 1, "{run}");
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_messages_and_a_relabel_fetch_only_the_two_changed_threads() {
    let bed = TestBed::new(small_mailbox(40)).await;
    let exp = expected(&bed).await;
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");

    // Thread A gets three new messages; one message of thread B is relabelled.
    let mut threads = exp.threads.iter();
    let thread_a = threads.next().expect("a thread").clone();
    let thread_b = threads.next().expect("a second thread").clone();
    let relabelled = exp
        .messages
        .iter()
        .find(|m| bed.emulator.thread_of(&bed.mailbox, m).as_deref() == Some(thread_b.as_str()))
        .expect("a message in thread B")
        .clone();
    let mut added = BTreeSet::new();
    for n in 0..3 {
        let raw = rfc822(
            100 + n,
            "Re: more",
            "",
            "Content-Type: text/plain; charset=utf-8\r\n\r\nanother reply\r\n",
        );
        let id = bed
            .emulator
            .insert_raw(&bed.mailbox, &raw, &["INBOX"], Some(&thread_a))
            .expect("insert into thread A");
        added.insert(id);
    }
    bed.emulator
        .modify_labels(&bed.mailbox, &relabelled, &["STARRED", "e2e-reviewed"], &[])
        .expect("relabel");

    bed.emulator.reset_stats();
    let (code, next) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{next}");
    assert_eq!(iu(&next, "messages"), (3, 1), "{next}");
    assert_eq!(iu(&next, "threads"), (0, 2), "{next}");
    assert_eq!(iu(&next, "attachments"), (0, 0), "{next}");
    assert_eq!(get(&next, &["threads_fetched"]), 2, "{next}");
    assert_eq!(get(&next, &["labels_changed"]), 1, "{next}");
    // On Gmail's 2026 table (the bed's), where threads.get costs 40 units,
    // the changed stored thread is not asked for: the run's messages.list
    // says what is new in it and one history page what was relabelled
    // (tests/quota.rs has the 2025 table's threads.get, 1 per changed thread).
    assert_eq!(bed.quota_table, gmail::QuotaTable::Y2026);
    assert_eq!(bed.calls("users.threads.get"), 0, "no thread calls");
    assert_eq!(bed.calls("users.history.list"), 1, "one history page");
    assert_eq!(bed.calls("users.messages.get"), 3, "only the new messages");

    let mut all = exp.messages.clone();
    all.extend(added.iter().cloned());
    assert_eq!(stored_message_ids(&bed).await, all);
    let in_a = bed
        .count(&format!(
            "SELECT count(*) FROM mail_messages m JOIN mail_threads t ON t.id = m.thread_id \
             WHERE t.provider_thread_id = '{thread_a}' AND m.provider_message_id IN ({})",
            added
                .iter()
                .map(|i| format!("'{i}'"))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .await;
    assert_eq!(in_a, 3, "the new messages hang off thread A");
    let labels: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(label_ids) FROM mail_messages WHERE provider_message_id = $1",
    )
    .bind(&relabelled)
    .fetch_all(bed.pg())
    .await
    .unwrap();
    assert!(
        labels.iter().any(|l| l == "STARRED"),
        "labels stored: {labels:?}"
    );
    assert_eq!(
        bed.count(&format!(
            "SELECT message_count::bigint FROM mail_threads WHERE provider_thread_id = '{thread_a}'"
        ))
        .await as usize,
        exp.messages
            .iter()
            .filter(|m| bed.emulator.thread_of(&bed.mailbox, m).as_deref() == Some(&thread_a))
            .count()
            + 3,
        "thread A's message count follows its messages"
    );
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_message_moved_to_trash_in_a_live_thread_gets_its_labels_updated() {
    let bed = TestBed::new(small_mailbox(20)).await;
    let exp = expected(&bed).await;
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    // A message of a thread with other live messages: the thread stays listed.
    let thread_of = |m: &String| bed.emulator.thread_of(&bed.mailbox, m);
    let victim = exp
        .messages
        .iter()
        .find(|m| {
            exp.messages
                .iter()
                .filter(|o| thread_of(o) == thread_of(m))
                .count()
                >= 2
        })
        .expect("a thread with two messages")
        .clone();
    bed.emulator.trash(&bed.mailbox, &victim).expect("trash");

    let (code, next) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{next}");
    let labels: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(label_ids) FROM mail_messages WHERE provider_message_id = $1",
    )
    .bind(&victim)
    .fetch_all(bed.pg())
    .await
    .unwrap();
    assert!(
        labels.iter().any(|l| l == "TRASH") && !labels.iter().any(|l| l == "INBOX"),
        "the stored copy of a message Gmail moved to TRASH still has labels {labels:?}: {next}"
    );
    assert_eq!(iu(&next, "messages"), (0, 1), "{next}");
    assert_eq!(get(&next, &["labels_changed"]), 1, "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_rate_limits_are_retried_to_the_same_result() {
    let bed = TestBed::new(small_mailbox(80)).await;
    let exp = expected(&bed).await;
    bed.emulator.set_faults(Faults {
        error_rate: 0.05,
        unavailable_rate: 0.05,
        ..Faults::default()
    });
    // The client is paced far above this (100,000 units/s), so the emulator's
    // own limit answers 429 and the client must back off.
    bed.emulator.set_quota(Quota {
        per_second: Some(300),
        ..Quota::default()
    });
    let (code, run) = bed.backfill(&[]).await;
    let stats = bed.emulator.stats();
    bed.emulator.set_faults(Faults::default());
    bed.emulator.set_quota(Quota::default());
    assert_eq!(code, 0, "{run}");
    assert_matches_source(&bed, &exp).await;
    assert_eq!(iu(&run, "messages"), (exp.messages.len() as u64, 0));
    assert!(
        get(&run, &["api", "total", "retries"]) > 0,
        "retries: {run}"
    );
    let faults: u64 = stats.faults_injected.values().sum();
    assert!(faults > 0, "faults were injected: {stats:?}");
    let throttled: u64 = stats
        .mailboxes
        .get(&bed.mailbox)
        .map(|m| m.values().map(|s| s.throttled).sum())
        .unwrap_or(0);
    assert!(
        throttled > 0,
        "the emulator rate-limited the run: {stats:?}"
    );
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backfills_of_one_mailbox_one_runs_the_other_exits_75() {
    let bed = TestBed::new(small_mailbox(40)).await;
    let exp = expected(&bed).await;
    // Slow enough that the two runs overlap whatever the scheduling.
    bed.emulator.set_faults(Faults {
        latency_ms: 40,
        ..Faults::default()
    });
    let args = ["backfill", "--mailbox", bed.mailbox.as_str(), "--json"];
    let a = bed.command().args(args).output();
    let b = bed.command().args(args).output();
    let (a, b) = tokio::join!(a, b);
    bed.emulator.set_faults(Faults::default());
    let (a, b) = (a.expect("run a"), b.expect("run b"));
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        [Some(0), Some(75)],
        "a: {}\nb: {}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let loser = if a.status.code() == Some(75) { &a } else { &b };
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert!(
        stderr.contains("held by run"),
        "names the live run: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert_matches_source(&bed, &exp).await;
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs").await,
        1,
        "the loser recorded no run"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status = 'completed'")
            .await,
        1
    );
    bed.assert_verify_clean().await;
}

/// Runs the binary with the test bed's environment but another store.
async fn with_store(bed: &TestBed, store: &str, args: &[&str]) -> std::process::Output {
    bed.command()
        .env("MAILINGEST_STORE", store)
        .args(args)
        .output()
        .await
        .expect("run mailingest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_into_s3_matches_the_source() {
    let (Ok(endpoint), Ok(bucket)) = (
        std::env::var("AWS_ENDPOINT_URL"),
        std::env::var("MAILINGEST_TEST_S3_BUCKET"),
    ) else {
        panic!(
            "the S3 variant needs AWS_ENDPOINT_URL and MAILINGEST_TEST_S3_BUCKET: \
             run through scripts/test.sh (or `source scripts/s3-server.sh; s3_server_start`)"
        );
    };
    let bed = TestBed::new(small_mailbox(30)).await;
    let exp = expected(&bed).await;
    let store = format!("s3://{bucket}/e2e-backfill-{}", bed.db_name);
    let mb = bed.mailbox.as_str();
    let out = with_store(&bed, &store, &["backfill", "--mailbox", mb, "--json"]).await;
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "backfill to {endpoint}: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{summary}");
    assert_matches_source(&bed, &exp).await;
    assert!(get(&summary, &["blobs", "stored"]) > 0);
    // Nothing went to the local store directory.
    assert_eq!(
        count_files(&bed.store_path()),
        0,
        "blobs leaked to the fs store"
    );
    let verify = with_store(&bed, &store, &["verify", "--deep"]).await;
    assert_eq!(
        verify.status.code(),
        Some(0),
        "verify against S3:\n{}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // And a re-run uploads nothing.
    let again = with_store(&bed, &store, &["backfill", "--mailbox", mb, "--json"]).await;
    let again: Value = serde_json::from_slice(&again.stdout).expect("summary");
    assert_eq!(get(&again, &["blobs", "stored"]), 0, "{again}");
    assert_eq!(iu(&again, "messages"), (0, 0), "{again}");
}
