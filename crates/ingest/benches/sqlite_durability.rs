//! What `synchronous = FULL` costs the embedded backend (not a timed test):
//! `cargo bench -p ingest --bench sqlite_durability`.
//!
//! The write path of a run through the repository, on a database file in the
//! system temp directory: per transaction a blob, a thread, a batch of
//! messages with their ledger events and the run's counts, fenced and
//! committed. Two shapes: a backfill's batches (500 messages, 40 commits) and
//! an incremental sync's (5 messages, 400 commits). Each shape runs with FULL
//! (what mailingest uses) and NORMAL, alternating, BENCH_REPEAT times (default
//! 3); prints the median commits/s and messages/s of each.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use ingest::repo::prelude::*;
use ingest::repo::{
    BlobUpsert, Coverage, CursorUpdate, MessageUpsert, RunEnd, RunKind, RunStart, RunStatus,
    ThreadUpsert,
};
use ingest::repo::{Durability, SqliteRepository};
use ledger::{EventType, NewEvent, Subject};
use serde_json::json;

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
    let repeat: usize = std::env::var("BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!("shape     synchronous  median wall s  commits/s  messages/s  (of {repeat} runs)");
    for (shape, commits, batch) in [("backfill", 40, 500), ("sync", 400, 5)] {
        let mut walls: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for round in 0..repeat {
            // Alternate which goes first, so neither always meets a cold cache.
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let durability = [Durability::Full, Durability::Normal][i];
                walls[i].push(run(durability, commits, batch).await.as_secs_f64());
            }
        }
        for (i, name) in ["FULL", "NORMAL"].iter().enumerate() {
            walls[i].sort_by(f64::total_cmp);
            let wall = walls[i][walls[i].len() / 2];
            println!(
                "{shape:<9} {name:<11}  {wall:>13.2}  {:>9.0}  {:>10.0}",
                commits as f64 / wall,
                (commits * batch) as f64 / wall
            );
        }
    }
}
