//! The worker loop as a library, without the CLI: it claims only its own org's
//! due mailboxes, works on each claimed row by its id, and schedules the next
//! sync from what the sync amounted to. Real PostgreSQL, the emulator over HTTP.

use std::sync::Arc;
use std::time::Duration;

use gmail::{AuthSpec, ClientConfig, GmailClient, QuotaConfig};
use gmail_emulator::{Emulator, EmulatorConfig};
use ingest::engine::{Engine, EngineError, EngineOptions};
use ingest::repo::NextSync;
use ingest::repo::PgRepository;
use ingest::worker::{SyncAttempt, Worker, WorkerOptions};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

async fn engine(pool: &PgPool, emulator: &Emulator, org: &str, store: &std::path::Path) -> Engine {
    let mut config = ClientConfig::new(AuthSpec::None).with_endpoint(emulator.url());
    config.quota = QuotaConfig::per_second(100_000.0);
    Engine {
        repo: Arc::new(PgRepository::new(pool.clone())),
        gmail: GmailClient::new(config).await.expect("client"),
        store: store::BlobStore::from_url(&store.to_string_lossy(), org)
            .await
            .expect("store"),
        org: org.into(),
        options: EngineOptions::default(),
    }
}

async fn emulator(seed: u64, messages: usize, mailboxes: &[&str]) -> Emulator {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Emulator::start(EmulatorConfig {
        seed,
        messages,
        days: 3,
        mailboxes: mailboxes.iter().map(|m| m.to_string()).collect(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator")
}

fn options() -> WorkerOptions {
    WorkerOptions {
        concurrency: 2,
        poll: Duration::from_millis(50),
        max_rounds: Some(1),
        ..WorkerOptions::default()
    }
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_worker_serves_its_own_org_only_and_by_the_claimed_id(pool: PgPool) {
    let mailboxes = ["ann@example.com", "bob@example.com", "cat@example.com"];
    let emulator = emulator(5, 8, &mailboxes).await;
    let store = tempfile::tempdir().expect("store");
    let ours = engine(&pool, &emulator, "org-a", store.path()).await;
    let repo = ours.repo.clone();
    let (ann, _) = repo.add_mailbox("org-a", mailboxes[0], None).await.unwrap();
    let (bob, _) = repo.add_mailbox("org-a", mailboxes[1], None).await.unwrap();
    let (cat, _) = repo.add_mailbox("org-b", mailboxes[2], None).await.unwrap();

    let report = Worker::new(ours, options())
        .run(CancellationToken::new())
        .await;
    assert_eq!(
        (report.rounds, report.synced, report.failed),
        (1, 2, 0),
        "{report:?}"
    );

    // Each of org-a's mailboxes synced once, under its own row; org-b's untouched.
    for id in [ann, bob] {
        let runs = scalar(
            &pool,
            &format!(
                "SELECT count(*) FROM sync_runs WHERE mailbox_id = {id} AND status = 'completed'"
            ),
        )
        .await;
        assert_eq!(runs, 1, "mailbox {id}");
        let stored = scalar(
            &pool,
            &format!("SELECT count(*) FROM mail_messages WHERE mailbox_id = {id}"),
        )
        .await;
        assert!(stored > 0, "mailbox {id} stored nothing");
    }
    assert_eq!(
        scalar(
            &pool,
            &format!("SELECT count(*) FROM sync_runs WHERE mailbox_id = {cat}")
        )
        .await,
        0
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM mailboxes").await,
        3,
        "no second row for a claimed mailbox"
    );
    // Synced mailboxes are due again after their interval; org-b's is still due now.
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM mailboxes WHERE org_id = 'org-a' AND next_sync_at > now() + interval '4 minutes'").await,
        2
    );
    assert_eq!(
        scalar(
            &pool,
            &format!("SELECT count(*) FROM mailboxes WHERE id = {cat} AND next_sync_at <= now()")
        )
        .await,
        1
    );
    // Blobs went under org-a's prefix, none under org-b's.
    assert!(store.path().join("org-a").exists());
    assert!(!store.path().join("org-b").exists());
    emulator.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_failing_mailbox_backs_off_and_the_others_still_sync(pool: PgPool) {
    let emulator = emulator(6, 4, &["ann@example.com"]).await;
    let store = tempfile::tempdir().expect("store");
    let ours = engine(&pool, &emulator, "org-a", store.path()).await;
    let repo = ours.repo.clone();
    repo.add_mailbox("org-a", "ann@example.com", None)
        .await
        .unwrap();
    // Gmail does not know this mailbox: every sync of it fails.
    let (ghost, _) = repo
        .add_mailbox("org-a", "ghost@example.com", None)
        .await
        .unwrap();

    let report = Worker::new(ours, options())
        .run(CancellationToken::new())
        .await;
    assert_eq!((report.synced, report.failed), (1, 1), "{report:?}");
    let (failures, has_error): (i32, bool) = sqlx::query_as(
        "SELECT consecutive_failures, last_error IS NOT NULL FROM mailboxes WHERE id = $1",
    )
    .bind(ghost)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((failures, has_error), (1, true));
    // Backed off: interval × 2 (the default interval is 300 s).
    assert_eq!(
        scalar(&pool, &format!("SELECT count(*) FROM mailboxes WHERE id = {ghost} AND next_sync_at > now() + interval '9 minutes'")).await,
        1
    );
    emulator.shutdown().await;
}

#[test]
fn outcomes_decide_the_schedule() {
    let options = WorkerOptions {
        interval: Some(Duration::from_secs(60)),
        busy_retry: Duration::from_secs(7),
        ..WorkerOptions::default()
    };
    let busy = SyncAttempt::of(Err(EngineError::Locked {
        mailbox: "a@example.com".into(),
        run_id: Some(1),
        heartbeat_age_secs: 3,
    }));
    assert!(matches!(busy, SyncAttempt::Busy));
    assert!(
        matches!(busy.next_sync(&options), NextSync::Retry { after } if after == Duration::from_secs(7))
    );

    let lost = SyncAttempt::of(Err(EngineError::LeaseLost {
        mailbox: "a@example.com".into(),
        run_id: 1,
    }));
    assert!(
        matches!(lost, SyncAttempt::Busy),
        "a taken-over run is not a failure"
    );

    let failed = SyncAttempt::of(Err(EngineError::Internal("boom".into())));
    match failed.next_sync(&options) {
        NextSync::AfterFailure { error, interval } => {
            assert_eq!(error, "boom");
            assert_eq!(interval, Some(Duration::from_secs(60)));
        }
        other => panic!("a failure must back off, got {other:?}"),
    }
}
