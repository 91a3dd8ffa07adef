//! `mailingest gc` through the binary, on both backends: it removes objects
//! no row records once older than the grace period, and staging files of
//! killed writers, and nothing else (`--dry-run` lists them with sizes and
//! removes nothing); and gc running again and again beside a backfill that
//! resumes a killed run (whose unrecorded objects gc targets) loses nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use common::{Backend, TestBed, small_mailbox};
use gmail_emulator::Faults;
use serde_json::Value;
use sha2::Digest;

on_both_backends!(
    gc_removes_old_unrecorded_objects_and_nothing_else,
    gc_beside_a_resumed_backfill_loses_nothing,
    a_blob_removed_after_a_run_found_it_fails_the_batch_not_the_archive,
    a_blob_removed_after_a_run_wrote_it_fails_the_batch_not_the_archive,
    purge_removes_only_what_long_deleted_mail_alone_holds,
    gc_against_a_database_that_is_not_the_stores_removes_nothing,
    removed_objects_wait_in_the_trash_and_can_come_back,
    gc_brings_back_a_recorded_object_found_only_in_the_trash,
);

/// Where the store's trash keeps the object at `path` (`<org>/.trash/sha256/…`).
fn in_trash(root: &Path, path: &Path) -> PathBuf {
    let relative = path.strip_prefix(root).expect("inside the store");
    let mut parts = relative.iter();
    let org = parts.next().expect("the org's prefix");
    root.join(org)
        .join(".trash")
        .join(parts.collect::<PathBuf>())
}

async fn gc_json(bed: &TestBed, args: &[&str]) -> Value {
    let mut all = vec!["gc"];
    all.extend_from_slice(args);
    let (code, report) = bed.run_json(&all).await;
    assert_eq!(code, 0, "{report}");
    report
}

/// Issue 26: removal is two-phase. gc moves an object to the store's trash;
/// `gc --restore` brings it back; only after the trash's own retention is an
/// object deleted for good.
async fn removed_objects_wait_in_the_trash_and_can_come_back(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(10)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let root = bed.store_path();
    let sha_dir = sha256_dir(&root);
    let bytes = b"an object no row records, two days old";
    let (orphan, path) = unrecorded_object(&sha_dir, bytes, OLD);
    let trashed = in_trash(&root, &path);

    let report = gc_json(&bed, &[]).await;
    assert_eq!(
        removed(&report),
        vec![(orphan.clone(), bytes.len() as u64)],
        "{report}"
    );
    assert!(!path.exists() && trashed.exists(), "moved to the trash");
    assert_eq!(std::fs::read(&trashed).unwrap(), bytes);
    assert_eq!(report["trash"]["held"], 1, "{report}");

    let out = bed.run(&["gc", "--restore", &orphan]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(path.exists() && !trashed.exists(), "brought back");
    // Brought back young: the grace period protects it anew.
    let report = gc_json(&bed, &[]).await;
    assert!(removed(&report).is_empty(), "{report}");

    // Old again, trashed again; deleted for good once the trash's retention is over.
    set_age(&path, OLD);
    let report = gc_json(&bed, &[]).await;
    assert_eq!(removed(&report).len(), 1, "{report}");
    let report = gc_json(&bed, &["--trash-retention", "1h"]).await;
    assert_eq!(
        report["trash"]["emptied"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    assert!(trashed.exists(), "within its retention");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = gc_json(&bed, &["--trash-retention", "1s"]).await;
    assert_eq!(
        report["trash"]["emptied"][0]["sha256"],
        orphan.as_str(),
        "{report}"
    );
    assert!(!trashed.exists() && !path.exists(), "gone for good");
    let out = bed.run(&["gc", "--restore", &orphan]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 of 1 objects"));
    bed.assert_verify_clean().await;
}

/// Issue 26: an object a row records that only the trash holds (gc removed it
/// while a run was recording it: clocks apart, or a database restored from a
/// backup) is brought back by the next gc, before anything else.
async fn gc_brings_back_a_recorded_object_found_only_in_the_trash(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(10)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let root = bed.store_path();
    let path = object_files(&root).into_iter().next().expect("an object");
    let trashed = in_trash(&root, &path);
    std::fs::create_dir_all(trashed.parent().unwrap()).unwrap();
    std::fs::rename(&path, &trashed).unwrap();
    let out = bed.run(&["verify", "--deep", "--offline"]).await;
    assert_eq!(out.status.code(), Some(4), "verify sees it missing");

    let dry = gc_json(&bed, &["--dry-run"]).await;
    assert_eq!(
        dry["trash"]["restored"].as_array().map(Vec::len),
        Some(1),
        "{dry}"
    );
    assert!(trashed.exists(), "a dry run changes nothing");
    let report = gc_json(&bed, &[]).await;
    let hex = path.file_name().unwrap().to_str().unwrap();
    assert_eq!(report["trash"]["restored"][0], hex, "{report}");
    assert!(path.exists() && !trashed.exists());
    bed.assert_verify_clean().await;
}

const OLD: Duration = Duration::from_secs(2 * 86400);

/// Every object file under the store root (named by 64 hex digits), the
/// trash's included; not the ledger heads runs leave (`.ledger-heads`).
fn object_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read store dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                if entry.file_name() != ".ledger-heads" {
                    dirs.push(path);
                }
            } else if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `<root>/<org>/sha256`, learnt from a stored object.
fn sha256_dir(root: &Path) -> PathBuf {
    let any = object_files(root).into_iter().next().expect("an object");
    any.ancestors().nth(3).expect("sha256 dir").to_path_buf()
}

fn set_age(path: &Path, age: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now() - age))
        .unwrap_or_else(|e| panic!("age {}: {e}", path.display()));
}

/// An object no row records, as a run that died before its commit leaves one.
fn unrecorded_object(sha_dir: &Path, bytes: &[u8], age: Duration) -> (String, PathBuf) {
    let hex = hex::encode(sha2::Sha256::digest(bytes));
    let dir = sha_dir.join(&hex[..2]).join(&hex[2..4]);
    std::fs::create_dir_all(&dir).expect("object dir");
    let path = dir.join(&hex);
    std::fs::write(&path, bytes).expect("write object");
    set_age(&path, age);
    (hex, path)
}

fn staging_file(dir: &Path, name: &str, age: Duration) -> PathBuf {
    let path = dir.join(format!(".staging-{name}"));
    std::fs::write(&path, b"half a blob").expect("staging file");
    set_age(&path, age);
    path
}

fn removed(report: &Value) -> Vec<(String, u64)> {
    report["removed"]
        .as_array()
        .unwrap_or_else(|| panic!("no removed list in {report}"))
        .iter()
        .map(|c| {
            (
                c["sha256"].as_str().expect("sha256").to_owned(),
                c["size"].as_u64().expect("size"),
            )
        })
        .collect()
}

async fn gc_removes_old_unrecorded_objects_and_nothing_else(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(30)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let root = bed.store_path();
    let recorded = object_files(&root);
    assert!(!recorded.is_empty());
    // However old, an object a row records is never garbage.
    for path in &recorded {
        set_age(path, OLD);
    }
    let sha_dir = sha256_dir(&root);
    let orphan_bytes = b"stored by a run that died two days ago, never recorded";
    let (orphan, orphan_path) = unrecorded_object(&sha_dir, orphan_bytes, OLD);
    let (_, young_path) = unrecorded_object(
        &sha_dir,
        b"stored a minute ago by a run that has not committed yet",
        Duration::from_secs(60),
    );
    let leaf = orphan_path.parent().expect("leaf").to_path_buf();
    let old_staging = staging_file(&leaf, "killed-writer", OLD);
    let young_staging = staging_file(&sha_dir, "live-writer", Duration::from_secs(60));

    // A dry run lists what would go, with sizes, and removes nothing.
    let text = bed.run(&["gc", "--dry-run"]).await;
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("would remove {orphan} ({} B", orphan_bytes.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains("would discard unfinished staging file"),
        "{stdout}"
    );
    let (code, dry) = bed.run_json(&["gc", "--dry-run"]).await;
    assert_eq!(code, 0, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        removed(&dry),
        vec![(orphan.clone(), orphan_bytes.len() as u64)]
    );
    assert_eq!(
        dry["recorded"].as_u64(),
        Some(recorded.len() as u64),
        "{dry}"
    );
    assert_eq!(dry["young"].as_u64(), Some(1), "{dry}");
    assert_eq!(dry["discarded"].as_array().map(Vec::len), Some(1), "{dry}");
    assert!(
        orphan_path.exists() && old_staging.exists(),
        "a dry run removes nothing"
    );

    let (code, done) = bed.run_json(&["gc"]).await;
    assert_eq!(code, 0, "{done}");
    assert_eq!(removed(&done), vec![(orphan, orphan_bytes.len() as u64)]);
    assert_eq!(
        done["removed_bytes"].as_u64(),
        Some(orphan_bytes.len() as u64)
    );
    assert!(!orphan_path.exists(), "the old unrecorded object is gone");
    assert!(
        !old_staging.exists(),
        "the killed writer's staging file is gone"
    );
    assert!(
        young_path.exists(),
        "an object younger than the grace period stays"
    );
    assert!(young_staging.exists(), "a live writer's staging file stays");
    for path in &recorded {
        assert!(path.exists(), "recorded object {} kept", path.display());
    }
    assert_eq!(
        bed.count("SELECT count(*) FROM blob_copies").await,
        recorded.len() as i64,
        "gc leaves no row behind"
    );
    bed.assert_verify_clean().await;

    let (code, again) = bed.run_json(&["gc"]).await;
    assert_eq!(code, 0, "{again}");
    assert!(removed(&again).is_empty(), "{again}");

    // A grace shorter than an hour could take what a run in flight just wrote.
    let short = bed.run(&["gc", "--grace", "10m"]).await;
    assert_eq!(short.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("shorter than 1h"), "{stderr}");
}

async fn gc_beside_a_resumed_backfill_loses_nothing(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(160)).await;
    let (messages, _) = bed.expected_ids().await;
    bed.emulator.set_faults(Faults {
        latency_ms: 40,
        latency_jitter_ms: 30,
        ..Faults::default()
    });
    // A run killed mid-backfill leaves objects it stored but never recorded.
    let mut child = bed
        .command()
        .args(["backfill", "--mailbox", bed.mailbox.as_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn backfill");
    bed.wait_for_count(
        "SELECT count(*) FROM mail_messages",
        1,
        Duration::from_secs(60),
    )
    .await;
    child.start_kill().expect("kill -9");
    child.wait().await.expect("wait");
    // Two days pass: every object, recorded or not, is older than the grace period.
    let root = bed.store_path();
    for path in object_files(&root) {
        set_age(&path, OLD);
    }

    // The resumed backfill finds those objects again while gc keeps collecting.
    let resumed = bed
        .command()
        .args(["backfill", "--mailbox", bed.mailbox.as_str(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backfill");
    let backfill = tokio::spawn(resumed.wait_with_output());
    let mut collections = 0;
    while !backfill.is_finished() {
        // --force: early on, the killed run left more objects unrecorded than
        // recorded, which without it gc takes for a wrong DATABASE_URL.
        let (code, report) = bed.run_json(&["gc", "--force"]).await;
        assert_eq!(code, 0, "{report}");
        collections += 1;
    }
    let out = backfill.await.expect("join").expect("backfill output");
    assert!(collections >= 1);
    if out.status.code() != Some(0) {
        // The one way the race may end a run: a batch that found an object
        // gc then removed fails before writing anything, naming it.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("removed from the store (by gc)"),
            "exit {:?}: {stderr}",
            out.status.code()
        );
        let (code, run) = bed.backfill(&[]).await;
        assert_eq!(code, 0, "{run}");
    }
    let stored = bed
        .strings("SELECT provider_message_id FROM mail_messages")
        .await;
    assert_eq!(stored.len(), messages.len(), "no duplicate, nothing lost");
    // Every row's blob is in the store and hashes to its key.
    bed.assert_verify_clean().await;
    let (code, last) = bed.run_json(&["gc"]).await;
    assert_eq!(code, 0, "{last}");
    bed.assert_verify_clean().await;
}

/// The writer's half of gc's protocol, with gc's moves made by hand at the
/// worst instant: a run finds an old unrecorded object (a killed run's), gc
/// claims its hash and removes it before the run commits. The run must not
/// commit a row that points at nothing: its batch fails, naming the blob, and
/// the next run stores the message again.
async fn a_blob_removed_after_a_run_found_it_fails_the_batch_not_the_archive(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(12)).await;
    let (messages, _) = bed.expected_ids().await;
    let victim = messages.iter().next().expect("a message").clone();
    let raw = bed
        .emulator
        .raw_message(&bed.mailbox, &victim)
        .expect("raw message");
    let store = store::BlobStore::from_url(&bed.store_path().to_string_lossy(), "default")
        .await
        .expect("open store");
    let left = store.put(bytes::Bytes::from(raw)).await.expect("put");
    let object = bed.store_path().join(&left.key);
    set_age(&object, OLD);
    let aged = std::fs::metadata(&object)
        .and_then(|m| m.modified())
        .expect("mtime");

    // The mailbox's labels are known already (a run of an empty window
    // learned them), as after any first run: the run below writes nothing
    // before it finds the object (on SQLite a write would wait for gc's
    // transaction, which here waits for the run).
    let (code, first) = bed
        .backfill(&["--since", "2000-01-01", "--until", "2000-01-02"])
        .await;
    assert_eq!(code, 0, "{first}");
    assert_eq!(bed.count("SELECT count(*) FROM mail_messages").await, 0);

    // Slow Gmail: the run starts, then takes a while to fetch and commit.
    bed.emulator.set_faults(Faults {
        latency_ms: 400,
        ..Faults::default()
    });
    let run = bed
        .command()
        .args(["backfill", "--mailbox", bed.mailbox.as_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backfill");
    bed.wait_for_count(
        "SELECT count(*) FROM sync_runs WHERE status = 'running'",
        1,
        Duration::from_secs(30),
    )
    .await;
    // gc claims the hash (its transaction stays open, as while it removes objects).
    let repo = ingest::repo::DatabaseTarget::parse(&bed.db_url)
        .expect("database url")
        .open(2)
        .await
        .expect("open repository");
    let mut gc = repo.begin_gc("default").await.expect("begin gc");
    let row = ingest::repo::BlobUpsert {
        sha256: left.sha256.to_string(),
        size: i64::try_from(left.size).expect("size"),
        storage_key: left.key.clone(),
    };
    assert_eq!(
        gc.claim_unrecorded(&[row]).await.expect("claim"),
        vec![left.sha256.to_string()]
    );
    // The run finds the object (its put refreshes the object's time)...
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&object)
        .and_then(|m| m.modified())
        .expect("mtime")
        == aged
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never found the object"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...and gc removes it before the run's batch commits.
    std::fs::remove_file(&object).expect("remove object");
    gc.finish().await.expect("finish gc");

    let out = run.wait_with_output().await.expect("backfill");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "blob {} was removed from the store (by gc)",
            left.sha256
        )),
        "{said}"
    );
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM mail_messages WHERE provider_message_id = '{victim}'"
        ))
        .await,
        0,
        "no row points at the removed blob"
    );
    bed.assert_verify_clean().await;

    bed.emulator.set_faults(Faults::default());
    let (code, again) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{again}");
    let stored = bed
        .strings("SELECT provider_message_id FROM mail_messages")
        .await;
    assert_eq!(
        stored.len(),
        messages.len(),
        "nothing lost, nothing doubled"
    );
    assert!(object.exists(), "the next run stored the blob again");
    bed.assert_verify_clean().await;
}

/// Issue 26, finding 4: the same race for an object the run's put WROTE. gc
/// judges age by the object's time against its own clock; with the clocks
/// apart (a store or host whose clock is off, a host that was suspended, an
/// operator's back-dated grace) a freshly written object looks old. gc's moves
/// are made by hand at the worst instant: claimed and removed after the put
/// wrote it, before the batch commits. The run must not commit a row that
/// points at nothing (before the fix it did, and exited 0).
async fn a_blob_removed_after_a_run_wrote_it_fails_the_batch_not_the_archive(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(40)).await;
    let (messages, _) = bed.expected_ids().await;
    let root = bed.store_path();
    assert!(object_files(&root).is_empty());
    // Opened (and migrated) first: gc must be ready the moment the run writes.
    let repo = ingest::repo::DatabaseTarget::parse(&bed.db_url)
        .expect("database url")
        .open(2)
        .await
        .expect("open repository");

    // Uneven latency: the batch waits for its slowest fetch, so its first
    // object is written a second or more before it commits (an even latency
    // let all fetches land at once, and the batch sometimes committed before
    // the claim below on a loaded machine).
    bed.emulator.set_faults(Faults {
        latency_ms: 400,
        latency_jitter_ms: 2000,
        ..Faults::default()
    });
    let run = bed
        .command()
        .args(["backfill", "--mailbox", bed.mailbox.as_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backfill");
    // The run's first put writes an object...
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let object = loop {
        if let Some(first) = object_files(&root).into_iter().next() {
            break first;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never wrote an object"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let hex = object
        .file_name()
        .and_then(|n| n.to_str())
        .expect("object name")
        .to_owned();
    // ...and a gc whose clock makes it look old claims and removes it before
    // the batch commits.
    let mut gc = repo.begin_gc("default").await.expect("begin gc");
    let row = ingest::repo::BlobUpsert {
        sha256: hex.clone(),
        size: 1,
        storage_key: object
            .strip_prefix(&root)
            .expect("in the store")
            .to_string_lossy()
            .into_owned(),
    };
    assert_eq!(
        gc.claim_unrecorded(&[row]).await.expect("claim"),
        vec![hex.clone()],
        "gc claimed the hash before the run recorded it"
    );
    std::fs::remove_file(&object).expect("remove object");
    gc.finish().await.expect("finish gc");

    let out = run.wait_with_output().await.expect("backfill");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("blob {hex} was removed from the store (by gc)")),
        "{said}"
    );
    assert_eq!(
        bed.count(&format!(
            "SELECT (SELECT count(*) FROM mail_messages WHERE raw_sha256 = '{hex}')
                  + (SELECT count(*) FROM mail_attachments WHERE sha256 = '{hex}')"
        ))
        .await,
        0,
        "no row points at the removed blob"
    );
    bed.assert_verify_clean().await;

    bed.emulator.set_faults(Faults::default());
    let (code, again) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{again}");
    let stored = bed
        .strings("SELECT provider_message_id FROM mail_messages")
        .await;
    assert_eq!(
        stored.len(),
        messages.len(),
        "nothing lost, nothing doubled"
    );
    assert!(object.exists(), "the next run stored the blob again");
    bed.assert_verify_clean().await;
}

/// Moves the deletion time of these messages `days` into the past.
async fn deleted_days_ago(bed: &TestBed, ids: &[String], days: u32) {
    let list = ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let shift = match bed.backend() {
        Backend::Postgres => format!("deleted_at - interval '{days} days'"),
        Backend::Sqlite => {
            format!("strftime('%Y-%m-%dT%H:%M:%f+00:00', deleted_at, '-{days} days')")
        }
    };
    let moved = bed
        .execute(&format!(
            "UPDATE mail_messages SET deleted_at = {shift}
             WHERE deleted_at IS NOT NULL AND provider_message_id IN ({list})"
        ))
        .await;
    assert_eq!(moved, ids.len() as u64);
}

/// The blobs (raw and parts) of one message.
async fn blobs_of(bed: &TestBed, id: &str) -> Vec<String> {
    bed.strings(&format!(
        "SELECT raw_sha256 FROM mail_messages WHERE provider_message_id = '{id}'
         UNION
         SELECT a.sha256 FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
         WHERE m.provider_message_id = '{id}'"
    ))
    .await
}

async fn purge_removes_only_what_long_deleted_mail_alone_holds(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(40)).await;
    let (messages, _) = bed.expected_ids().await;
    let ids: Vec<String> = messages.iter().take(4).cloned().collect();
    let (old_a, old_b, shared_old, recent) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    // A live copy of shared_old's exact bytes: its raw blob is held by a live message.
    let raw = bed
        .emulator
        .raw_message(&bed.mailbox, shared_old)
        .expect("raw");
    bed.emulator
        .insert_raw(&bed.mailbox, &raw, &["INBOX"], None)
        .expect("insert copy");
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let shared_raw = bed
        .strings(&format!(
            "SELECT raw_sha256 FROM mail_messages WHERE provider_message_id = '{shared_old}'"
        ))
        .await
        .remove(0);
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM mail_messages WHERE raw_sha256 = '{shared_raw}'"
        ))
        .await,
        2,
        "the copy shares the raw blob"
    );
    let raw_a = bed.emulator.raw_message(&bed.mailbox, old_a).expect("raw");
    let raw_a_sha = hex::encode(sha2::Sha256::digest(&raw_a));
    for id in &ids {
        bed.emulator
            .delete_message(&bed.mailbox, id)
            .expect("delete");
    }
    let (code, synced) = bed.sync().await;
    assert_eq!(code, 0, "{synced}");
    deleted_days_ago(
        &bed,
        &[old_a.clone(), old_b.clone(), shared_old.clone()],
        30,
    )
    .await;
    let doomed: std::collections::BTreeSet<String> = [old_a, old_b]
        .iter()
        .map(|id| blobs_of(&bed, id))
        .collect::<futures::future::JoinAll<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    let kept: Vec<String> = [
        blobs_of(&bed, shared_old).await,
        blobs_of(&bed, recent).await,
    ]
    .concat()
    .into_iter()
    .filter(|sha| !doomed.contains(sha))
    .collect();
    assert!(kept.contains(&shared_raw));
    let store = bed.store_path();
    let object = |sha: &str| -> PathBuf {
        store
            .join("default/sha256")
            .join(&sha[..2])
            .join(&sha[2..4])
            .join(sha)
    };

    let (code, dry) = bed
        .run_json(&["gc", "--purge-deleted-older-than", "7d", "--dry-run"])
        .await;
    assert_eq!(code, 0, "{dry}");
    let listed = |report: &Value| -> std::collections::BTreeSet<String> {
        report["purge"][0]["removed"]
            .as_array()
            .unwrap_or_else(|| panic!("{report}"))
            .iter()
            .map(|c| c["sha256"].as_str().expect("sha").to_owned())
            .collect()
    };
    assert_eq!(listed(&dry), doomed, "{dry}");
    assert!(
        doomed.iter().all(|sha| object(sha).exists()),
        "a dry run removes nothing"
    );

    let (code, done) = bed
        .run_json(&["gc", "--purge-deleted-older-than", "7d"])
        .await;
    assert_eq!(code, 0, "{done}");
    assert_eq!(listed(&done), doomed, "{done}");
    for sha in &doomed {
        assert!(!object(sha).exists(), "{sha} removed");
    }
    for sha in &kept {
        assert!(object(sha).exists(), "{sha} kept: other mail holds it");
    }
    assert_eq!(
        bed.count(
            "SELECT count(*) FROM blob_copies WHERE state = 'purged' AND purged_at IS NOT NULL"
        )
        .await,
        doomed.len() as i64
    );
    assert_eq!(
        bed.count(
            "SELECT count(*) FROM ledger_events e JOIN sync_runs r ON r.id = e.run_id
             WHERE e.event_type = 'blob.removed' AND r.kind = 'gc' AND r.status = 'completed'"
        )
        .await,
        doomed.len() as i64,
        "one blob.removed per object, in a completed gc run"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_messages").await,
        messages.len() as i64 + 1,
        "every row stays"
    );
    // The archive still proves itself: chain, rows, and every blob that should be there.
    bed.assert_verify_clean().await;

    // Export skips purged mail, says so, and fails nothing.
    let out_path = bed.store_path().join("export.mbox");
    let (code, exported) = bed
        .run_json(&[
            "export",
            "--format",
            "mbox",
            "--include-deleted",
            "--out",
            out_path.to_str().expect("path"),
        ])
        .await;
    assert_eq!(code, 0, "{exported}");
    let purged: std::collections::BTreeSet<&str> = exported["purged"]
        .as_array()
        .expect("purged list")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    assert_eq!(
        purged,
        [old_a.as_str(), old_b.as_str()].into(),
        "{exported}"
    );

    // Again: nothing left to purge.
    let (code, again) = bed
        .run_json(&["gc", "--purge-deleted-older-than", "7d"])
        .await;
    assert_eq!(code, 0, "{again}");
    assert!(listed(&again).is_empty(), "{again}");

    // The same bytes arriving again bring the purged blob back to present.
    bed.emulator
        .insert_raw(&bed.mailbox, &raw_a, &["INBOX"], None)
        .expect("insert again");
    let (code, synced) = bed.sync().await;
    assert_eq!(code, 0, "{synced}");
    assert!(object(&raw_a_sha).exists(), "stored again");
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM blob_copies WHERE sha256 = '{raw_a_sha}' AND state = 'present' AND purged_at IS NULL"
        ))
        .await,
        1
    );
    bed.assert_verify_clean().await;
}

/// On S3, `gc` through the binary aborts a multipart upload a killed writer
/// left, and removes nothing the archive records. (The test server reports
/// every upload as started on 2010-11-10, so this one counts as old.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_on_s3_aborts_an_unfinished_multipart_upload() {
    let Ok(bucket) = std::env::var("MAILINGEST_TEST_S3_BUCKET") else {
        panic!("needs the S3 test server: run through scripts/test.sh");
    };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let bed = TestBed::on(Backend::Sqlite, small_mailbox(6)).await;
    let root = format!("gc-{}", bed.db_name);
    let url = format!("s3://{bucket}/{root}");
    let run = |args: &[&str]| {
        let mut cmd = bed.command();
        cmd.env("MAILINGEST_STORE", &url).args(args).arg("--json");
        cmd.output()
    };
    let out = run(&["backfill", "--mailbox", bed.mailbox.as_str()])
        .await
        .expect("backfill");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let key = format!("{root}/default/sha256/ab/cd/{}", "ab".repeat(32));
    s3.create_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("start an upload");

    let out = run(&["gc", "--dry-run"]).await.expect("gc --dry-run");
    let dry: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(0), "{dry}");
    assert_eq!(dry["discarded"][0]["kind"], "multipart_upload", "{dry}");
    assert_eq!(dry["discarded"][0]["name"], key.as_str(), "{dry}");

    let out = run(&["gc"]).await.expect("gc");
    let done: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(0), "{done}");
    assert_eq!(
        done["discarded"].as_array().map(Vec::len),
        Some(1),
        "{done}"
    );
    assert!(removed(&done).is_empty(), "recorded objects stay: {done}");
    assert!(done["recorded"].as_u64().is_some_and(|n| n > 0), "{done}");
    let left = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .prefix(&root)
        .send()
        .await
        .expect("list uploads");
    assert!(left.uploads().is_empty(), "aborted: {:?}", left.uploads());
    let out = run(&["verify", "--deep"]).await.expect("verify");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `DATABASE_URL` forgotten (a new embedded database) or pointing at another
/// deployment's database, with the real store: every object looks unrecorded.
/// gc refuses to remove them (exit 1, one line), a dry run warns, and
/// `--force` is the only way past.
async fn gc_against_a_database_that_is_not_the_stores_removes_nothing(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(12)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let root = bed.store_path();
    let objects = object_files(&root);
    for path in &objects {
        set_age(path, OLD);
    }
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let wrong_db = format!("sqlite:{}", elsewhere.path().join("new.db").display());
    let gc = |args: &[&str]| {
        let mut cmd = bed.command();
        cmd.env("DATABASE_URL", &wrong_db).arg("gc").args(args);
        cmd.output()
    };
    let out = gc(&[]).await.expect("gc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is DATABASE_URL the database this store belongs to?"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert_eq!(object_files(&root), objects, "nothing removed");

    let out = gc(&["--purge-deleted-older-than", "1d"])
        .await
        .expect("gc --purge");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the check comes before any purge"
    );
    assert_eq!(object_files(&root), objects, "nothing removed");

    let out = gc(&["--dry-run"]).await.expect("gc --dry-run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: the database records 0"));
    assert_eq!(object_files(&root), objects, "nothing removed");
    bed.assert_verify_clean().await;
}
