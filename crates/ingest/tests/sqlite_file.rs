//! The embedded database's file (issue 26, finding 9): every process that
//! opens one database file, by whatever path, shares its run locks, so a run
//! in flight is never taken over by a process that opened the file through a
//! symlink; and a database file removed or replaced under a running process
//! is noticed at its next write, which fails and commits nothing.

use std::time::Duration;

use ingest::repo::SqliteRepository;
use ingest::repo::prelude::*;
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
        let other = SqliteRepository::open(&path, 2)
            .await
            .expect("open by link");
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

#[tokio::test]
async fn a_file_removed_or_replaced_under_a_run_fails_its_next_write() {
    for replace in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailingest.db");
        let repo = SqliteRepository::open(&path, 2).await.expect("open");
        repo.migrate().await.expect("migrate");
        let (mailbox, _) = repo
            .register_mailbox("org-1", "a@example.com")
            .await
            .expect("mailbox");
        let mut held = repo.start_run(&start(mailbox)).await.expect("run");
        let tx = repo.begin(held.fence).await.expect("a write before");
        tx.commit().await.expect("commit before");

        if replace {
            // A restore copies another database over the path.
            let other = dir.path().join("restored.db");
            let restored = SqliteRepository::open(&other, 1).await.expect("other");
            restored.migrate().await.expect("migrate other");
            drop(restored);
            std::fs::rename(&other, &path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let what = if replace { "replaced" } else { "removed" };
        for result in [
            repo.begin(held.fence).await.map(drop),
            repo.finish_run(
                &mut held,
                &ingest::repo::RunEnd {
                    status: ingest::repo::RunStatus::Completed,
                    counts: serde_json::json!({}),
                    error: None,
                    cursor: ingest::repo::CursorUpdate::Keep,
                },
            )
            .await,
            repo.start_run(&start(mailbox)).await.map(drop),
        ] {
            match result {
                Err(e @ RepoError::DatabaseFileReplaced { .. }) => {
                    let line = e.to_string();
                    assert!(line.contains(&path.display().to_string()), "{line}");
                    assert!(!line.contains('\n'), "one line: {line}");
                }
                other => panic!("{what}: expected DatabaseFileReplaced, got {other:?}"),
            }
        }
    }
}
