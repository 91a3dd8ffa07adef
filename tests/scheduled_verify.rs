//! The worker checks each mailbox's completeness on a schedule (`verify
//! --full` after a sync), records the result, and `status --check` turns red
//! when the last check found a difference.

mod common;

use std::time::Duration;

use common::{TestBed, small_mailbox};

async fn due_now(bed: &TestBed) {
    sqlx::query("UPDATE mailboxes SET next_verify_at = now()")
        .execute(bed.pg())
        .await
        .expect("make the check due");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_checks_completeness_and_status_reports_what_it_found() {
    let bed = TestBed::new(small_mailbox(8)).await;
    let out = bed.run(&["mailbox", "add", &bed.mailbox]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    due_now(&bed).await;
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
    let (ok, missing): (bool, i64) =
        sqlx::query_as("SELECT ok, missing_here FROM verify_runs ORDER BY id LIMIT 1")
            .fetch_one(bed.pg())
            .await
            .expect("first check");
    assert!(ok && missing == 0, "the first check is clean");
    let next: bool =
        sqlx::query_scalar("SELECT next_verify_at > now() + interval '50 minutes' FROM mailboxes")
            .fetch_one(bed.pg())
            .await
            .expect("next check");
    assert!(next, "the next check is an hour away");

    // Lose a message behind the pipeline's back: the next check must see it.
    let lost: String = sqlx::query_scalar(
        "DELETE FROM mail_messages WHERE id = (SELECT min(id) FROM mail_messages
           WHERE NOT EXISTS (SELECT 1 FROM mail_attachments a WHERE a.message_id = mail_messages.id))
         RETURNING provider_message_id",
    )
    .fetch_one(bed.pg())
    .await
    .expect("delete a row");
    due_now(&bed).await;
    bed.wait_for_count(
        "SELECT count(*) FROM verify_runs",
        2,
        Duration::from_secs(60),
    )
    .await;
    let (ok, missing, findings): (bool, i64, Vec<String>) = sqlx::query_as(
        "SELECT ok, missing_here, findings FROM verify_runs ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(bed.pg())
    .await
    .expect("second check");
    assert!(!ok, "{findings:?}");
    assert_eq!(missing, 1, "{findings:?}");
    assert!(
        findings.iter().any(|f| f.contains(&lost)),
        "names {lost}: {findings:?}"
    );

    let out = bed.run(&["status", "--check", "--json"]).await;
    assert_eq!(out.status.code(), Some(5));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let reasons: Vec<&str> = status[0]["degraded"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(|d| d["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"verify_findings"), "{status}");

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().expect("pid").to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(30), worker.wait()).await;
}
