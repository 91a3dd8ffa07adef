//! One conformance suite for the repository boundary, run against both
//! backends (PostgreSQL on the test server, SQLite in a fresh file), through
//! the `Repository` / `RepoTx` traits only, as the engines use them:
//! idempotent upserts with Inserted / Updated / Unchanged outcomes, races on
//! one natural key through separate connections and separate processes, the
//! ledger append-only and hash-chained, the run lease exclusive and fenced,
//! the cursor monotonic.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{SHA_A, SHA_B, attachment, message, thread};
use ingest::domain::{
    LabelChangeKind, LabelKind, MailboxId, MailboxLabel, OrphanReason, OrphanUpsert,
};
use ingest::engine::Window;
use ingest::repo::{
    BlobUpsert, CursorUpdate, DatabaseTarget, FailureKind, HeldRun, HistoryCursor, LabelUpdate,
    MessageFailure, NextSync, Outcome, RepoError, Repository, RunEnd, RunKind, RunStart, RunStatus,
    VerifyRun,
};
use ledger::{EventType, NewEvent, Subject};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{PgPool, SqlitePool};
use tempfile::TempDir;
use tokio::sync::Barrier;

const WRITERS: usize = 16;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres,
    Sqlite,
}

/// A fresh database of one backend: its URL, and a raw pool for what the
/// traits do not offer (tampering, counting). Dropping it drops the database.
struct Fresh {
    url: String,
    raw: Raw,
    _dir: Option<TempDir>,
    pg_name: Option<String>,
}

enum Raw {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl Fresh {
    async fn new(backend: Backend) -> Fresh {
        match backend {
            Backend::Postgres => {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "mi_conf_{}_{}_{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed),
                    chrono::Utc::now().timestamp_micros() % 1_000_000
                );
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin_url())
                    .await
                    .expect("the test server (run scripts/test.sh)");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let url = format!("{}/{name}", admin_url().rsplit_once('/').unwrap().0);
                let raw = Raw::Pg(PgPool::connect_lazy(&url).unwrap());
                Fresh {
                    url,
                    raw,
                    _dir: None,
                    pg_name: Some(name),
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("mailingest.db");
                let raw = Raw::Sqlite(SqlitePool::connect_lazy_with(
                    SqliteConnectOptions::new()
                        .filename(&path)
                        .busy_timeout(Duration::from_secs(30)),
                ));
                Fresh {
                    url: format!("sqlite:{}", path.display()),
                    raw,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
        }
    }

    /// A repository of its own (its own pool, so its own connections).
    async fn repo(&self) -> Arc<dyn Repository> {
        DatabaseTarget::parse(&self.url)
            .unwrap()
            .open(4)
            .await
            .expect("open and migrate")
    }

    async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let q = sqlx::AssertSqlSafe(sql.to_owned());
        Ok(match &self.raw {
            Raw::Pg(pool) => sqlx::query(q).execute(pool).await?.rows_affected(),
            Raw::Sqlite(pool) => sqlx::query(q).execute(pool).await?.rows_affected(),
        })
    }

    async fn count(&self, sql: &str) -> i64 {
        let q = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.raw {
            Raw::Pg(pool) => sqlx::query_scalar(q).fetch_one(pool).await,
            Raw::Sqlite(pool) => sqlx::query_scalar(q).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async move {
                let admin = PgPool::connect(&admin_url()).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await
                .ok()
            })
        })
        .join();
    }
}

/// Each case once per backend, as `case::postgres` and `case::sqlite`.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$case(Backend::Postgres).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$case(Backend::Sqlite).await
            }
        }
    )*};
}

on_both_backends!(
    upserts_report_inserted_updated_unchanged,
    sixteen_concurrent_registrations_make_one_mailbox,
    sixteen_concurrent_runs_storing_one_blob_make_one_row,
    sixteen_processes_registering_one_mailbox_make_one_row,
    the_ledger_is_append_only_and_its_chain_verifies,
    the_run_lease_is_exclusive_and_fenced,
    the_cursor_only_moves_forward,
    every_other_statement_means_the_same,
    gc_claims_only_unrecorded_blobs_and_writers_wait_for_it,
    a_purge_yields_to_a_writer_recording_the_blob_again,
    labels_refresh_records_only_real_changes_and_keeps_deleted_names,
    a_feed_consumer_is_exclusive_fenced_and_moves_forward_only,
    orphans_are_kept_once_and_hold_their_blob_in_their_org,
);

fn start(mailbox_id: i64, stale_after: Duration) -> RunStart {
    RunStart {
        mailbox_id,
        kind: RunKind::Backfill,
        window: None,
        start_history_id: None,
        stale_after,
    }
}

async fn run(repo: &Arc<dyn Repository>, email: &str) -> HeldRun {
    let (mailbox_id, _) = repo.register_mailbox("org-1", email).await.unwrap();
    repo.start_run(&start(mailbox_id, Duration::from_secs(600)))
        .await
        .expect("start run")
}

fn end(status: RunStatus, cursor: CursorUpdate) -> RunEnd {
    RunEnd {
        status,
        counts: json!({"messages": 1}),
        error: None,
        cursor,
    }
}

fn blob(sha: &str) -> BlobUpsert {
    BlobUpsert {
        sha256: sha.to_owned(),
        size: 10,
        storage_key: format!("org-1/sha256/{}/{}/{sha}", &sha[..2], &sha[2..4]),
    }
}

async fn upserts_report_inserted_updated_unchanged(backend: Backend) {
    let db = Fresh::new(backend).await;
    let repo = db.repo().await;
    let (mb, outcome) = repo
        .register_mailbox("org-1", "User@Example.com")
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Inserted);
    assert_eq!(
        repo.register_mailbox("org-1", "user@example.com")
            .await
            .unwrap(),
        (mb, Outcome::Unchanged)
    );
    let mut held = repo
        .start_run(&start(mb, Duration::from_secs(600)))
        .await
        .unwrap();

    let mut tx = repo.begin(held.fence).await.unwrap();
    let blobs = tx
        .upsert_blobs(&[blob(SHA_A), blob(SHA_B), blob(SHA_A)])
        .await
        .unwrap();
    assert_eq!(
        blobs,
        vec![Outcome::Inserted, Outcome::Inserted, Outcome::Unchanged]
    );
    let t = tx.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    assert_eq!(t[0].outcome, Outcome::Inserted);
    let m = tx
        .upsert_messages(&[message(mb, t[0].id, "m1"), message(mb, t[0].id, "m2")])
        .await
        .unwrap();
    assert!(m.iter().all(|r| r.outcome == Outcome::Inserted));
    let a = tx
        .upsert_attachments(&[attachment(m[0].id, "1"), attachment(m[0].id, "2")])
        .await
        .unwrap();
    assert!(a.iter().all(|r| r.outcome == Outcome::Inserted));
    tx.append_events(&[NewEvent::new(
        EventType::MessageIngested,
        Subject::Message("m1".into()),
        json!({}),
    )])
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // The same rows again: nothing changes, the ids are the same.
    let mut tx = repo.begin(held.fence).await.unwrap();
    assert_eq!(
        tx.upsert_blobs(&[blob(SHA_A)]).await.unwrap(),
        vec![Outcome::Unchanged]
    );
    let t2 = tx.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    assert_eq!((t2[0].id, t2[0].outcome), (t[0].id, Outcome::Unchanged));
    let m2 = tx
        .upsert_messages(&[message(mb, t[0].id, "m1")])
        .await
        .unwrap();
    assert_eq!((m2[0].id, m2[0].outcome), (m[0].id, Outcome::Unchanged));
    let a2 = tx
        .upsert_attachments(&[attachment(m[0].id, "1")])
        .await
        .unwrap();
    assert_eq!((a2[0].id, a2[0].outcome), (a[0].id, Outcome::Unchanged));

    // A changed column updates; a repeated key in one batch is one row, the last wins.
    let mut changed = thread(mb, "t1");
    changed.snippet = Some("changed".into());
    assert_eq!(
        tx.upsert_threads(&[changed]).await.unwrap()[0].outcome,
        Outcome::Updated
    );
    let mut relabelled = message(mb, t[0].id, "m1");
    relabelled.label_ids = vec!["INBOX".into()];
    let r = tx
        .upsert_messages(&[message(mb, t[0].id, "m1"), relabelled])
        .await
        .unwrap();
    assert_eq!(r[0], r[1], "one result for one key");
    assert_eq!((r[1].id, r[1].outcome), (m[0].id, Outcome::Updated));
    let mut renamed = attachment(m[0].id, "2");
    renamed.filename = Some("report.pdf".into());
    assert_eq!(
        tx.upsert_attachments(&[renamed]).await.unwrap()[0].outcome,
        Outcome::Updated
    );

    // Labels and deletes report only the rows they changed.
    let labels = |id: &str, l: &[&str]| LabelUpdate {
        provider_message_id: id.into(),
        label_ids: l.iter().map(|s| s.to_string()).collect(),
        history_id: None,
    };
    assert_eq!(
        tx.update_labels(&[labels("m1", &["INBOX"]), labels("m2", &["STARRED"])])
            .await
            .unwrap(),
        vec!["m2".to_string()]
    );
    let ids = vec!["m2".to_string(), "unknown".to_string()];
    assert_eq!(
        tx.soft_delete_messages(&ids, chrono::Utc::now())
            .await
            .unwrap(),
        vec!["m2".to_string()]
    );
    assert!(
        tx.soft_delete_messages(&ids, chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    let threads = tx.thread_ids_of_messages(&ids).await.unwrap();
    assert_eq!(threads, vec![t[0].id]);
    assert_eq!(tx.refresh_threads(&threads).await.unwrap(), 1);
    assert_eq!(tx.refresh_threads(&threads).await.unwrap(), 0, "unchanged");
    tx.commit().await.unwrap();
    repo.finish_run(&mut held, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();

    assert_eq!(db.count("SELECT count(*) FROM mail_messages").await, 2);
    assert_eq!(db.count("SELECT count(*) FROM mail_attachments").await, 2);
    assert_eq!(db.count("SELECT count(*) FROM blobs").await, 2);
    assert_eq!(
        db.count("SELECT sum(message_count) FROM mail_threads")
            .await,
        1,
        "the deleted message no longer counts"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM mail_messages WHERE body_text = 'bodywith nul'")
            .await,
        2,
        "NUL removed as on every backend"
    );
    let stored = repo
        .stored_message_ids(mb, &["m1".into(), "m2".into(), "m3".into()])
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    let stored_labels = repo
        .stored_labels(mb, &["m1".into(), "m2".into(), "m3".into()])
        .await
        .unwrap();
    assert_eq!(
        stored_labels,
        std::collections::HashMap::from([
            ("m1".to_string(), vec!["INBOX".to_string()]),
            ("m2".to_string(), vec!["STARRED".to_string()]),
        ]),
        "deleted messages too, unknown ones not"
    );
    let history = repo.thread_history_ids(mb, &["t1".into()]).await.unwrap();
    assert_eq!(history["t1"].history_id, Some(1000));
    assert!(repo.duplicate_keys("org-1").await.unwrap().is_empty());
}

async fn sixteen_concurrent_registrations_make_one_mailbox(backend: Backend) {
    let db = Fresh::new(backend).await;
    let mut repos = Vec::new();
    for _ in 0..WRITERS {
        repos.push(db.repo().await);
    }
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = repos
        .into_iter()
        .map(|repo| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                repo.register_mailbox("org-1", "raced@example.com").await
            })
        })
        .collect();
    let mut ids = Vec::new();
    let mut inserted = 0;
    for task in tasks {
        let (id, outcome) = task.await.unwrap().expect("register");
        ids.push(id);
        inserted += usize::from(outcome == Outcome::Inserted);
    }
    assert_eq!(inserted, 1, "exactly one writer inserted");
    ids.dedup();
    assert_eq!(ids.len(), 1, "every writer got the one row");
    assert_eq!(db.count("SELECT count(*) FROM mailboxes").await, 1);
}

async fn sixteen_concurrent_runs_storing_one_blob_make_one_row(backend: Backend) {
    let db = Fresh::new(backend).await;
    let mut runs = Vec::new();
    for i in 0..WRITERS {
        let repo = db.repo().await;
        let held = run(&repo, &format!("writer{i}@example.com")).await;
        runs.push((repo, held));
    }
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = runs
        .into_iter()
        .map(|(repo, mut held)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut tx = repo.begin(held.fence).await.unwrap();
                let outcome = tx.upsert_blobs(&[blob(SHA_A)]).await.unwrap()[0];
                tx.commit().await.unwrap();
                repo.finish_run(&mut held, &end(RunStatus::Completed, CursorUpdate::Keep))
                    .await
                    .unwrap();
                outcome
            })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        inserted += usize::from(task.await.unwrap() == Outcome::Inserted);
    }
    assert_eq!(inserted, 1);
    assert_eq!(db.count("SELECT count(*) FROM blobs").await, 1);
}

/// The child side of the process race: registers the mailbox in the database
/// `CONFORMANCE_CHILD_URL` names and prints the outcome. A no-op otherwise.
#[tokio::test]
async fn process_race_child() {
    let Ok(url) = std::env::var("CONFORMANCE_CHILD_URL") else {
        return;
    };
    let repo = DatabaseTarget::parse(&url).unwrap().open(1).await.unwrap();
    let (id, outcome) = repo
        .register_mailbox("org-1", "processes@example.com")
        .await
        .unwrap();
    println!("CHILD-RESULT {id} {outcome:?}");
}

async fn sixteen_processes_registering_one_mailbox_make_one_row(backend: Backend) {
    let db = Fresh::new(backend).await;
    drop(db.repo().await); // migrated before the race
    let children: Vec<_> = (0..WRITERS)
        .map(|_| {
            tokio::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "process_race_child", "--nocapture"])
                .env("CONFORMANCE_CHILD_URL", &db.url)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn a writer process")
        })
        .collect();
    let mut results = Vec::new();
    for child in children {
        let out = child.wait_with_output().await.unwrap();
        assert!(out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("CHILD-RESULT "))
            .unwrap_or_else(|| panic!("no result from the child: {stdout}"))
            .to_owned();
        results.push(line);
    }
    let inserted = results.iter().filter(|r| r.ends_with("Inserted")).count();
    assert_eq!(inserted, 1, "{results:?}");
    assert_eq!(db.count("SELECT count(*) FROM mailboxes").await, 1);
}

async fn the_ledger_is_append_only_and_its_chain_verifies(backend: Backend) {
    let db = Fresh::new(backend).await;
    let repo = db.repo().await;
    let mut held = run(&repo, "ledger@example.com").await;
    let mut tx = repo.begin(held.fence).await.unwrap();
    let events: Vec<NewEvent> = (0..5)
        .map(|i| {
            NewEvent::new(
                EventType::MessageIngested,
                Subject::Message(format!("m{i}")),
                json!({"n": i, "text": "Grüße"}),
            )
        })
        .collect();
    tx.append_events(&events).await.unwrap();
    tx.commit().await.unwrap();
    repo.finish_run(&mut held, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();
    // Finishing again is a no-op, never a second terminal event.
    repo.finish_run(&mut held, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();

    let report = repo.verify_ledger(held.fence.mailbox_id).await.unwrap();
    assert_eq!(report.events, 7, "started, 5 ingested, completed");
    assert!(report.is_ok(), "{report:?}");

    for sql in [
        "UPDATE ledger_events SET payload = '{}' WHERE seq = 2",
        "DELETE FROM ledger_events WHERE seq = 7",
        "DELETE FROM ledger_events",
    ] {
        let err = db.execute(sql).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let terminal = db
        .execute(&format!(
            "INSERT INTO ledger_events (mailbox_id, seq, run_id, event_type, subject_key,
                                        payload, created_at, prev_hash, hash)
             VALUES ({mb}, 8, {run}, 'sync.failed', 'run:{run}', '{{}}', '2026-01-01T00:00:00+00:00',
                     '{h}', '{h}')",
            mb = held.fence.mailbox_id,
            run = held.fence.run_id,
            h = "0".repeat(64),
        ))
        .await;
    let err = terminal
        .expect_err("a second terminal event for the run")
        .to_string();
    assert!(
        err.contains("ledger_events_one_terminal") || err.contains("ledger_events.run_id"),
        "refused by the one-terminal-event index: {err}"
    );
    assert_eq!(db.count("SELECT count(*) FROM ledger_events").await, 7);

    // Someone who can lift the rule rewrites an event: the chain shows where.
    let lift = match backend {
        Backend::Postgres => {
            "ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_update_delete"
        }
        Backend::Sqlite => "DROP TRIGGER ledger_events_no_update",
    };
    db.execute(lift).await.unwrap();
    let forged = Subject::Message("forged".into()).to_string();
    db.execute(&format!(
        "UPDATE ledger_events SET subject_key = '{forged}' WHERE seq = 3"
    ))
    .await
    .unwrap();
    let report = repo.verify_ledger(held.fence.mailbox_id).await.unwrap();
    assert_eq!(
        report.first_fault.as_ref().map(|f| f.seq),
        Some(3),
        "{report:?}"
    );
}

async fn the_run_lease_is_exclusive_and_fenced(backend: Backend) {
    let db = Fresh::new(backend).await;
    let repo = db.repo().await;
    let other = db.repo().await;
    let (mb, _) = repo
        .register_mailbox("org-1", "lease@example.com")
        .await
        .unwrap();

    // Held: a second run is refused, naming the live run.
    let first = repo
        .start_run(&start(mb, Duration::from_secs(600)))
        .await
        .unwrap();
    match other.start_run(&start(mb, Duration::from_secs(600))).await {
        Err(RepoError::Locked { run_id, .. }) => assert_eq!(run_id, Some(first.fence.run_id)),
        other => panic!("expected Locked, got {other:?}"),
    }

    // The holder goes away without finishing (its process died): the next run
    // starts at once and ends the dead one as interrupted.
    let dead = first.fence;
    drop(first);
    // Within seconds, not after the 600 s lease (a server notices a dropped
    // connection a moment after it drops).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut second = loop {
        match other.start_run(&start(mb, Duration::from_secs(600))).await {
            Ok(held) => break held,
            Err(RepoError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("a dead holder must not block the mailbox: {e}"),
        }
    };
    match repo.begin(dead).await {
        Err(RepoError::LeaseLost { run_id }) => assert_eq!(run_id, dead.run_id),
        Ok(_) => panic!("the dead run must be fenced out"),
        Err(e) => panic!("expected LeaseLost, got {e}"),
    }

    // A live holder that missed its lease is taken over, and fenced out.
    let mut third = repo
        .start_run(&start(mb, Duration::ZERO))
        .await
        .expect("a run past its lease is taken over");
    assert!(matches!(
        other.begin(second.fence).await,
        Err(RepoError::LeaseLost { .. })
    ));
    assert!(matches!(
        other
            .finish_run(&mut second, &end(RunStatus::Completed, CursorUpdate::Keep))
            .await,
        Err(RepoError::LeaseLost { .. })
    ));
    assert!(!other.heartbeat(second.fence).await.unwrap());
    assert!(repo.heartbeat(third.fence).await.unwrap());
    // The run that took over holds the mailbox like any other, even once the
    // run it replaced has gone away.
    drop(second);
    match other.start_run(&start(mb, Duration::from_secs(600))).await {
        Err(RepoError::Locked { run_id, .. }) => assert_eq!(run_id, Some(third.fence.run_id)),
        other => panic!("expected Locked by the run that took over, got {other:?}"),
    }
    repo.finish_run(&mut third, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();

    assert_eq!(
        db.count("SELECT count(*) FROM sync_runs WHERE status = 'interrupted'")
            .await,
        2
    );
    let report = repo.verify_ledger(mb).await.unwrap();
    assert!(report.is_ok(), "each run ended once: {report:?}");
    // The schema itself allows one running run per mailbox.
    let insert = format!("INSERT INTO sync_runs (mailbox_id, kind) VALUES ({mb}, 'sync')");
    db.execute(&insert).await.expect("one running run");
    assert!(db.execute(&insert).await.is_err(), "a second running run");
}

async fn the_cursor_only_moves_forward(backend: Backend) {
    let db = Fresh::new(backend).await;
    let repo = db.repo().await;
    let mut held = run(&repo, "cursor@example.com").await;
    let mb = held.fence.mailbox_id;
    assert_eq!(repo.mailbox_cursor(mb).await.unwrap(), None);
    for (to, expect) in [(100, 100), (50, 100), (150, 150)] {
        let mut tx = repo.begin(held.fence).await.unwrap();
        tx.advance_cursor(HistoryCursor(to)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            repo.mailbox_cursor(mb).await.unwrap(),
            Some(HistoryCursor(expect))
        );
    }
    repo.finish_run(
        &mut held,
        &end(
            RunStatus::Completed,
            CursorUpdate::IfAbsent(HistoryCursor(10)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        repo.mailbox_cursor(mb).await.unwrap(),
        Some(HistoryCursor(150)),
        "IfAbsent never moves a cursor that exists"
    );
    let mut later = run(&repo, "cursor@example.com").await;
    repo.finish_run(
        &mut later,
        &end(
            RunStatus::Completed,
            CursorUpdate::Advance(HistoryCursor(120)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        repo.mailbox_cursor(mb).await.unwrap(),
        Some(HistoryCursor(150)),
        "never backwards"
    );
}

fn label(id: &str, name: &str, kind: LabelKind) -> MailboxLabel {
    MailboxLabel {
        id: id.into(),
        name: name.into(),
        kind,
        text_color: None,
        background_color: None,
        message_list_visibility: None,
        label_list_visibility: None,
    }
}

/// `RepoTx::refresh_labels` and `LabelReads`: the first listing creates
/// every label, the same listing again changes nothing, a rename, a colour
/// and a deletion are each reported once; a deleted label keeps its row and
/// name, and a run that lost its fence writes none of it.
async fn labels_refresh_records_only_real_changes_and_keeps_deleted_names(backend: Backend) {
    let db = Fresh::new(backend).await;
    let repo = db.repo().await;
    let mut held = run(&repo, "labels@example.com").await;
    let refresh = |listed: Vec<MailboxLabel>| {
        let repo = repo.clone();
        let fence = held.fence;
        async move {
            let mut tx = repo.begin(fence).await.unwrap();
            let changes = tx.refresh_labels(&listed).await.unwrap();
            tx.commit().await.unwrap();
            changes
                .into_iter()
                .map(|c| (c.id, c.kind))
                .collect::<Vec<_>>()
        }
    };
    let first = vec![
        label("INBOX", "INBOX", LabelKind::System),
        label("Label_1", "work", LabelKind::User),
        label("Label_2", "caf\u{e9}\0", LabelKind::User),
    ];
    assert_eq!(
        refresh(first.clone()).await,
        vec![
            ("INBOX".into(), LabelChangeKind::Created),
            ("Label_1".into(), LabelChangeKind::Created),
            ("Label_2".into(), LabelChangeKind::Created),
        ]
    );
    // NUL cannot be stored: the name is kept without it, and the same
    // listing again is no change.
    assert_eq!(refresh(first.clone()).await, vec![]);
    let mut coloured = label("Label_2", "caf\u{e9}", LabelKind::User);
    coloured.background_color = Some("#fad165".into());
    assert_eq!(
        refresh(vec![
            label("INBOX", "INBOX", LabelKind::System),
            label("Label_1", "work/2026", LabelKind::User),
            coloured.clone(),
        ])
        .await,
        vec![
            (
                "Label_1".into(),
                LabelChangeKind::Renamed {
                    from: "work".into()
                }
            ),
            ("Label_2".into(), LabelChangeKind::Updated),
        ]
    );
    assert_eq!(
        refresh(vec![
            label("INBOX", "INBOX", LabelKind::System),
            coloured.clone()
        ])
        .await,
        vec![("Label_1".into(), LabelChangeKind::Deleted)]
    );
    let rows = repo.mailbox_labels(&[held.fence.mailbox_id]).await.unwrap();
    let seen: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| (r.label.id.as_str(), r.label.name.as_str(), r.deleted))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("INBOX", "INBOX", false),
            ("Label_1", "work/2026", true),
            ("Label_2", "caf\u{e9}", false),
        ]
    );
    assert_eq!(rows[2].label.background_color.as_deref(), Some("#fad165"));
    assert_eq!(rows[0].mailbox, "labels@example.com");

    // Fenced out: nothing is written.
    repo.finish_run(&mut held, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();
    match repo.begin(held.fence).await {
        Err(_) => {}
        Ok(mut tx) => assert!(
            tx.refresh_labels(&first).await.is_err(),
            "a finished run refreshes nothing"
        ),
    }
    assert_eq!(
        db.count("SELECT count(*) FROM mailbox_labels WHERE deleted_at IS NULL")
            .await,
        2
    );
}

fn failure(id: &str, kind: FailureKind) -> MessageFailure {
    MessageFailure {
        provider_message_id: id.into(),
        provider_thread_id: Some("t1".into()),
        kind,
        reason: format!("{kind:?} \0 by the test"),
        raw_sha256: None,
    }
}

/// The statements the cases above do not reach, each checked for what it
/// means: the quarantine, the schedule, claims, the shared quota, and the
/// reads of verify and repair.
async fn every_other_statement_means_the_same(backend: Backend) {
    let db = Fresh::new(backend).await;
    let repo = db.repo().await;
    let (mb, _) = repo
        .add_mailbox("org-1", "other@example.com", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let window = Window::new(now - chrono::Duration::days(7), now).unwrap();
    let mut held = repo
        .start_run(&RunStart {
            window: Some(window),
            ..start(mb, Duration::from_secs(600))
        })
        .await
        .unwrap();

    // Rows for repair and verify: m1 with raw SHA_A and a part SHA_B.
    let mut tx = repo.begin(held.fence).await.unwrap();
    tx.upsert_blobs(&[blob(SHA_A), blob(SHA_B)]).await.unwrap();
    let t = tx.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    let m = tx
        .upsert_messages(&[message(mb, t[0].id, "m1")])
        .await
        .unwrap();
    tx.upsert_attachments(&[attachment(m[0].id, "1")])
        .await
        .unwrap();
    tx.append_events(&[
        NewEvent::new(
            EventType::MessageSkipped,
            Subject::Message("m9".into()),
            json!({}),
        ),
        NewEvent::new(
            EventType::MessageIngested,
            Subject::Message("ghost".into()),
            json!({}),
        ),
    ])
    .await
    .unwrap();
    // The quarantine: a repeated id counts once, the last failure wins.
    tx.record_failures(&[
        failure("q1", FailureKind::Unavailable),
        failure("q2", FailureKind::Unavailable),
        failure("q2", FailureKind::Rejected),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let listed = repo.quarantined(Some(mb)).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|q| q.attempts == 1));
    assert!(!listed[1].reason.contains('\0'), "NUL removed");
    let due: Vec<String> = repo
        .due_quarantined(mb, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.provider_message_id)
        .collect();
    assert_eq!(
        due,
        vec!["q1"],
        "a rejected message backs off, an unavailable one does not"
    );
    // The same run failing them again does not count a second attempt.
    let mut tx = repo.begin(held.fence).await.unwrap();
    tx.record_failures(&[failure("q1", FailureKind::Unavailable)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(repo.quarantined(Some(mb)).await.unwrap()[0].attempts, 1);
    assert_eq!(repo.requeue_quarantined(mb).await.unwrap(), 2);
    assert_eq!(repo.due_quarantined(mb, 10).await.unwrap().len(), 2);
    let mut tx = repo.begin(held.fence).await.unwrap();
    assert_eq!(
        tx.release_quarantined(&["q1".into(), "m1".into()])
            .await
            .unwrap(),
        vec!["q1".to_string()]
    );
    tx.commit().await.unwrap();
    repo.finish_run(&mut held, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();
    // The next run's failure counts a second attempt, backing off 15 min x 4.
    let mut next = run(&repo, "other@example.com").await;
    let mut tx = repo.begin(next.fence).await.unwrap();
    tx.record_failures(&[failure("q2", FailureKind::Rejected)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let q2 = repo.quarantined(Some(mb)).await.unwrap().remove(0);
    assert_eq!(q2.attempts, 2, "a second run's failure is a second attempt");
    assert!(q2.next_attempt_at > chrono::Utc::now() + chrono::Duration::minutes(50));
    repo.finish_run(&mut next, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();

    // Reads of verify and repair.
    assert_eq!(repo.last_backfill_window(mb).await.unwrap(), Some(window));
    assert_eq!(repo.blob_owners(mb, SHA_A).await.unwrap(), vec!["m1"]);
    assert_eq!(repo.blob_owners(mb, SHA_B).await.unwrap(), vec!["m1"]);
    let mut refs = repo.referenced_blobs(mb).await.unwrap();
    refs.sort();
    assert_eq!(refs, vec![SHA_A, SHA_B]);
    let skipped = repo
        .skipped_message_ids(mb, &["m9".into(), "m1".into()])
        .await
        .unwrap();
    assert_eq!(skipped.into_iter().collect::<Vec<_>>(), vec!["m9"]);
    assert_eq!(
        repo.messages_without_ingest_event(mb, 10).await.unwrap(),
        vec!["m1"]
    );
    assert_eq!(
        repo.ingest_events_without_message(mb, 10).await.unwrap(),
        vec!["ghost"]
    );
    let live = repo.live_messages(mb).await.unwrap();
    assert_eq!(
        live,
        vec![(
            "m1".to_string(),
            vec!["INBOX".to_string(), "UNREAD".to_string()]
        )]
    );
    let counts = repo.mailbox_counts(mb).await.unwrap();
    assert_eq!(
        (
            counts.threads,
            counts.messages,
            counts.attachments,
            counts.blobs,
            counts.runs
        ),
        (1, 1, 1, 2, 2)
    );
    // The same address in another org is another org's mailbox: no read of
    // one org returns it.
    let (theirs, _) = repo
        .register_mailbox("org-2", "other@example.com")
        .await
        .unwrap();
    assert_eq!(
        repo.mailboxes_to_verify("org-1", Some("OTHER@example.com"))
            .await
            .unwrap(),
        vec![(mb, "other@example.com".to_string())]
    );
    assert_eq!(
        repo.mailboxes_to_verify("org-2", None).await.unwrap(),
        vec![(theirs, "other@example.com".to_string())]
    );
    let ids = |rows: Vec<ingest::repo::MailboxRow>| rows.iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(repo.list_mailboxes("org-1").await.unwrap()), [mb]);
    assert_eq!(ids(repo.list_mailboxes("org-2").await.unwrap()), [theirs]);
    let status_ids = |rows: Vec<ingest::repo::MailboxStatus>| {
        rows.iter().map(|s| s.mailbox.id).collect::<Vec<_>>()
    };
    assert_eq!(
        status_ids(repo.mailbox_status("org-2").await.unwrap()),
        [theirs]
    );

    // The schedule: failures back off and are counted, success resets them,
    // and a due mailbox is claimed once.
    repo.schedule_next(
        mb,
        NextSync::AfterFailure {
            error: "boom",
            interval: None,
        },
    )
    .await
    .unwrap();
    let row = repo.list_mailboxes("org-1").await.unwrap().remove(0);
    assert_eq!(
        (row.consecutive_failures, row.last_error.as_deref()),
        (1, Some("boom"))
    );
    assert!(row.next_sync_at > chrono::Utc::now() + chrono::Duration::seconds(100));
    repo.schedule_next(mb, NextSync::AfterSuccess { interval: None })
        .await
        .unwrap();
    let row = repo.list_mailboxes("org-1").await.unwrap().remove(0);
    assert_eq!((row.consecutive_failures, row.last_error), (0, None));
    assert!(row.next_sync_at > chrono::Utc::now() + chrono::Duration::seconds(50));
    assert!(
        repo.claim_due("org-1", 10, Duration::from_secs(180))
            .await
            .unwrap()
            .is_empty()
    );
    repo.schedule_next(
        mb,
        NextSync::Retry {
            after: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    let claimed = repo
        .claim_due("org-1", 10, Duration::from_secs(180))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(claimed[0].next_sync_at > chrono::Utc::now() + chrono::Duration::seconds(170));
    assert!(
        repo.claim_due("org-1", 10, Duration::from_secs(180))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        repo.disable_mailbox("org-1", "OTHER@example.com")
            .await
            .unwrap()
    );
    let (_, outcome) = repo
        .add_mailbox("org-1", "other@example.com", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Updated, "re-enabled");

    // Completeness checks: claimed once when due, recorded for status.
    db.execute("UPDATE mailboxes SET next_verify_at = '2000-01-01T00:00:00+00:00'")
        .await
        .unwrap();
    assert!(
        repo.claim_verify(MailboxId(mb), Duration::from_secs(3600))
            .await
            .unwrap()
    );
    assert!(
        !repo
            .claim_verify(MailboxId(mb), Duration::from_secs(3600))
            .await
            .unwrap()
    );
    repo.record_verify(
        MailboxId(mb),
        chrono::Utc::now(),
        &VerifyRun {
            ok: false,
            missing_here: 1,
            gone_there: 0,
            findings: vec!["1 message missing: m7".into()],
        },
    )
    .await
    .unwrap();
    let status = repo.mailbox_status("org-1").await.unwrap().remove(0);
    assert_eq!(status.last_verify_ok, Some(false));
    assert_eq!(
        status.last_verify_findings,
        Some(vec!["1 message missing: m7".to_string()])
    );
    assert_eq!((status.messages, status.quarantined), (1, 1));
    assert_eq!(status.last_run_status, Some(RunStatus::Completed));

    // The shared quota: debited by each reservation, refilled with time.
    let left = repo
        .reserve_shared_quota("project", 10.0, 100.0, 50.0)
        .await
        .unwrap();
    assert_eq!(left, 40.0);
    let left = repo
        .reserve_shared_quota("project", 45.0, 100.0, 50.0)
        .await
        .unwrap();
    assert!((-5.0..0.0).contains(&left), "{left}");
    let before = left;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left = repo
        .reserve_shared_quota("project", 0.0, 100.0, 50.0)
        .await
        .unwrap();
    // At least 0.2 s of refill at 100/s, never above the burst.
    assert!(left >= before + 19.0 && left <= 50.0, "{before} -> {left}");

    // The quota day: units add up to the limit and no further; a refusal adds
    // nothing; another day and another key start from zero.
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let next = day.succ_opt().unwrap();
    assert_eq!(repo.daily_units("project", day).await.unwrap(), 0);
    assert_eq!(
        repo.reserve_daily_units("project", day, 60, 100)
            .await
            .unwrap(),
        Some(60)
    );
    assert_eq!(
        repo.reserve_daily_units("project", day, 40, 100)
            .await
            .unwrap(),
        Some(100)
    );
    assert_eq!(
        repo.reserve_daily_units("project", day, 1, 100)
            .await
            .unwrap(),
        None
    );
    assert_eq!(repo.daily_units("project", day).await.unwrap(), 100);
    assert_eq!(
        repo.reserve_daily_units("project", next, 101, 100)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repo.reserve_daily_units("project", next, 5, 100)
            .await
            .unwrap(),
        Some(5)
    );
    assert_eq!(
        repo.reserve_daily_units("other", day, 5, 100)
            .await
            .unwrap(),
        Some(5)
    );
    assert_eq!(repo.daily_units("project", day).await.unwrap(), 100);

    // Racing reservations never carry the day past its limit: 16 writers of 10
    // units against 100, at once, get exactly 10 grants between them.
    let race = chrono::NaiveDate::from_ymd_opt(2026, 12, 9).unwrap();
    let grants = futures::future::join_all((0..16).map(|_| {
        let repo = repo.clone();
        async move {
            repo.reserve_daily_units("race", race, 10, 100)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(
        grants.iter().filter(|g| g.is_some()).count(),
        10,
        "{grants:?}"
    );
    assert_eq!(repo.daily_units("race", race).await.unwrap(), 100);
}

/// gc's half of its protocol (see `ingest::gc`): it claims only hashes no row
/// records, and a writer recording a claimed hash waits until gc's transaction
/// has ended, then inserts the row as new (which makes it look at the store).
async fn gc_claims_only_unrecorded_blobs_and_writers_wait_for_it(backend: Backend) {
    const SHA_C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    let db = Fresh::new(backend).await;
    let repo = db.repo().await;
    let mut held = run(&repo, "gc@example.com").await;
    let mut tx = repo.begin(held.fence).await.unwrap();
    tx.upsert_blobs(&[blob(SHA_A)]).await.unwrap();
    tx.commit().await.unwrap();

    let mut gc = repo.begin_gc("org-1").await.unwrap();
    let claimed = gc
        .claim_unrecorded(&[blob(SHA_A), blob(SHA_B)])
        .await
        .unwrap();
    assert_eq!(
        claimed,
        vec![SHA_B.to_owned()],
        "a recorded blob is never claimed"
    );

    let writer_repo = db.repo().await;
    let fence = held.fence;
    let writer = tokio::spawn(async move {
        let mut tx = writer_repo.begin(fence).await.unwrap();
        let outcome = tx.upsert_blobs(&[blob(SHA_B)]).await.unwrap()[0];
        tx.commit().await.unwrap();
        outcome
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !writer.is_finished(),
        "a writer recording a claimed hash waits for gc's transaction"
    );
    gc.finish().await.unwrap();
    assert_eq!(
        writer.await.unwrap(),
        Outcome::Inserted,
        "after gc the writer's row is new, so the writer checks the store"
    );
    let rows = repo
        .blobs_with_rows(
            "org-1",
            &[SHA_A.to_owned(), SHA_B.to_owned(), SHA_C.to_owned()],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.contains(SHA_A) && rows.contains(SHA_B));

    // A gc whose hashes all have rows claims nothing and leaves every row.
    let mut gc = repo.begin_gc("org-1").await.unwrap();
    assert!(
        gc.claim_unrecorded(&[blob(SHA_A), blob(SHA_B)])
            .await
            .unwrap()
            .is_empty()
    );
    gc.finish().await.unwrap();
    assert_eq!(db.count("SELECT count(*) FROM blobs").await, 2);
    assert_eq!(db.count("SELECT count(*) FROM blob_copies").await, 2);
    // Another org's gc claims the same hashes: the rows are org-1's copies.
    let mut gc = repo.begin_gc("org-2").await.unwrap();
    assert_eq!(
        gc.claim_unrecorded(&[blob(SHA_A)]).await.unwrap(),
        vec![SHA_A.to_owned()]
    );
    gc.finish().await.unwrap();
    assert!(
        repo.blobs_with_rows("org-2", &[SHA_A.to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
    repo.finish_run(&mut held, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();
}

/// The purge's half of gc's protocol (see `ingest::gc`): blobs only
/// long-deleted mail holds are marked `purging`; a writer recording one again
/// sets it back to `present` (`Updated`) and the purge's lock waits for the
/// writer, then leaves that blob alone.
async fn a_purge_yields_to_a_writer_recording_the_blob_again(backend: Backend) {
    let db = Fresh::new(backend).await;
    let repo = db.repo().await;
    let mut held = run(&repo, "purge@example.com").await;
    let mb = held.fence.mailbox_id;
    let mut tx = repo.begin(held.fence).await.unwrap();
    tx.upsert_blobs(&[blob(SHA_A), blob(SHA_B)]).await.unwrap();
    let t = tx.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    let m = tx
        .upsert_messages(&[message(mb, t[0].id, "m1")])
        .await
        .unwrap();
    tx.upsert_attachments(&[attachment(m[0].id, "1")])
        .await
        .unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::days(30);
    tx.soft_delete_messages(&["m1".to_owned()], long_ago)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    repo.finish_run(&mut held, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();
    let cutoff = chrono::Utc::now() - chrono::Duration::days(7);
    let listed: Vec<String> = repo
        .purge_candidates(mb, cutoff)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.sha256)
        .collect();
    assert_eq!(listed, vec![SHA_A.to_owned(), SHA_B.to_owned()]);

    let gc_run = repo
        .start_run(&RunStart {
            kind: RunKind::Gc,
            ..start(mb, Duration::from_secs(600))
        })
        .await
        .unwrap();
    let mut tx = repo.begin(gc_run.fence).await.unwrap();
    let mut marked = tx.mark_purging(cutoff).await.unwrap();
    marked.sort();
    assert_eq!(marked, vec![SHA_A.to_owned(), SHA_B.to_owned()]);
    tx.commit().await.unwrap();

    // Another mailbox's run records SHA_A again and has not committed yet.
    let writer_repo = db.repo().await;
    let writer = run(&writer_repo, "writer@example.com").await;
    let mut wtx = writer_repo.begin(writer.fence).await.unwrap();
    assert_eq!(
        wtx.upsert_blobs(&[blob(SHA_A)]).await.unwrap(),
        vec![Outcome::Updated],
        "a purging blob recorded again is rescued"
    );
    let gc_repo = db.repo().await;
    let fence = gc_run.fence;
    let gc = tokio::spawn(async move {
        let mut tx = gc_repo.begin(fence).await.unwrap();
        let locked = tx
            .lock_purging(&[SHA_A.to_owned(), SHA_B.to_owned()], cutoff)
            .await
            .unwrap();
        let hashes: Vec<String> = locked.iter().map(|c| c.sha256.clone()).collect();
        tx.mark_purged(&hashes).await.unwrap();
        tx.commit().await.unwrap();
        locked
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!gc.is_finished(), "the purge waits for the writer");
    wtx.commit().await.unwrap();
    let locked = gc.await.unwrap();
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0].sha256, SHA_B);
    assert_eq!(locked[0].messages, vec!["m1".to_owned()]);
    assert_eq!(
        db.count("SELECT count(*) FROM blob_copies WHERE state = 'present'")
            .await,
        1,
        "SHA_A stays"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM blob_copies WHERE state = 'purged'")
            .await,
        1
    );
    // A purged blob recorded again comes back too.
    let mut wtx = writer_repo.begin(writer.fence).await.unwrap();
    assert_eq!(
        wtx.upsert_blobs(&[blob(SHA_B), blob(SHA_A)]).await.unwrap(),
        vec![Outcome::Updated, Outcome::Unchanged]
    );
    wtx.commit().await.unwrap();
    assert_eq!(
        db.count("SELECT count(*) FROM blob_copies WHERE state = 'present' AND purged_at IS NULL")
            .await,
        2
    );
}

/// A change-feed consumer: one live holder (another org's consumer of the
/// same name is another consumer), positions that never move back, and a
/// holder whose token was replaced (its lock connection lost, another
/// process in) acknowledges nothing.
async fn a_feed_consumer_is_exclusive_fenced_and_moves_forward_only(backend: Backend) {
    let fresh = Fresh::new(backend).await;
    let repo = fresh.repo().await;
    let other = fresh.repo().await;
    let (mailbox_id, _) = repo
        .register_mailbox("org-1", "feed@example.com")
        .await
        .unwrap();
    let held = repo.hold_consumer("org-1", "crm").await.unwrap();
    assert!(held.positions.is_empty());
    assert!(matches!(
        other.hold_consumer("org-1", "crm").await,
        Err(RepoError::ConsumerBusy { .. })
    ));
    let beta = other.hold_consumer("org-2", "crm").await.unwrap();
    assert!(repo.consumer_still_held(&held).await.unwrap());

    repo.ack_consumer(&held, &[(mailbox_id, 5)]).await.unwrap();
    repo.ack_consumer(&held, &[(mailbox_id, 3)]).await.unwrap();
    let position = "SELECT seq FROM feed_positions";
    assert_eq!(
        fresh.count(position).await,
        5,
        "a position never moves back"
    );

    fresh
        .execute("UPDATE feed_consumers SET holder_token = 'another' WHERE org_id = 'org-1'")
        .await
        .unwrap();
    assert!(!repo.consumer_still_held(&held).await.unwrap());
    assert!(matches!(
        repo.ack_consumer(&held, &[(mailbox_id, 9)]).await,
        Err(RepoError::ConsumerFenced { .. })
    ));
    assert_eq!(
        fresh.count(position).await,
        5,
        "the fenced ack moved nothing"
    );

    drop(held);
    drop(beta);
    let again = other.hold_consumer("org-1", "crm").await.unwrap();
    assert_eq!(again.positions.get(&mailbox_id), Some(&5));
    assert!(other.consumer_still_held(&again).await.unwrap());
}

fn orphan(sha: &str, offset: i64, reason: OrphanReason) -> OrphanUpsert {
    OrphanUpsert {
        sha256: sha.to_owned(),
        size: 10,
        source: "takeout:".to_owned() + &"f".repeat(64),
        file_offset: offset,
        provider_message_id: (reason == OrphanReason::NotInMailbox).then(|| "abc123".to_owned()),
        reason,
        detail: "why\0 not".to_owned(),
        rfc822_message_id: Some("<x@example.com>".to_owned()),
        date_header: None,
        subject: Some("caf\u{e9}".to_owned()),
    }
}

/// `import --keep-unmatched`: an orphan row per (mailbox, bytes), the first
/// sighting kept, a re-run inserting nothing; the row is a reference of its
/// org's copy of the blob (purge leaves it, verify lists it), and only of
/// its own org's.
async fn orphans_are_kept_once_and_hold_their_blob_in_their_org(backend: Backend) {
    let db = Fresh::new(backend).await;
    let repo = db.repo().await;
    let mut held = run(&repo, "orphans@example.com").await;
    let mb = held.fence.mailbox_id;
    let mut tx = repo.begin(held.fence).await.unwrap();
    tx.upsert_blobs(&[blob(SHA_A), blob(SHA_B)]).await.unwrap();
    let t = tx.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    // m1's raw bytes are SHA_A, its part SHA_B; it was deleted long ago.
    let m = tx
        .upsert_messages(&[message(mb, t[0].id, "m1")])
        .await
        .unwrap();
    tx.upsert_attachments(&[attachment(m[0].id, "1")])
        .await
        .unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::days(30);
    tx.soft_delete_messages(&["m1".to_owned()], long_ago)
        .await
        .unwrap();
    // An archive entry with m1's exact bytes, kept; the same bytes again
    // later in the batch are the same orphan.
    let first = orphan(SHA_A, 100, OrphanReason::NoId);
    let again = orphan(SHA_A, 900, OrphanReason::Malformed);
    assert_eq!(
        tx.keep_orphans(&[first.clone(), again.clone()])
            .await
            .unwrap(),
        vec![true, false]
    );
    tx.commit().await.unwrap();
    let mut tx = repo.begin(held.fence).await.unwrap();
    assert_eq!(
        tx.keep_orphans(&[again, first.clone()]).await.unwrap(),
        vec![false, false],
        "a re-run inserts nothing"
    );
    tx.commit().await.unwrap();
    let listed = repo.imported_orphans(mb).await.unwrap();
    assert_eq!(listed.len(), 1);
    let mut stored = first.clone();
    stored.detail = "why not".to_owned();
    assert_eq!(listed[0].row, stored, "the first sighting, NUL dropped");
    assert_eq!(listed[0].first_run_id, held.fence.run_id);
    assert_eq!(
        db.count("SELECT count(*) FROM imported_orphans").await,
        1,
        "one row"
    );

    // Purge: only the part (SHA_B) is long-deleted mail's alone; SHA_A is the orphan's.
    let cutoff = chrono::Utc::now() - chrono::Duration::days(7);
    let candidates: Vec<String> = repo
        .purge_candidates(mb, cutoff)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.sha256)
        .collect();
    assert_eq!(candidates, vec![SHA_B.to_owned()]);
    let mut referenced = repo.referenced_blobs(mb).await.unwrap();
    referenced.sort();
    assert_eq!(referenced, vec![SHA_A.to_owned(), SHA_B.to_owned()]);
    repo.finish_run(&mut held, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();

    // Another org's orphan of SHA_B keeps that org's copy, never this one's.
    let (other, _) = repo
        .register_mailbox("org-2", "orphans@example.com")
        .await
        .unwrap();
    let mut held2 = repo
        .start_run(&start(other, Duration::from_secs(600)))
        .await
        .unwrap();
    let mut tx = repo.begin(held2.fence).await.unwrap();
    tx.upsert_blobs(&[blob(SHA_B)]).await.unwrap();
    assert_eq!(
        tx.keep_orphans(&[orphan(SHA_B, 0, OrphanReason::NotInMailbox)])
            .await
            .unwrap(),
        vec![true],
        "another mailbox keeps the same bytes as its own orphan"
    );
    tx.commit().await.unwrap();
    repo.finish_run(&mut held2, &end(RunStatus::Completed, CursorUpdate::Keep))
        .await
        .unwrap();
    let candidates: Vec<String> = repo
        .purge_candidates(mb, cutoff)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.sha256)
        .collect();
    assert_eq!(
        candidates,
        vec![SHA_B.to_owned()],
        "org-2's orphan is org-2's"
    );
    assert_eq!(repo.imported_orphans(other).await.unwrap().len(), 1);
    assert_eq!(repo.imported_orphans(mb).await.unwrap().len(), 1);
}
