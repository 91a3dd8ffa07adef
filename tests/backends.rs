//! The core end-to-end cases on both backends: PostgreSQL (production) and
//! SQLite (the embedded default). The same binary, the same emulator over
//! HTTP, the same assertions: a first backfill stores everything once, an
//! unchanged re-run writes nothing, kill -9 and a re-run loses and doubles
//! nothing, two concurrent runs end {0, 75}, sync mirrors Gmail, verify is
//! clean. And the embedded default needs no server and no configuration.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use common::{Backend, TestBed, small_mailbox};
use gmail_emulator::Faults;
use serde_json::Value;

on_both_backends!(
    first_backfill_then_an_unchanged_rerun_writes_nothing,
    kill_9_mid_backfill_then_a_rerun_completes,
    two_concurrent_runs_end_0_and_75,
    sync_mirrors_adds_relabels_trash_and_deletes,
    the_worker_status_mailbox_and_full_verify_work,
    a_history_id_behind_the_cursor_starts_over_and_degrades,
);

fn n(v: &Value, path: &[&str]) -> i64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_i64()
        .unwrap_or_else(|| panic!("{path:?} missing in {v}"))
}

fn slow() -> Faults {
    Faults {
        latency_ms: 60,
        latency_jitter_ms: 40,
        ..Faults::default()
    }
}

/// Every message stored exactly once, and nothing else.
async fn assert_stored_once(bed: &TestBed, messages: &BTreeSet<String>) {
    let stored = bed
        .strings("SELECT provider_message_id FROM mail_messages")
        .await;
    assert_eq!(stored.len(), messages.len(), "no duplicate, nothing lost");
    assert_eq!(&stored.into_iter().collect::<BTreeSet<_>>(), messages);
}

fn spawn_backfill(bed: &TestBed) -> tokio::process::Child {
    bed.command()
        .args(["backfill", "--mailbox", bed.mailbox.as_str(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backfill")
}

async fn first_backfill_then_an_unchanged_rerun_writes_nothing(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(80)).await;
    let (messages, threads) = bed.expected_ids().await;

    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    assert_eq!(n(&first, &["messages", "inserted"]), messages.len() as i64);
    assert_stored_once(&bed, &messages).await;
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_threads").await,
        threads.len() as i64
    );
    let attachments = bed.count("SELECT count(*) FROM mail_attachments").await;
    assert!(attachments > 0, "the synthetic mailbox has attachments");
    let events = bed.count("SELECT count(*) FROM ledger_events").await;

    let (code, again) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{again}");
    for kind in ["inserted", "updated"] {
        assert_eq!(n(&again, &["messages", kind]), 0, "{again}");
        assert_eq!(n(&again, &["threads", kind]), 0, "{again}");
    }
    assert_stored_once(&bed, &messages).await;
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_attachments").await,
        attachments
    );
    // The re-run's own start and end, nothing about the mail.
    assert_eq!(
        bed.count("SELECT count(*) FROM ledger_events").await,
        events + 2
    );
    bed.assert_verify_clean().await;
}

async fn kill_9_mid_backfill_then_a_rerun_completes(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(160)).await;
    let (messages, _) = bed.expected_ids().await;
    bed.emulator.set_faults(slow());

    let mut child = spawn_backfill(&bed);
    bed.wait_for_count(
        "SELECT count(*) FROM mail_messages",
        1,
        Duration::from_secs(60),
    )
    .await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the run is still working when it is killed"
    );
    child.start_kill().expect("kill -9");
    assert_eq!(child.wait().await.expect("wait").code(), None);
    let stored = bed.count("SELECT count(*) FROM mail_messages").await;
    assert!(stored < messages.len() as i64, "killed mid-run");

    // At once, not after the lease: the dead run's lock went with its process.
    bed.emulator.set_faults(Faults::default());
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    assert_stored_once(&bed, &messages).await;
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs WHERE status = 'interrupted'")
            .await,
        1,
        "the killed run is recorded as interrupted"
    );
    bed.assert_verify_clean().await;
}

async fn two_concurrent_runs_end_0_and_75(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(120)).await;
    let (messages, _) = bed.expected_ids().await;
    bed.emulator.set_faults(slow());

    let a = spawn_backfill(&bed);
    let b = spawn_backfill(&bed);
    let (a, b) = tokio::join!(a.wait_with_output(), b.wait_with_output());
    let (a, b) = (a.expect("first"), b.expect("second"));
    let mut codes = vec![a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        vec![Some(0), Some(75)],
        "stderr: {}\n---\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert_stored_once(&bed, &messages).await;
    assert_eq!(
        bed.count("SELECT count(*) FROM sync_runs").await,
        1,
        "the refused run recorded nothing"
    );
    bed.assert_verify_clean().await;
}

fn raw_message(n: usize) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\n\
         To: ann@example.com\r\n\
         Subject: added {n}\r\n\
         Message-ID: <backends-{n}@example.org>\r\n\
         Date: {}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Body of message {n}.\r\n",
        chrono::Utc::now().to_rfc2822()
    )
    .into_bytes()
}

async fn sync_mirrors_adds_relabels_trash_and_deletes(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(40)).await;
    let (code, first) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{first}");
    let before = bed.live_labels().await;
    let existing: Vec<String> = before.keys().cloned().collect();
    let (deleted, relabelled, trashed) = (&existing[0..2], &existing[2..5], &existing[5]);

    let mut added = Vec::new();
    for i in 0..3 {
        added.push(
            bed.emulator
                .insert_raw(&bed.mailbox, &raw_message(i), &["INBOX", "UNREAD"], None)
                .unwrap(),
        );
    }
    for id in deleted {
        bed.emulator.delete_message(&bed.mailbox, id).unwrap();
    }
    for id in relabelled {
        bed.emulator
            .modify_labels(&bed.mailbox, id, &["STARRED"], &["UNREAD"])
            .unwrap();
    }
    bed.emulator.trash(&bed.mailbox, trashed).unwrap();

    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    assert_eq!(n(&run, &["messages", "inserted"]), 3);
    assert_eq!(n(&run, &["messages_deleted"]), 2);
    assert_eq!(n(&run, &["labels_changed"]), 4);

    let after = bed.live_labels().await;
    let expected: BTreeSet<String> = existing
        .iter()
        .filter(|id| !deleted.contains(id))
        .chain(added.iter())
        .cloned()
        .collect();
    assert_eq!(after.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let gmail = bed.gmail().await;
    for (id, labels) in &after {
        let m = gmail.message_minimal(&bed.mailbox, id).await.unwrap();
        assert_eq!(labels, &m.label_ids.into_iter().collect(), "labels of {id}");
    }
    assert!(after[trashed].contains("TRASH"));
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_messages WHERE deleted_at IS NOT NULL")
            .await,
        2,
        "deleted mail is kept, marked deleted"
    );

    // Replaying the same history changes nothing.
    let (code, again) = bed.sync().await;
    assert_eq!(code, 0, "{again}");
    assert_eq!(n(&again, &["messages", "inserted"]), 0);
    assert_eq!(n(&again, &["labels_changed"]), 0);
    bed.assert_verify_clean().await;
}

/// The operator's commands: migrate, mailbox add/list/disable, a worker that
/// syncs and checks completeness on its schedule, status --check, verify --full.
async fn the_worker_status_mailbox_and_full_verify_work(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(12)).await;
    let (messages, _) = bed.expected_ids().await;
    let ok = |out: std::process::Output| {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    ok(bed.run(&["migrate"]).await);
    let again = ok(bed.run(&["migrate"]).await);
    // The backend's own migrations, counted from its migration directory.
    let dir = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let files = std::fs::read_dir(format!(
        "{}/../../migrations/{dir}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("migrations")
    .filter(|e| {
        e.as_ref()
            .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
    })
    .count();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        format!("schema up to date ({files} migrations)")
    );
    ok(bed.run(&["mailbox", "add", &bed.mailbox]).await);
    let list = ok(bed.run(&["mailbox", "list", "--json"]).await);
    let list: Value = serde_json::from_slice(&list.stdout).expect("JSON list");
    assert_eq!(list[0]["provider_email"], bed.mailbox.as_str(), "{list}");
    // Due now (a timestamp both backends read).
    bed.execute("UPDATE mailboxes SET next_verify_at = '2000-01-01T00:00:00+00:00'")
        .await;

    let mut worker = bed
        .command()
        .args([
            "worker",
            "--interval",
            "1s",
            "--poll",
            "1s",
            "--verify-every",
            "1h",
        ])
        .spawn()
        .expect("worker");
    bed.wait_for_count(
        "SELECT count(*) FROM verify_runs",
        1,
        Duration::from_secs(60),
    )
    .await;
    assert_stored_once(&bed, &messages).await;
    assert_eq!(
        bed.count(
            "SELECT count(*) FROM verify_runs WHERE ok AND missing_here = 0 AND gone_there = 0"
        )
        .await,
        1,
        "the scheduled check found nothing missing"
    );
    // New mail reaches the database through the worker's next sync.
    let new_id = bed
        .emulator
        .insert_raw(&bed.mailbox, &raw_message(99), &["INBOX"], None)
        .unwrap();
    bed.wait_for_count(
        "SELECT count(*) FROM mail_messages",
        messages.len() as i64 + 1,
        Duration::from_secs(60),
    )
    .await;
    // That sync completes. (With a 1 s interval a later sync may be in
    // flight when the worker is stopped, and is then recorded interrupted,
    // as SIGTERM does: so the run checked is the one that brought the mail.)
    let brought_it = format!(
        "SELECT count(*) FROM sync_runs r JOIN ledger_events e ON e.run_id = r.id
         WHERE e.event_type = 'message.ingested' AND e.subject_key = 'message:{new_id}'
           AND r.status = 'completed'"
    );
    bed.wait_for_count(&brought_it, 1, Duration::from_secs(60))
        .await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().expect("pid").to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(30), worker.wait()).await;

    let status = ok(bed.run(&["status", "--check", "--json"]).await);
    let status: Value = serde_json::from_slice(&status.stdout).expect("JSON status");
    assert_eq!(status[0]["messages"], messages.len() + 1, "{status}");
    assert_eq!(bed.count(&brought_it).await, 1, "{status}");
    assert_eq!(status[0]["last_verify_ok"], true, "{status}");
    ok(bed.run(&["verify", "--full"]).await);
    ok(bed.run(&["mailbox", "disable", &bed.mailbox]).await);
    let list = ok(bed.run(&["mailbox", "list", "--json"]).await);
    let list: Value = serde_json::from_slice(&list.stdout).expect("JSON list");
    assert_eq!(list[0]["enabled"], false, "{list}");
}

/// The embedded default on a machine with nothing configured: no
/// DATABASE_URL, no store, a fresh HOME. The database and the store appear in
/// the data directory, a re-run inserts nothing, verify is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_needs_no_server_and_no_configuration() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailingest"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        async move { cmd.output().await.expect("run mailingest") }
    };
    let demo = [
        "backfill",
        "--demo",
        "--demo-messages",
        "60",
        "--mailbox",
        "demo@example.com",
        "--json",
    ];
    let first = run(&demo).await;
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    let data = home.path().join(".local/share/mailingest");
    assert!(
        stderr.contains(&format!(
            "creating the embedded database {}",
            data.join("mailingest.db").display()
        )),
        "says where, on first use: {stderr}"
    );
    let summary: Value = serde_json::from_slice(&first.stdout).expect("JSON summary");
    // 60 generated; spam and trash are not in a default backfill's scope.
    let inserted = n(&summary, &["messages", "inserted"]);
    assert!(inserted > 40, "{summary}");
    assert_eq!(inserted, n(&summary, &["messages_fetched"]), "{summary}");
    assert!(data.join("mailingest.db").is_file());
    assert!(
        data.join("store/default/sha256").is_dir(),
        "the fs store beside the database"
    );

    let again = run(&demo).await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("creating"), "only on first use: {stderr}");
    let summary: Value = serde_json::from_slice(&again.stdout).expect("JSON summary");
    assert_eq!(n(&summary, &["messages", "inserted"]), 0, "{summary}");

    let verify = run(&["verify", "--offline", "--deep"]).await;
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// The embedded database's file removed under a running backfill (issue 26,
/// finding 9): the next commit notices, the run fails with one line naming
/// the file, and nothing is reported completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_file_removed_mid_run_fails_it_with_one_line() {
    let bed = TestBed::on(Backend::Sqlite, small_mailbox(160)).await;
    bed.emulator.set_faults(slow());
    let child = spawn_backfill(&bed);
    bed.wait_for_count(
        "SELECT count(*) FROM mail_messages",
        1,
        Duration::from_secs(60),
    )
    .await;
    let path = bed.db_url.strip_prefix("sqlite:").expect("an SQLite bed");
    std::fs::remove_file(path).expect("remove the database file");
    let out = child.wait_with_output().await.expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("removed or replaced"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains(path), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stdout.contains("\"completed\""), "{stdout}");
}

/// Gmail's historyId behind the stored cursor (issue 26, finding 6: the
/// mailbox restored or re-created at Google, or the address reassigned):
/// handled like expired history. The fallback window is backed up (new mail
/// archived), the cursor starts over from Gmail's, one line says what
/// happened, and the mailbox is degraded until `verify --full` passes.
async fn a_history_id_behind_the_cursor_starts_over_and_degrades(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(12)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    // The stored cursor is far ahead of anything this Gmail mailbox has.
    bed.execute("UPDATE mailboxes SET history_id = history_id + 1000000")
        .await;
    let arrived = bed
        .emulator
        .insert_raw(
            &bed.mailbox,
            b"From: a@example.org\r\nSubject: after the restore\r\n\r\nbody\r\n",
            &["INBOX"],
            None,
        )
        .unwrap();

    let out = bed
        .run(&["sync", "--mailbox", bed.mailbox.as_str(), "--json"])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(out.status.code(), Some(0), "{summary}{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("behind the stored cursor"))
            .count(),
        1,
        "{stderr}{summary}"
    );
    assert_eq!(summary["history_expired"], true, "{summary}");
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM mail_messages WHERE provider_message_id = '{arrived}'"
        ))
        .await,
        1,
        "new mail archived: {summary}"
    );
    let cursor = bed.count("SELECT history_id FROM mailboxes").await;
    let gmail = bed.emulator.history_id(&bed.mailbox).expect("history id") as i64;
    assert_eq!(cursor, gmail, "the cursor starts over from Gmail's");
    assert_eq!(
        bed.count("SELECT count(*) FROM ledger_events WHERE event_type = 'history.expired'")
            .await,
        1
    );

    // Degraded until a completeness check passes, also across a normal sync.
    let (code, status) = bed.run_json(&["status", "--check"]).await;
    assert_eq!(code, 5, "{status}");
    assert_eq!(
        status[0]["degraded"][0]["reason"], "history_rewound",
        "{status}"
    );
    let (code, again) = bed.sync().await;
    assert_eq!(code, 0, "{again}");
    assert_eq!(n(&again, &["messages", "inserted"]), 0, "{again}");
    let (code, _) = bed.run_json(&["status", "--check"]).await;
    assert_eq!(code, 5);
    let out = bed.run(&["verify", "--full"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (code, status) = bed.run_json(&["status", "--check"]).await;
    assert_eq!(code, 0, "{status}");
}
