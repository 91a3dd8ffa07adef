//! The embedded database's file (issue 26, finding 9): every process that
//! opens one database file, by whatever path, shares its run locks, so a run
//! in flight is never taken over by a process that opened the file through a
//! symlink.

use std::time::Duration;

use ingest::repo::sqlite::SqliteRepository;
use ingest::repo::{RepoError, Repository, RunKind, RunStart};

fn start(mailbox_id: i64) -> RunStart {
    RunStart {
        mailbox_id,
        kind: RunKind::Backfill,
        window: None,
        start_history_id: None,
        stale_after: Duration::from_secs(600),
    }
}

#[tokio::test]
async fn a_symlinked_path_shares_the_files_run_locks() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("data").join("mailingest.db");
    let first = SqliteRepository::open(&real, 2).await.expect("open");
    first.migrate().await.expect("migrate");
    let (mailbox, _) = first
        .register_mailbox("org-1", "a@example.com")
        .await
        .expect("mailbox");
    let held = first.start_run(&start(mailbox)).await.expect("first run");

    // The same file through a link to it, and through a linked directory.
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let linked_dir = dir.path().join("elsewhere");
    std::os::unix::fs::symlink(dir.path().join("data"), &linked_dir).unwrap();
    for path in [link, linked_dir.join("mailingest.db")] {
        let other = SqliteRepository::open(&path, 2).await.expect("open by link");
        match other.start_run(&start(mailbox)).await {
            Err(RepoError::Locked { run_id, .. }) => {
                assert_eq!(run_id, Some(held.fence.run_id), "{}", path.display())
            }
            other => panic!("{}: expected Locked, got {other:?}", path.display()),
        }
        assert!(
            first.heartbeat(held.fence).await.expect("heartbeat"),
            "the first run still holds its mailbox"
        );
    }
}
