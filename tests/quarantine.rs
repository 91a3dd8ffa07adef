//! Poison messages are quarantined, never fatal and never forgotten.
//!
//! A message Gmail keeps refusing (a persistent 5xx or 400 on its id) or one
//! our columns cannot hold (an internalDate beyond any timestamp) must not
//! fail the run nor hold the cursor back: the rest of the mailbox is stored,
//! the run exits 3, the message is recorded in the quarantine (and the ledger)
//! with its reason, `status` counts it, later runs retry it with a bound, and
//! it is stored once Gmail serves it. Gmail failing for every message is not a
//! poison message: that run fails.

mod common;

use std::collections::BTreeMap;

use common::{TestBed, small_mailbox};
use gmail_emulator::Faults;
use serde_json::Value;

/// Runs the binary with `--json` and a small Gmail retry budget (the default
/// one waits about a minute per failing id).
async fn run(bed: &TestBed, args: &[&str]) -> (i32, Value) {
    let out = bed
        .command()
        .env("MAILINGEST_GMAIL_MAX_ATTEMPTS", "2")
        .args(args)
        .arg("--json")
        .output()
        .await
        .expect("run mailingest");
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{args:?} exit {code}: stdout is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, value)
}

async fn backfill(bed: &TestBed) -> (i32, Value) {
    run(bed, &["backfill", "--mailbox", &bed.mailbox]).await
}

async fn sync(bed: &TestBed) -> (i32, Value) {
    run(bed, &["sync", "--mailbox", &bed.mailbox]).await
}

fn poison(ids: &[(&str, u16)]) -> Faults {
    Faults {
        failing_messages: ids
            .iter()
            .map(|(id, status)| ((*id).to_owned(), *status))
            .collect::<BTreeMap<_, _>>(),
        ..Faults::default()
    }
}

/// (failure, attempts, raw archived) of the message's quarantine row, if any.
async fn quarantine_row(bed: &TestBed, id: &str) -> Option<(String, i32, bool)> {
    sqlx::query_as(
        "SELECT failure, attempts, raw_sha256 IS NOT NULL FROM quarantined_messages
         WHERE provider_message_id = $1",
    )
    .bind(id)
    .fetch_optional(bed.pg())
    .await
    .expect("read quarantine")
}

async fn stored(bed: &TestBed, id: &str) -> i64 {
    bed.count(&format!(
        "SELECT count(*) FROM mail_messages WHERE provider_message_id = '{id}'"
    ))
    .await
}

fn skipped_ids(summary: &Value) -> Vec<(String, String)> {
    summary["skipped"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["message_id"].as_str().unwrap_or_default().to_owned(),
                        s["kind"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_gmail_keeps_failing_is_quarantined_and_stored_once_gmail_serves_it() {
    let bed = TestBed::new(small_mailbox(12)).await;
    let (expected, _) = bed.expected_ids().await;
    let bad = expected.iter().next().expect("a message").clone();
    bed.emulator.set_faults(poison(&[(&bad, 500)]));

    let (code, first) = backfill(&bed).await;
    assert_eq!(code, 3, "completed with a quarantined message: {first}");
    assert_eq!(
        skipped_ids(&first),
        vec![(bad.clone(), "unavailable".into())]
    );
    let live = bed
        .count("SELECT count(*) FROM mail_messages WHERE deleted_at IS NULL")
        .await;
    assert_eq!(live as usize, expected.len() - 1, "the rest is stored");
    assert_eq!(
        quarantine_row(&bed, &bad).await,
        Some(("unavailable".into(), 1, false))
    );

    // `status` counts it and `status --quarantined` names it with its reason.
    let (_, status) = run(&bed, &["status"]).await;
    assert_eq!(status[0]["quarantined"], 1, "{status}");
    assert_eq!(status[0]["quarantine_given_up"], 0, "{status}");
    let (_, listed) = run(&bed, &["status", "--quarantined"]).await;
    assert_eq!(listed[0]["provider_message_id"], bad.as_str(), "{listed}");
    assert_eq!(listed[0]["kind"], "unavailable", "{listed}");
    assert!(
        listed[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("gave up"),
        "{listed}"
    );

    // Still failing: the next run retries it once (one attempt per run).
    let (code, second) = backfill(&bed).await;
    assert_eq!(code, 3, "{second}");
    assert_eq!(
        quarantine_row(&bed, &bad).await,
        Some(("unavailable".into(), 2, false))
    );

    // Gmail serves it again: the next run stores it and releases it.
    bed.emulator.set_faults(Faults::default());
    let (code, third) = backfill(&bed).await;
    assert_eq!(code, 0, "{third}");
    assert_eq!(stored(&bed, &bad).await, 1);
    assert_eq!(quarantine_row(&bed, &bad).await, None);
    let (_, status) = run(&bed, &["status"]).await;
    assert_eq!(status[0]["quarantined"], 0, "{status}");
    bed.assert_verify_clean().await;
    let (code, full) = run(&bed, &["verify", "--full"]).await;
    assert_eq!(code, 0, "{full}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_gmail_rejects_never_holds_the_cursor_back() {
    let bed = TestBed::new(small_mailbox(6)).await;
    let (code, run0) = backfill(&bed).await;
    assert_eq!(code, 0, "{run0}");
    let bad = bed
        .emulator
        .insert_raw(
            &bed.mailbox,
            b"From: a@example.org\r\nSubject: refused\r\n\r\nrefused\r\n",
            &["INBOX"],
            None,
        )
        .expect("insert");
    let good = bed
        .emulator
        .insert_raw(
            &bed.mailbox,
            b"From: a@example.org\r\nSubject: after\r\n\r\nafter\r\n",
            &["INBOX"],
            None,
        )
        .expect("insert");
    bed.emulator.set_faults(poison(&[(&bad, 400)]));

    let (code, first) = sync(&bed).await;
    assert_eq!(code, 3, "{first}");
    assert_eq!(skipped_ids(&first), vec![(bad.clone(), "rejected".into())]);
    assert_eq!(stored(&bed, &good).await, 1, "mail after it is stored");
    let cursor = bed
        .count("SELECT history_id FROM mailboxes WHERE provider_email = 'ann@example.com'")
        .await;
    let head = bed.emulator.history_id(&bed.mailbox).expect("history id") as i64;
    assert_eq!(cursor, head, "the cursor passed the refused message");
    assert_eq!(
        quarantine_row(&bed, &bad).await,
        Some(("rejected".into(), 1, false))
    );
    let skip_events = bed
        .count(&format!(
            "SELECT count(*) FROM ledger_events WHERE event_type = 'message.skipped' \
             AND subject_key = 'message:{bad}' AND payload->>'kind' = 'rejected'"
        ))
        .await;
    assert_eq!(skip_events, 1);

    // A rejected message backs off: the next sync does not ask for it.
    bed.emulator.reset_stats();
    let (code, second) = sync(&bed).await;
    assert_eq!(code, 0, "{second}");
    assert_eq!(bed.calls("messages.get"), 0, "not due yet: {second}");

    // Fixed upstream, requeued by the operator: stored by the next run.
    bed.emulator.set_faults(Faults::default());
    let out = bed.run(&["mailbox", "requeue", &bed.mailbox]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let (code, third) = sync(&bed).await;
    assert_eq!(code, 0, "{third}");
    assert_eq!(stored(&bed, &bad).await, 1);
    assert_eq!(quarantine_row(&bed, &bad).await, None);
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_date_out_of_range_is_archived_and_quarantined_not_fatal() {
    let bed = TestBed::new(small_mailbox(4)).await;
    let (code, run0) = backfill(&bed).await;
    assert_eq!(code, 0, "{run0}");
    let bad = bed
        .emulator
        .insert_raw(
            &bed.mailbox,
            b"From: a@example.org\r\nSubject: far future\r\n\r\nbody\r\n",
            &["INBOX"],
            None,
        )
        .expect("insert");
    bed.emulator
        .set_internal_date(&bed.mailbox, &bad, i64::MAX)
        .expect("set date");
    let good = bed
        .emulator
        .insert_raw(
            &bed.mailbox,
            b"From: a@example.org\r\nSubject: fine\r\n\r\nfine\r\n",
            &["INBOX"],
            None,
        )
        .expect("insert");

    let (code, summary) = sync(&bed).await;
    assert_eq!(code, 3, "{summary}");
    assert_eq!(stored(&bed, &good).await, 1);
    assert_eq!(stored(&bed, &bad).await, 0);
    let (failure, attempts, archived) = quarantine_row(&bed, &bad).await.expect("quarantined");
    assert_eq!(
        (failure.as_str(), attempts, archived),
        ("rejected", 1, true)
    );
    let reason = &summary["skipped"][0]["reason"];
    assert!(
        reason.as_str().unwrap_or("").contains("internalDate"),
        "{summary}"
    );
    // Its raw bytes are in the store and the archive is consistent.
    let key: String = sqlx::query_scalar(
        "SELECT b.storage_key FROM quarantined_messages q JOIN blobs b ON b.sha256 = q.raw_sha256
         WHERE q.provider_message_id = $1",
    )
    .bind(&bad)
    .fetch_one(bed.pg())
    .await
    .expect("raw blob row");
    let path = bed.store_path().join(&key);
    assert!(path.exists(), "raw archived at {}", path.display());
    bed.assert_verify_clean().await;
    // verify --full names it as recorded, not as missing.
    let (code, full) = run(&bed, &["verify", "--full"]).await;
    assert_eq!(code, 0, "{full}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_given_up_after_five_runs_and_left_alone() {
    let bed = TestBed::new(small_mailbox(6)).await;
    let (expected, _) = bed.expected_ids().await;
    let bad = expected.iter().last().expect("a message").clone();
    bed.emulator.set_faults(poison(&[(&bad, 503)]));
    for attempt in 1..=5 {
        let (code, summary) = backfill(&bed).await;
        assert_eq!(code, 3, "run {attempt}: {summary}");
        assert_eq!(
            quarantine_row(&bed, &bad).await,
            Some(("unavailable".into(), attempt, false)),
            "run {attempt}"
        );
    }
    bed.emulator.reset_stats();
    let (code, summary) = backfill(&bed).await;
    assert_eq!(code, 0, "given up, nothing else to do: {summary}");
    assert_eq!(bed.calls("messages.get"), 0, "{summary}");
    let (_, status) = run(&bed, &["status"]).await;
    assert_eq!(status[0]["quarantined"], 1, "{status}");
    assert_eq!(status[0]["quarantine_given_up"], 1, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_failing_every_message_fails_the_run_instead_of_quarantining_the_mailbox() {
    let bed = TestBed::new(small_mailbox(20)).await;
    let (expected, _) = bed.expected_ids().await;
    let all: Vec<(&str, u16)> = expected.iter().map(|id| (id.as_str(), 503)).collect();
    bed.emulator.set_faults(poison(&all));
    let (code, summary) = backfill(&bed).await;
    assert_eq!(code, 1, "{summary}");
    assert!(
        summary["error"]
            .as_str()
            .unwrap_or("")
            .contains("messages.get"),
        "{summary}"
    );
    let quarantined = bed.count("SELECT count(*) FROM quarantined_messages").await;
    assert!(
        (quarantined as usize) < expected.len(),
        "the run stopped quarantining: {quarantined}"
    );
}

/// `status --check` is what cron and monitoring run: exit 5 and a reason for
/// a degraded mailbox (quarantined mail, no completed run for six days), 0
/// once it is healthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_check_flags_degraded_mailboxes() {
    let bed = TestBed::new(small_mailbox(6)).await;
    let (expected, _) = bed.expected_ids().await;
    let bad = expected.iter().next().expect("a message").clone();
    bed.emulator.set_faults(poison(&[(&bad, 400)]));
    let (code, _) = backfill(&bed).await;
    assert_eq!(code, 3);

    let (code, status) = run(&bed, &["status", "--check"]).await;
    assert_eq!(code, 5, "{status}");
    assert_eq!(status[0]["health"], "degraded", "{status}");
    assert_eq!(
        status[0]["degraded"][0]["reason"], "quarantined",
        "{status}"
    );
    let text = bed.run(&["status"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("DEGRADED: 1 quarantined message(s)"),
        "{text}"
    );
    // Without --json, --check tells cron the same: exit 5.
    let out = bed.run(&["status", "--check"]).await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    bed.emulator.set_faults(Faults::default());
    let out = bed.run(&["mailbox", "requeue", &bed.mailbox]).await;
    assert_eq!(out.status.code(), Some(0));
    let (code, summary) = backfill(&bed).await;
    assert_eq!(code, 0, "{summary}");
    let (code, status) = run(&bed, &["status", "--check"]).await;
    assert_eq!(code, 0, "{status}");
    assert_eq!(status[0]["health"], "healthy", "{status}");

    // A week without a completed run: Gmail's history may expire.
    sqlx::query("UPDATE sync_runs SET started_at = started_at - interval '7 days', finished_at = finished_at - interval '7 days'")
        .execute(bed.pg())
        .await
        .expect("age the runs");
    let (code, status) = run(&bed, &["status", "--check"]).await;
    assert_eq!(code, 5, "{status}");
    assert_eq!(
        status[0]["degraded"][0]["reason"], "cursor_near_expiry",
        "{status}"
    );
}
