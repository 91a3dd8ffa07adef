//! Appending on real Postgres: chain shape, concurrency, transactions, refusals, reads.

mod common;

use common::*;
use ledger::{EventType, GENESIS_HASH, LedgerError, Subject};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn batches_form_one_linked_chain_from_genesis(pool: PgPool) -> TestResult {
    let mb = mailbox(&pool, "a@example.com").await?;
    let run = running_run(&pool, mb).await?;

    assert_eq!(
        ledger::chain_head(&mut *pool.acquire().await?, mb).await?,
        None
    );
    let first = append_committed(&pool, mb, run, &messages("a", 3)).await?;
    assert_eq!(first.count, 3);
    assert_eq!(first.first_seq, Some(1));
    let second = append_committed(&pool, mb, run, &messages("b", 2)).await?;
    assert_eq!(second.first_seq, Some(4));

    let rows = links(&pool, mb).await?;
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(rows[0].1, GENESIS_HASH);
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1].1, pair[0].2,
            "seq {} must link to seq {}",
            pair[1].0, pair[0].0
        );
    }
    let head = ledger::chain_head(&mut *pool.acquire().await?, mb).await?;
    assert_eq!(second.head, head);
    assert_eq!(head.map(|h| h.hash), Some(rows[4].2.clone()));

    let report = ledger::verify(&mut *pool.acquire().await?, mb).await?;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 5);
    assert_eq!(report.runs_checked, 1);
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn eight_concurrent_writers_form_one_linear_chain(pool: PgPool) -> TestResult {
    const WRITERS: usize = 8;
    const BATCHES: usize = 15;
    const PER_BATCH: usize = 20;
    let mb = mailbox(&pool, "busy@example.com").await?;
    let run = running_run(&pool, mb).await?;

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut firsts = Vec::new();
            for b in 0..BATCHES {
                // Separate connection and transaction per batch; hold the transaction open
                // a moment after appending so writers really queue on the chain lock.
                let mut tx = pool.begin().await?;
                let done =
                    ledger::append(&mut tx, mb, run, &messages(&format!("w{w}b{b}"), PER_BATCH))
                        .await?;
                tokio::task::yield_now().await;
                tx.commit().await?;
                firsts.push((format!("w{w}b{b}"), done.first_seq));
            }
            Ok::<_, BoxError>(firsts)
        }));
    }
    let mut batch_starts = Vec::new();
    for task in tasks {
        batch_starts.extend(task.await??);
    }

    let rows = links(&pool, mb).await?;
    let total = WRITERS * BATCHES * PER_BATCH;
    assert_eq!(rows.len(), total);
    let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>());
    for pair in rows.windows(2) {
        assert_eq!(pair[1].1, pair[0].2, "fork at seq {}", pair[1].0);
    }
    // Each batch occupies a contiguous range starting where append said.
    let events = ledger::run_events(&mut *pool.acquire().await?, run).await?;
    for (prefix, first) in batch_starts {
        let first = first.ok_or("empty batch")?;
        for i in 0..PER_BATCH {
            let e = &events[(first - 1) as usize + i];
            assert_eq!(e.subject_key, format!("message:{prefix}-{i}"));
            assert_eq!(e.subject()?, message(&format!("{prefix}-{i}")));
        }
    }

    let mut tx = pool.begin().await?;
    let end = ledger::append_terminal(
        &mut tx,
        mb,
        run,
        ev(EventType::SyncCompleted, Subject::Run(run), json!({})),
    )
    .await?;
    assert_eq!(
        end,
        ledger::TerminalOutcome::Recorded {
            seq: total as i64 + 1
        }
    );
    sqlx::query("UPDATE sync_runs SET status = 'completed', finished_at = now() WHERE id = $1")
        .bind(run)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let report = ledger::verify(&mut *pool.acquire().await?, mb).await?;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, total as u64 + 1);
    assert_eq!(report.terminal_events, 1);
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn chains_of_different_mailboxes_are_independent(pool: PgPool) -> TestResult {
    let a = mailbox(&pool, "a@example.com").await?;
    let b = mailbox(&pool, "b@example.com").await?;
    let run_a = running_run(&pool, a).await?;
    let run_b = running_run(&pool, b).await?;
    append_committed(&pool, a, run_a, &messages("a", 4)).await?;
    let first_b = append_committed(&pool, b, run_b, &messages("b", 2)).await?;
    assert_eq!(first_b.first_seq, Some(1));
    assert!(
        ledger::verify(&mut *pool.acquire().await?, a)
            .await?
            .is_ok()
    );
    assert!(
        ledger::verify(&mut *pool.acquire().await?, b)
            .await?
            .is_ok()
    );
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn rolled_back_appends_leave_nothing(pool: PgPool) -> TestResult {
    let mb = mailbox(&pool, "r@example.com").await?;
    let run = running_run(&pool, mb).await?;

    let mut tx = pool.begin().await?;
    let done = ledger::append(&mut tx, mb, run, &messages("gone", 10)).await?;
    assert_eq!(done.count, 10);
    tx.rollback().await?;
    assert_eq!(row_count(&pool, mb).await?, 0);

    // The chain starts over at seq 1 from genesis, and still verifies.
    let kept = append_committed(&pool, mb, run, &messages("kept", 2)).await?;
    assert_eq!(kept.first_seq, Some(1));
    assert_eq!(links(&pool, mb).await?[0].1, GENESIS_HASH);
    assert!(
        ledger::verify(&mut *pool.acquire().await?, mb)
            .await?
            .is_ok()
    );
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn refusals_happen_before_any_statement_so_the_transaction_survives(
    pool: PgPool,
) -> TestResult {
    let mb = mailbox(&pool, "x@example.com").await?;
    let other = mailbox(&pool, "y@example.com").await?;
    let run = running_run(&pool, mb).await?;
    let other_run = running_run(&pool, other).await?;

    // Outside a transaction the chain lock would not hold: refused.
    let mut plain = pool.acquire().await?;
    let err = ledger::append(&mut plain, mb, run, &messages("m", 1)).await;
    assert!(matches!(err, Err(LedgerError::NotInTransaction)), "{err:?}");

    let mut tx = pool.begin().await?;
    let err = ledger::append(&mut tx, mb, other_run, &messages("m", 1)).await;
    assert!(
        matches!(err, Err(LedgerError::RunMailboxMismatch { run_id, run_mailbox_id, mailbox_id })
            if run_id == other_run && run_mailbox_id == other && mailbox_id == mb),
        "{err:?}"
    );
    let err = ledger::append(&mut tx, mb, 999_999, &messages("m", 1)).await;
    assert!(
        matches!(err, Err(LedgerError::RunNotFound { run_id: 999_999 })),
        "{err:?}"
    );
    let batch = vec![
        ev(EventType::MessageIngested, message("m1"), json!({})),
        ev(EventType::SyncCompleted, Subject::Run(run), json!({})),
    ];
    let err = ledger::append(&mut tx, mb, run, &batch).await;
    assert!(
        matches!(
            err,
            Err(LedgerError::TerminalInBatch {
                index: 1,
                event_type: "sync.completed"
            })
        ),
        "{err:?}"
    );
    let err = ledger::append(
        &mut tx,
        mb,
        run,
        &[ev(EventType::MessageSkipped, message("m\0"), json!({}))],
    )
    .await;
    assert!(
        matches!(err, Err(LedgerError::InvalidEvent { index: 0, .. })),
        "{err:?}"
    );
    // A subject whose key would not parse back to it (here it would read as a part).
    let err = ledger::append(
        &mut tx,
        mb,
        run,
        &[
            ev(EventType::MessageSkipped, message("m"), json!({})),
            ev(EventType::MessageSkipped, message("m/part:1"), json!({})),
        ],
    )
    .await;
    assert!(
        matches!(&err, Err(LedgerError::InvalidEvent { index: 1, reason }) if reason.contains("'/'")),
        "{err:?}"
    );
    let err = ledger::append_terminal(
        &mut tx,
        mb,
        run,
        ev(
            EventType::SyncFailed,
            Subject::Mailbox(String::new()),
            json!({}),
        ),
    )
    .await;
    assert!(
        matches!(err, Err(LedgerError::InvalidEvent { index: 0, .. })),
        "{err:?}"
    );
    let err = ledger::append(
        &mut tx,
        mb,
        run,
        &[ev(
            EventType::MessageSkipped,
            message("m"),
            json!({"reason": "nul\u{0}"}),
        )],
    )
    .await;
    assert!(
        matches!(err, Err(LedgerError::InvalidEvent { index: 0, .. })),
        "{err:?}"
    );

    // None of that poisoned the transaction.
    let ok = ledger::append(&mut tx, mb, run, &messages("m", 2)).await?;
    assert_eq!(ok.first_seq, Some(1));
    tx.commit().await?;
    assert_eq!(row_count(&pool, mb).await?, 2);

    let empty = append_committed(&pool, mb, run, &[]).await?;
    assert_eq!(empty.count, 0);
    assert_eq!(row_count(&pool, mb).await?, 2);
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn payloads_survive_jsonb_normalisation(pool: PgPool) -> TestResult {
    let mb = mailbox(&pool, "json@example.com").await?;
    let run = running_run(&pool, mb).await?;
    // Values jsonb rewrites: key order, float spelling, big and tiny numbers, escapes.
    let mut events = vec![
        ev(
            EventType::LabelsChanged,
            message("m1"),
            json!({"zeta": 1, "alpha": {"b": [3.0, -0.0, 1e300, 5e-324], "a": null}, "": true}),
        ),
        ev(
            EventType::MessageSkipped,
            message("m2"),
            json!({"reason": "tab\there \"quoted\" \\ é 😀 \u{1}", "n": u64::MAX, "i": i64::MIN}),
        ),
        ev(
            EventType::HistoryExpired,
            Subject::Mailbox("json@example.com".into()),
            json!([]),
        ),
        ev(
            EventType::MessageDeleted,
            message("m3"),
            json!("just a string"),
        ),
        ev(
            EventType::AttachmentSaved,
            Subject::Part {
                message: "m4".into(),
                part: "1.2".into(),
            },
            json!(1152921504606846976.0_f64),
        ),
    ];
    // A deterministic spread of floats across magnitudes (no rand dependency needed).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = f64::from_bits(x);
        let f = if f.is_finite() { f } else { i as f64 / 7.0 };
        events.push(ev(
            EventType::ThreadIngested,
            Subject::Thread(format!("t{i}")),
            json!({"f": f, "g": (x % 1_000_000) as f64 / 1000.0, "big": (x >> 1) as f64}),
        ));
    }
    append_committed(&pool, mb, run, &events).await?;

    let report = ledger::verify(&mut *pool.acquire().await?, mb).await?;
    assert!(report.is_ok(), "{:?}", report.first_fault);
    assert_eq!(report.events, events.len() as u64);

    // The read model gives back the same values.
    let stored = ledger::run_events(&mut *pool.acquire().await?, run).await?;
    assert_eq!(stored[1].payload, events[1].payload);
    assert_eq!(stored[0].payload["alpha"]["b"][2], json!(1e300));
    // And the same subjects: every key parses back to the subject appended.
    for (stored, sent) in stored.iter().zip(&events) {
        assert_eq!(stored.subject()?, sent.subject);
    }
    assert_eq!(stored[4].subject_key, "message:m4/part:1.2");
    assert_eq!(stored[4].subject()?.message_id(), Some("m4"));
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn run_reads_list_events_and_count_types(pool: PgPool) -> TestResult {
    let mb = mailbox(&pool, "read@example.com").await?;
    let run = running_run(&pool, mb).await?;
    let mut batch = vec![ev(
        EventType::SyncStarted,
        Subject::Mailbox("read@example.com".into()),
        json!({"kind": "backfill"}),
    )];
    batch.extend(messages("m", 3));
    batch.push(ev(
        EventType::MessageSkipped,
        message("m-x"),
        json!({"reason": "too large"}),
    ));
    append_committed(&pool, mb, run, &batch).await?;

    let events = ledger::run_events(&mut *pool.acquire().await?, run).await?;
    assert_eq!(events.len(), 5);
    assert_eq!(events[0].event_type, EventType::SyncStarted);
    assert_eq!(events[0].seq, 1);
    assert_eq!(events[0].subject_key, "mailbox:read@example.com");
    assert_eq!(events[4].subject()?, message("m-x"));
    assert_eq!(events[4].payload, json!({"reason": "too large"}));
    assert!(events.iter().all(|e| e.run_id == run && e.mailbox_id == mb));
    assert_eq!(events[1].prev_hash, events[0].hash);

    let counts = ledger::counts_by_type(&mut *pool.acquire().await?, run).await?;
    let expected: std::collections::BTreeMap<String, i64> = [
        ("message.ingested".to_owned(), 3),
        ("message.skipped".to_owned(), 1),
        ("sync.started".to_owned(), 1),
    ]
    .into();
    assert_eq!(counts, expected);
    assert!(
        ledger::counts_by_type(&mut *pool.acquire().await?, run + 1)
            .await?
            .is_empty()
    );
    Ok(())
}
