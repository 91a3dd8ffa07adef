//! What `synchronous = FULL` costs the embedded backend (not a timed test):
//! `cargo bench -p ingest --bench sqlite_durability`.
//!
//! The write path of a backfill through the repository, on a database file in
//! the system temp directory: per transaction a blob, a thread, BENCH_BATCH
//! messages (default 25, a backfill's batch) with their ledger events and the
//! run's counts, fenced and committed. Run once with FULL (what mailingest
//! uses) and once with NORMAL; prints commits/s and messages/s for each.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use ingest::repo::sqlite::{Durability, SqliteRepository};
use ingest::repo::{
    BlobUpsert, Coverage, CursorUpdate, MessageUpsert, Repository, RunEnd, RunKind, RunStart,
    RunStatus, ThreadUpsert,
};
use ledger::{EventType, NewEvent, Subject};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(durability: Durability, commits: usize, batch: usize) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = SqliteRepository::open_with(&dir.path().join("bench.db"), 4, durability)
        .await
        .expect("open");
    repo.migrate().await.expect("migrate");
    let (mailbox_id, _) = repo
        .register_mailbox("bench", "bench@example.com")
        .await
        .expect("mailbox");
    let mut held = repo
        .start_run(&RunStart {
            mailbox_id,
            kind: RunKind::Backfill,
            window: None,
            start_history_id: None,
            stale_after: Duration::from_secs(600),
        })
        .await
        .expect("run");
    let body = "lorem ipsum dolor sit amet ".repeat(400);
    let started = Instant::now();
    for c in 0..commits {
        let sha = format!("{:064x}", c + 1);
        let mut tx = repo.begin(held.fence).await.expect("begin");
        tx.upsert_blobs(&[BlobUpsert {
            sha256: sha.clone(),
            size: 10_000,
            storage_key: format!("bench/sha256/{}/{}/{sha}", &sha[..2], &sha[2..4]),
        }])
        .await
        .expect("blob");
        let thread = tx
            .upsert_threads(&[ThreadUpsert {
                mailbox_id,
                provider_thread_id: format!("t{c}"),
                history_id: Some(1),
                coverage: Coverage::WHOLE,
                snippet: None,
            }])
            .await
            .expect("thread")[0]
            .id;
        let messages: Vec<MessageUpsert> = (0..batch)
            .map(|m| MessageUpsert {
                mailbox_id,
                thread_id: thread,
                provider_message_id: format!("m{c}-{m}"),
                provider_thread_id: format!("t{c}"),
                rfc822_message_id: Some(format!("<m{c}-{m}@example.com>")),
                in_reply_to: None,
                references: vec![],
                subject: Some("bench".into()),
                from_addrs: vec![],
                to_addrs: vec![],
                cc_addrs: vec![],
                bcc_addrs: vec![],
                reply_to_addrs: vec![],
                sent_at: None,
                internal_date: Utc.timestamp_opt(1_700_000_000 + m as i64, 0).unwrap(),
                label_ids: vec!["INBOX".into()],
                snippet: None,
                size_estimate: Some(10_000),
                history_id: Some(1),
                body_text: Some(body.clone()),
                body_html: None,
                raw_sha256: sha.clone(),
                raw_size: 10_000,
            })
            .collect();
        tx.upsert_messages(&messages).await.expect("messages");
        let events: Vec<NewEvent> = messages
            .iter()
            .map(|m| {
                NewEvent::new(
                    EventType::MessageIngested,
                    Subject::Message(m.provider_message_id.clone()),
                    json!({"raw_sha256": sha}),
                )
            })
            .collect();
        tx.append_events(&events).await.expect("events");
        tx.record_run_counts(&json!({"commits": c}))
            .await
            .expect("counts");
        tx.commit().await.expect("commit");
    }
    let elapsed = started.elapsed();
    repo.finish_run(
        &mut held,
        &RunEnd {
            status: RunStatus::Completed,
            counts: json!({}),
            error: None,
            cursor: CursorUpdate::Keep,
        },
    )
    .await
    .expect("finish");
    elapsed
}

#[tokio::main]
async fn main() {
    let commits = env("BENCH_COMMITS", 400);
    let batch = env("BENCH_BATCH", 25);
    println!("{commits} commits of {batch} messages each, fenced, with ledger events");
    println!("synchronous  wall s  commits/s  messages/s");
    for (name, durability) in [("FULL", Durability::Full), ("NORMAL", Durability::Normal)] {
        let wall = run(durability, commits, batch).await.as_secs_f64();
        println!(
            "{name:<11}  {wall:>6.2}  {:>9.0}  {:>10.0}",
            commits as f64 / wall,
            (commits * batch) as f64 / wall
        );
    }
}
