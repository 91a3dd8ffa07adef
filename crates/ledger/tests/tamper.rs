//! What the database refuses, and what `verify` finds when a superuser gets round it.

mod common;

use common::*;
use ledger::{ChainReport, EventType, FaultReason, RunFaultReason, Subject};
use serde_json::json;
use sqlx::PgPool;

/// A mailbox with one completed run of `n` events plus its terminal event.
async fn finished_chain(pool: &PgPool, email: &str, n: usize) -> Result<(i64, i64), BoxError> {
    let mb = mailbox(pool, email).await?;
    let run = running_run(pool, mb).await?;
    append_committed(pool, mb, run, &messages("m", n)).await?;
    let mut tx = pool.begin().await?;
    ledger::append_terminal(
        &mut tx,
        mb,
        run,
        ev(EventType::SyncCompleted, Subject::Run(run), json!({})),
    )
    .await?;
    tx.commit().await?;
    finish_run(pool, run, "completed").await?;
    Ok((mb, run))
}

async fn verify(pool: &PgPool, mb: i64) -> Result<ChainReport, BoxError> {
    Ok(ledger::verify(&mut *pool.acquire().await?, mb).await?)
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn update_delete_and_truncate_are_rejected(pool: PgPool) -> TestResult {
    let (mb, _) = finished_chain(&pool, "ro@example.com", 3).await?;
    for sql in [
        "UPDATE ledger_events SET payload = '{\"x\": 1}' WHERE mailbox_id = $1",
        "DELETE FROM ledger_events WHERE mailbox_id = $1",
        "TRUNCATE ledger_events",
    ] {
        let err = sqlx::query(sql).bind(mb).execute(&pool).await;
        let Err(sqlx::Error::Database(db)) = err else {
            return Err(format!("{sql} was not rejected: {err:?}").into());
        };
        assert_eq!(db.code().as_deref(), Some("42501"), "{sql}");
        assert!(db.message().contains("append-only"), "{}", db.message());
    }
    assert_eq!(row_count(&pool, mb).await?, 4);
    assert!(verify(&pool, mb).await?.is_ok());
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn an_altered_payload_is_named_by_seq(pool: PgPool) -> TestResult {
    let (mb, _) = finished_chain(&pool, "pay@example.com", 6).await?;
    // The brief's way: disable the user triggers as superuser, change one payload, re-enable.
    let mut tx = pool.begin().await?;
    sqlx::query("ALTER TABLE ledger_events DISABLE TRIGGER USER")
        .execute(&mut *tx)
        .await?;
    let changed = sqlx::query(
        "UPDATE ledger_events SET payload = jsonb_set(payload, '{size}', '99') \
         WHERE mailbox_id = $1 AND seq = 4",
    )
    .bind(mb)
    .execute(&mut *tx)
    .await?;
    assert_eq!(changed.rows_affected(), 1);
    sqlx::query("ALTER TABLE ledger_events ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let report = verify(&pool, mb).await?;
    assert!(!report.is_ok());
    let fault = report.first_fault.ok_or("no fault reported")?;
    assert_eq!(fault.seq, 4);
    assert!(
        matches!(fault.reason, FaultReason::HashMismatch { .. }),
        "{fault}"
    );
    // One altered row is one fault: the rows after it still link to its stored hash.
    assert_eq!(report.chain_faults, 1);
    assert_eq!(report.events, 7);
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn altered_subject_type_or_time_is_found(pool: PgPool) -> TestResult {
    let (mb, _) = finished_chain(&pool, "cols@example.com", 5).await?;
    tamper(
        &pool,
        "UPDATE ledger_events SET subject_key = 'other' WHERE mailbox_id = $1 AND seq = $2",
        mb,
        2,
    )
    .await?;
    tamper(
        &pool,
        "UPDATE ledger_events SET event_type = 'message.deleted' WHERE mailbox_id = $1 AND seq = $2",
        mb,
        3,
    )
    .await?;
    tamper(
        &pool,
        "UPDATE ledger_events SET created_at = created_at + interval '1 microsecond' \
         WHERE mailbox_id = $1 AND seq = $2",
        mb,
        5,
    )
    .await?;
    let report = verify(&pool, mb).await?;
    assert_eq!(report.first_fault.map(|f| f.seq), Some(2));
    assert_eq!(report.chain_faults, 3);
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_broken_link_is_named_by_seq(pool: PgPool) -> TestResult {
    let (mb, _) = finished_chain(&pool, "link@example.com", 5).await?;
    tamper(
        &pool,
        "UPDATE ledger_events SET prev_hash = repeat('ab', 32) WHERE mailbox_id = $1 AND seq = $2",
        mb,
        3,
    )
    .await?;
    let report = verify(&pool, mb).await?;
    let fault = report.first_fault.ok_or("no fault reported")?;
    assert_eq!(fault.seq, 3);
    match &fault.reason {
        FaultReason::BrokenLink {
            stored_prev,
            expected_prev,
        } => {
            assert_eq!(stored_prev, &"ab".repeat(32));
            let rows = links(&pool, mb).await?;
            assert_eq!(expected_prev, &rows[1].2);
        }
        other => return Err(format!("expected a broken link, got {other}").into()),
    }
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_rehashed_forgery_still_breaks_the_link(pool: PgPool) -> TestResult {
    // A forger who recomputes the row's own hash still cannot make the next row point at it.
    let mb = mailbox(&pool, "forge@example.com").await?;
    let run = running_run(&pool, mb).await?;
    append_committed(&pool, mb, run, &messages("m", 3)).await?;
    let rows = links(&pool, mb).await?;
    tamper(
        &pool,
        "DELETE FROM ledger_events WHERE mailbox_id = $1 AND seq = $2",
        mb,
        2,
    )
    .await?;
    let mut conn = pool.acquire().await?;
    let forged = insert_raw(
        &mut conn,
        mb,
        2,
        run,
        EventType::MessageIngested,
        &rows[0].2,
    )
    .await?;
    assert_ne!(forged, rows[1].2);
    let report = verify(&pool, mb).await?;
    let fault = report.first_fault.ok_or("no fault")?;
    assert_eq!(fault.seq, 3, "{fault}");
    assert!(
        matches!(fault.reason, FaultReason::BrokenLink { .. }),
        "{fault}"
    );
    assert_eq!(report.chain_faults, 1);
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_gap_in_seq_is_named(pool: PgPool) -> TestResult {
    let (mb, _) = finished_chain(&pool, "gap@example.com", 6).await?;
    tamper(
        &pool,
        "DELETE FROM ledger_events WHERE mailbox_id = $1 AND seq = $2",
        mb,
        4,
    )
    .await?;
    let report = verify(&pool, mb).await?;
    let fault = report.first_fault.ok_or("no fault reported")?;
    assert_eq!(fault.seq, 5);
    assert_eq!(fault.reason, FaultReason::SeqGap { expected: 4 });
    assert_eq!(report.chain_faults, 1);
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_missing_first_event_is_a_gap_at_the_start(pool: PgPool) -> TestResult {
    let (mb, _) = finished_chain(&pool, "head@example.com", 3).await?;
    tamper(
        &pool,
        "DELETE FROM ledger_events WHERE mailbox_id = $1 AND seq = $2",
        mb,
        1,
    )
    .await?;
    let fault = verify(&pool, mb).await?.first_fault.ok_or("no fault")?;
    assert_eq!(fault.seq, 2);
    assert_eq!(fault.reason, FaultReason::SeqGap { expected: 1 });
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn finished_runs_need_exactly_one_matching_terminal(pool: PgPool) -> TestResult {
    let mb = mailbox(&pool, "runs@example.com").await?;
    // Run 1: completed, but the ledger never says so.
    let silent = running_run(&pool, mb).await?;
    append_committed(&pool, mb, silent, &messages("s", 2)).await?;
    finish_run(&pool, silent, "completed").await?;
    // Run 2: the ledger says failed, the table says completed.
    let liar = running_run(&pool, mb).await?;
    let mut tx = pool.begin().await?;
    ledger::append_terminal(
        &mut tx,
        mb,
        liar,
        ev(EventType::SyncFailed, Subject::Run(liar), json!({})),
    )
    .await?;
    tx.commit().await?;
    finish_run(&pool, liar, "completed").await?;
    // Run 3: still running with no terminal event: fine.
    let live = running_run(&pool, mb).await?;
    append_committed(&pool, mb, live, &messages("l", 1)).await?;

    let report = verify(&pool, mb).await?;
    assert_eq!(report.first_fault, None);
    assert_eq!(report.runs_checked, 3);
    assert_eq!(report.run_fault_count, 2);
    assert!(!report.is_ok());
    assert_eq!(report.run_faults[0].run_id, silent);
    assert_eq!(report.run_faults[0].reason, RunFaultReason::NoTerminalEvent);
    assert_eq!(report.run_faults[1].run_id, liar);
    assert_eq!(
        report.run_faults[1].reason,
        RunFaultReason::TerminalMismatch {
            seq: 3,
            event_type: "sync.failed".into()
        }
    );
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_second_terminal_behind_the_index_is_named(pool: PgPool) -> TestResult {
    let (mb, run) = finished_chain(&pool, "dup@example.com", 2).await?;
    let head = ledger::chain_head(&mut *pool.acquire().await?, mb)
        .await?
        .ok_or("empty")?;
    let mut conn = pool.acquire().await?;
    sqlx::query("DROP INDEX ledger_events_one_terminal")
        .execute(&mut *conn)
        .await?;
    insert_raw(
        &mut conn,
        mb,
        head.seq + 1,
        run,
        EventType::SyncFailed,
        &head.hash,
    )
    .await?;

    let report = verify(&pool, mb).await?;
    let fault = report.first_fault.ok_or("no fault")?;
    assert_eq!(fault.seq, 4);
    assert_eq!(
        fault.reason,
        FaultReason::DuplicateTerminal {
            run_id: run,
            first_seq: 3
        }
    );
    assert_eq!(report.terminal_events, 2);
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn an_event_of_another_mailboxs_run_is_named(pool: PgPool) -> TestResult {
    let mb = mailbox(&pool, "mine@example.com").await?;
    let run = running_run(&pool, mb).await?;
    let other = mailbox(&pool, "theirs@example.com").await?;
    let other_run = running_run(&pool, other).await?;
    let done = append_committed(&pool, mb, run, &messages("m", 2)).await?;
    let head = done.head.ok_or("no head")?;
    let mut conn = pool.acquire().await?;
    // The schema refuses it outright …
    let refused = insert_raw(
        &mut conn,
        mb,
        3,
        other_run,
        EventType::MessageIngested,
        &head.hash,
    )
    .await
    .expect_err("a run of another mailbox is refused by the foreign key");
    let constraint = refused.to_string().contains("ledger_events_run_of_mailbox");
    assert!(constraint, "unexpected error: {refused}");
    // … so only a superuser who switches constraint enforcement off can forge
    // it, and verify still names the row.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await?;
    insert_raw(
        &mut conn,
        mb,
        3,
        other_run,
        EventType::MessageIngested,
        &head.hash,
    )
    .await?;
    sqlx::query("SET session_replication_role = origin")
        .execute(&mut *conn)
        .await?;

    let fault = verify(&pool, mb).await?.first_fault.ok_or("no fault")?;
    assert_eq!(fault.seq, 3);
    assert_eq!(fault.reason, FaultReason::ForeignRun { run_id: other_run });
    Ok(())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn an_empty_chain_verifies(pool: PgPool) -> TestResult {
    let mb = mailbox(&pool, "empty@example.com").await?;
    let report = verify(&pool, mb).await?;
    assert!(report.is_ok());
    assert_eq!(report.events, 0);
    assert_eq!(report.head, None);
    Ok(())
}
