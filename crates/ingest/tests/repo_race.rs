//! Concurrent writers on separate connections: the database, not the code,
//! decides who inserts. 16 simultaneous upserts of one message → one row and
//! exactly one `Inserted`.
//!
//! PostgreSQL only, on raw transactions below the repository's traits: a
//! run's fenced transactions are serialised by its lease (`prove_lease` locks
//! the run's row), so the traits cannot race two writers of one mailbox; this
//! checks that the statements themselves would stay safe if they did.

mod common;

use std::sync::Arc;

use common::*;
use ingest::repo::{self, Outcome};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Barrier;

const WRITERS: usize = 16;

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn sixteen_concurrent_upserts_make_one_row(pool: PgPool) {
    let w = Writer::start(&pool).await;
    let mb = w.mailbox_id();
    w.blobs().await;
    let t = w.upsert_threads(&[thread(mb, "t1")]).await.unwrap();

    let options = pool.connect_options();
    let mut conns = Vec::new();
    for _ in 0..WRITERS {
        conns.push(PgConnection::connect_with(&options).await.unwrap());
    }
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let barrier = barrier.clone();
            let row = message(mb, t[0].id, "raced");
            let thread_row = thread(mb, "t-raced");
            tokio::spawn(async move {
                let mut tx = conn.begin().await.unwrap();
                barrier.wait().await;
                let th = repo::pg::upsert_threads(&mut tx, &[thread_row])
                    .await
                    .unwrap();
                let m = repo::pg::upsert_messages(&mut tx, &[row]).await.unwrap();
                tx.commit().await.unwrap();
                (th[0], m[0])
            })
        })
        .collect();

    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let thread_inserts = results
        .iter()
        .filter(|(t, _)| t.outcome == Outcome::Inserted)
        .count();
    let message_inserts = results
        .iter()
        .filter(|(_, m)| m.outcome == Outcome::Inserted)
        .count();
    assert_eq!(thread_inserts, 1);
    assert_eq!(message_inserts, 1);
    assert!(results.iter().all(|(_, m)| m.outcome != Outcome::Updated));
    let ids: std::collections::HashSet<i64> = results.iter().map(|(_, m)| m.id).collect();
    assert_eq!(ids.len(), 1, "every writer sees the same row id");

    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mail_messages WHERE provider_message_id = 'raced'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(rows, 1);
}
