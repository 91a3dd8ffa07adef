//! Terminal events: one per run, a repeat is an idempotent no-op that keeps the transaction.

mod common;

use common::*;
use ledger::{EventType, LedgerError, Subject, TerminalOutcome};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn second_terminal_in_one_transaction_is_already_recorded(pool: PgPool) -> TestResult {
    let mb = mailbox(&pool, "t@example.com").await?;
    let run = running_run(&pool, mb).await?;
    append_committed(&pool, mb, run, &messages("m", 2)).await?;

    let mut tx = pool.begin().await?;
    let done = ev(
        EventType::SyncCompleted,
        Subject::Run(run),
        json!({"messages": 2}),
    );
    let first = ledger::append_terminal(&mut tx, mb, run, done.clone()).await?;
    assert_eq!(first, TerminalOutcome::Recorded { seq: 3 });
    let second = ledger::append_terminal(&mut tx, mb, run, done).await?;
    assert_eq!(second, TerminalOutcome::AlreadyRecorded);

    // The transaction is still usable: the head did not move and more work commits.
    let head = ledger::chain_head(&mut tx, mb).await?;
    assert_eq!(head.map(|h| h.seq), Some(3));
    sqlx::query("UPDATE sync_runs SET status = 'completed', finished_at = now() WHERE id = $1")
        .bind(run)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let terminals: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger_events WHERE run_id = $1 AND event_type = 'sync.completed'",
    )
    .bind(run)
    .fetch_one(&pool)
    .await?;
    assert_eq!(terminals, 1);
    let report = ledger::verify(&mut *pool.acquire().await?, mb).await?;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 3);
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_later_terminal_of_another_type_is_already_recorded_too(pool: PgPool) -> TestResult {
    let mb = mailbox(&pool, "t2@example.com").await?;
    let run = running_run(&pool, mb).await?;

    let mut tx = pool.begin().await?;
    let out = ledger::append_terminal(
        &mut tx,
        mb,
        run,
        ev(
            EventType::SyncFailed,
            Subject::Run(run),
            json!({"error": "boom"}),
        ),
    )
    .await?;
    assert_eq!(out, TerminalOutcome::Recorded { seq: 1 });
    tx.commit().await?;
    finish_run(&pool, run, "failed").await?;

    // e.g. the next run finding the dead one and trying to mark it interrupted.
    let mut tx = pool.begin().await?;
    let out = ledger::append_terminal(
        &mut tx,
        mb,
        run,
        ev(EventType::SyncInterrupted, Subject::Run(run), json!({})),
    )
    .await?;
    assert_eq!(out, TerminalOutcome::AlreadyRecorded);
    // Non-terminal appends after the no-op still work in the same transaction.
    let next = ledger::append(&mut tx, mb, run, &messages("late", 1)).await?;
    assert_eq!(next.first_seq, Some(2));
    tx.commit().await?;

    assert_eq!(row_count(&pool, mb).await?, 2);
    assert!(
        ledger::verify(&mut *pool.acquire().await?, mb)
            .await?
            .is_ok()
    );
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn append_terminal_refuses_non_terminal_types_and_plain_connections(
    pool: PgPool,
) -> TestResult {
    let mb = mailbox(&pool, "t3@example.com").await?;
    let run = running_run(&pool, mb).await?;
    let mut tx = pool.begin().await?;
    let err = ledger::append_terminal(
        &mut tx,
        mb,
        run,
        ev(EventType::MessageIngested, message("m"), json!({})),
    )
    .await;
    assert!(
        matches!(
            err,
            Err(LedgerError::NotTerminal {
                event_type: "message.ingested"
            })
        ),
        "{err:?}"
    );
    tx.rollback().await?;

    let mut plain = pool.acquire().await?;
    let err = ledger::append_terminal(
        &mut plain,
        mb,
        run,
        ev(EventType::SyncCompleted, Subject::Run(run), json!({})),
    )
    .await;
    assert!(matches!(err, Err(LedgerError::NotInTransaction)), "{err:?}");
    assert_eq!(row_count(&pool, mb).await?, 0);
    Ok(())
}
