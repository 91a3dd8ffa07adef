//! fs-backend specifics: put-if-absent across processes, no staging files left behind,
//! unwritable locations, and the on-disk layout.

mod common;

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use common::{Fixture, FsFixture, random_bytes};
use store::{BlobStore, Sha256, StoreError, Verification};

const HELPER_DIR_ENV: &str = "STORE_TEST_HELPER_DIR";
const HELPER_SEED_ENV: &str = "STORE_TEST_HELPER_SEED";
const PROCESSES: usize = 8;
const PUTS_PER_PROCESS: usize = 4;

/// Deterministic content shared by all helper processes (1 MiB, from a seed).
fn shared_blob(seed: u64) -> Bytes {
    let mut state = seed;
    let bytes: Vec<u8> = (0..1 << 20)
        .map(|_| {
            // xorshift64: deterministic, no dependencies.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    Bytes::from(bytes)
}

/// Not a test on its own: the child-process body of `processes_racing_store_one_object`,
/// which runs this test binary with `--ignored --exact` and the env vars set.
#[test]
#[ignore = "helper run in child processes by processes_racing_store_one_object"]
fn helper_process_puts() {
    let dir = std::env::var(HELPER_DIR_ENV).expect("helper needs STORE_TEST_HELPER_DIR");
    let seed: u64 = std::env::var(HELPER_SEED_ENV)
        .expect("helper needs STORE_TEST_HELPER_SEED")
        .parse()
        .expect("numeric seed");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let created = rt.block_on(async {
        let store = BlobStore::from_url(&dir, "org").await.expect("open");
        let data = shared_blob(seed);
        let tasks: Vec<_> = (0..PUTS_PER_PROCESS)
            .map(|_| {
                let (store, data) = (store.clone(), data.clone());
                tokio::spawn(async move { store.put(data).await })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            created += usize::from(t.await.expect("task").expect("put").created);
        }
        created
    });
    println!("HELPER-CREATED={created}");
}

#[test]
fn processes_racing_store_one_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = rand::random::<u64>() | 1;
    let exe = std::env::current_exe().expect("test binary path");
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "helper_process_puts",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(HELPER_DIR_ENV, dir.path())
                .env(HELPER_SEED_ENV, seed.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn helper")
        })
        .collect();
    let mut created = 0;
    for child in children {
        let out = child.wait_with_output().expect("helper output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "helper failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // libtest may print the marker on the same line as "test … ".
        let count: String = stdout
            .split_once("HELPER-CREATED=")
            .unwrap_or_else(|| panic!("helper printed no result: {stdout}"))
            .1
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        created += count.parse::<usize>().expect("count");
    }
    assert_eq!(
        created,
        1,
        "{} puts from {PROCESSES} processes",
        PROCESSES * PUTS_PER_PROCESS
    );

    let data = shared_blob(seed);
    let sha = Sha256::digest(&data);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = BlobStore::from_url(dir.path().to_str().expect("utf-8"), "org")
            .await
            .expect("open");
        assert_eq!(store.verify(&sha).await.expect("verify"), Verification::Ok);
    });
    assert_eq!(staging_files(dir.path()), Vec::<String>::new());
}

/// Every staging file left anywhere under `root`.
fn staging_files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry.file_name().to_string_lossy().starts_with(".staging-") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test]
async fn no_staging_files_are_left_after_success_duplicates_or_failed_input() {
    let fx = FsFixture::new("staging").await;
    let data = random_bytes(50_000);
    fx.store.put(data.clone()).await.expect("put");
    fx.store.put(data.clone()).await.expect("put again");
    fx.store
        .put_stream(futures::stream::iter(vec![Ok(data.clone())]))
        .await
        .expect("stream duplicate");
    let failing = futures::stream::iter(vec![Ok(data), Err(std::io::Error::other("boom"))]);
    assert!(fx.store.put_stream(failing).await.is_err());
    assert_eq!(staging_files(fx.dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn objects_are_plain_files_at_their_key() {
    let fx = FsFixture::new("layout").await;
    let out = fx
        .store
        .put(Bytes::from_static(b"hello"))
        .await
        .expect("put");
    let path = fx.path(&out.key);
    assert_eq!(std::fs::read(&path).expect("object file"), b"hello");
    assert!(out.key.contains(
        "/sha256/2c/f2/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    ));
}

#[tokio::test]
async fn file_url_and_plain_path_open_the_same_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("utf-8");
    let a = BlobStore::from_url(path, "org").await.expect("path");
    let b = BlobStore::from_url(&format!("file://{path}"), "org")
        .await
        .expect("file url");
    let out = a.put(Bytes::from_static(b"shared")).await.expect("put");
    assert_eq!(
        b.get(&out.sha256).await.expect("get via file url"),
        "shared"
    );
}

#[tokio::test]
async fn unwritable_location_is_a_clear_error_naming_the_store() {
    // A path under a regular file can never be a directory, even for root (which ignores
    // permission bits, so chmod-based tests cannot fail under root).
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("file");
    let url = blocker.join("store").display().to_string();
    let err = BlobStore::from_url(&url, "org")
        .await
        .expect_err("cannot create the store");
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");

    // The root exists but the prefix cannot be created: the error surfaces on put.
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("root");
    std::fs::write(root.join("org"), b"x").expect("file where the prefix dir goes");
    let url = root.display().to_string();
    let store = BlobStore::from_url(&url, "org")
        .await
        .expect("root is fine");
    let err = store
        .put(Bytes::from_static(b"data"))
        .await
        .expect_err("prefix is a file");
    assert!(err.to_string().contains(&url), "{err}");
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
}

/// How a test damages an object behind the store's back.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// A torn write after a power loss: the name is there, the bytes are not.
    ZeroLength,
    Short,
    /// Same size, one bit flipped.
    SameSize,
}

fn damage(path: &Path, how: Damage) {
    let mut bytes = std::fs::read(path).expect("read object");
    match how {
        Damage::ZeroLength => bytes.clear(),
        Damage::Short => bytes.truncate(bytes.len() / 3),
        Damage::SameSize => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
        }
    }
    // Through a new inode, as a restore or a careless tool would: the store's own link may
    // be shared with nothing else, but the test must not depend on that.
    let tmp = path.with_extension("damage");
    std::fs::write(&tmp, bytes).expect("write damaged copy");
    std::fs::rename(&tmp, path).expect("replace object");
}

#[tokio::test]
async fn a_damaged_existing_object_is_repaired_by_the_next_put() {
    let fx = FsFixture::new("repair").await;
    for how in [Damage::ZeroLength, Damage::Short, Damage::SameSize] {
        for deferred in [false, true] {
            for stream in [false, true] {
                if deferred && stream {
                    continue; // put_stream has no deferred form
                }
                let ctx = format!("{how:?} deferred={deferred} stream={stream}");
                let data = random_bytes(10_000);
                let out = fx.store.put(data.clone()).await.expect("put");
                assert!(!out.repaired, "{ctx}");
                damage(&fx.path(&out.key), how);
                assert!(
                    matches!(
                        fx.store.verify(&out.sha256).await.expect("verify"),
                        Verification::Corrupt { .. }
                    ),
                    "{ctx}"
                );
                let again = if stream {
                    fx.store
                        .put_stream(futures::stream::iter(vec![Ok(data.clone())]))
                        .await
                } else if deferred {
                    fx.store.put_deferred(data.clone()).await
                } else {
                    fx.store.put(data.clone()).await
                }
                .unwrap_or_else(|e| panic!("{ctx}: put over damaged object: {e}"));
                assert!(again.repaired, "{ctx}");
                assert!(!again.created, "{ctx}");
                if let Some(ticket) = again.pending {
                    fx.store.sync().await.expect("sync");
                    assert!(fx.store.is_durable(ticket), "{ctx}");
                }
                assert_eq!(
                    fx.store.verify(&out.sha256).await.expect("verify"),
                    Verification::Ok,
                    "{ctx}"
                );
                assert_eq!(fx.store.get(&out.sha256).await.expect("get"), data, "{ctx}");
                // Intact now: the next put is a plain dedup hit.
                let third = fx.store.put(data).await.expect("third put");
                assert!(!third.created && !third.repaired, "{ctx}");
            }
        }
    }
    assert_eq!(staging_files(fx.dir.path()), Vec::<String>::new());
}

/// Age of a staging file the next writer removes (`STAGING_GRACE` is 1 hour).
const OLD: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

fn staging_file(dir: &Path, name: &str, age: std::time::Duration) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(format!(".staging-{name}"));
    let file = std::fs::File::create(&path).expect("create staging file");
    file.set_modified(std::time::SystemTime::now() - age)
        .expect("set mtime");
    path
}

#[tokio::test]
async fn staging_files_of_killed_writers_are_swept_after_a_grace_period() {
    let fx = FsFixture::new("sweep").await;
    let data = random_bytes(3000);
    let sha = Sha256::digest(&data);
    let leaf = fx.path(&fx.store.key_for(&sha));
    let leaf = leaf.parent().expect("leaf dir");
    let old = staging_file(leaf, "killed-writer", OLD);
    let fresh = staging_file(leaf, "live-writer", std::time::Duration::from_secs(60));
    // put_stream stages in `<prefix>/sha256/`.
    let stream_dir = leaf.parent().and_then(Path::parent).expect("sha256 dir");
    let old_stream = staging_file(stream_dir, "killed-stream", OLD);
    let fresh_stream = staging_file(stream_dir, "live-stream", std::time::Duration::ZERO);
    // Not a staging file: never touched, however old.
    let other = stream_dir.join("not-staging");
    std::fs::File::create(&other)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() - OLD))
        .expect("other file");

    fx.store.put(data.clone()).await.expect("put");
    assert!(
        !old.exists(),
        "old staging file in the put's directory is swept"
    );
    assert!(
        fresh.exists(),
        "a staging file younger than the grace is kept"
    );
    fx.store
        .put_stream(futures::stream::iter(vec![Ok(random_bytes(100))]))
        .await
        .expect("put_stream");
    assert!(!old_stream.exists(), "old staging file in sha256/ is swept");
    assert!(fresh_stream.exists());
    assert!(other.exists());
}

#[tokio::test]
async fn bad_urls_and_prefixes_are_rejected() {
    for url in ["ftp://x/y", "http://bucket/x", ""] {
        assert!(
            matches!(
                BlobStore::from_url(url, "org").await,
                Err(StoreError::InvalidUrl { .. })
            ),
            "{url:?}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("utf-8");
    for prefix in ["../escape", "a/../../b", ".staging-x"] {
        assert!(
            matches!(
                BlobStore::from_url(path, prefix).await,
                Err(StoreError::InvalidPrefix { .. })
            ),
            "{prefix:?}"
        );
    }
}

#[tokio::test]
async fn preflight_checks_writing_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let store = BlobStore::from_url(root.to_str().expect("utf-8"), "org")
        .await
        .expect("open");
    store.preflight(true).await.expect("preflight");
    store.preflight(false).await.expect("read-only preflight");
    let left: Vec<_> = std::fs::read_dir(&root)
        .expect("read root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "the probe left {left:?}");
}

#[tokio::test]
async fn a_put_that_finds_its_object_refreshes_it_for_gc() {
    let fx = FsFixture::new("refresh").await;
    let data = random_bytes(2000);
    let first = fx.store.put(data.clone()).await.expect("put");
    let path = fx.path(&first.key);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() - OLD))
        .expect("age the object");
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let again = fx.store.put_deferred(data).await.expect("put again");
    assert!(!again.created);
    assert_eq!(
        fx.store
            .remove_if_unmodified(&first.sha256, cutoff)
            .await
            .expect("remove"),
        store::Removal::Kept,
        "an object a put just found is not old"
    );
    assert!(path.exists());
}

#[tokio::test]
async fn gc_lists_and_discards_only_old_staging_files() {
    let fx = FsFixture::new("gc-staging").await;
    let data = random_bytes(3000);
    let sha = Sha256::digest(&data);
    let leaf = fx.path(&fx.store.key_for(&sha));
    let leaf = leaf.parent().expect("leaf dir");
    let stream_dir = leaf.parent().and_then(Path::parent).expect("sha256 dir");
    let old = staging_file(leaf, "killed-writer", OLD);
    let old_stream = staging_file(stream_dir, "killed-stream", OLD);
    let fresh = staging_file(leaf, "live-writer", std::time::Duration::from_secs(60));
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let mut found = fx.store.abandoned_writes(cutoff).await.expect("list");
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .all(|w| w.kind == store::AbandonedKind::StagingFile)
    );
    assert!(found.iter().all(|w| w.size == Some(0)));
    for w in &found {
        fx.store.discard(w).await.expect("discard");
    }
    assert!(!old.exists() && !old_stream.exists());
    assert!(fresh.exists(), "a live writer's staging file stays");
    // Discarding again is harmless; a listing never names a file outside the store.
    fx.store.discard(&found[0]).await.expect("discard again");
}
