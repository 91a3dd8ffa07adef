//! `mailingest repair` puts back what `verify --deep` finds missing or
//! damaged in the fs store (a deleted object, a torn one, one with the right
//! size and wrong bytes), from Gmail, and names what it cannot restore.

mod common;

use std::path::PathBuf;

use common::{TestBed, small_mailbox};

async fn object_path(bed: &TestBed, sha: &str) -> PathBuf {
    let key: String = sqlx::query_scalar("SELECT storage_key FROM blobs WHERE sha256 = $1")
        .bind(sha)
        .fetch_one(bed.pg())
        .await
        .expect("blob row");
    bed.store_path().join(key)
}

/// (provider message id, raw sha256) of stored messages, in id order.
async fn raws(bed: &TestBed) -> Vec<(String, String)> {
    sqlx::query_as("SELECT provider_message_id, raw_sha256 FROM mail_messages ORDER BY 1")
        .fetch_all(bed.pg())
        .await
        .expect("raws")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_restores_missing_and_damaged_blobs_from_gmail() {
    let bed = TestBed::new(small_mailbox(20)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let raws = raws(&bed).await;
    let part: String = sqlx::query_scalar(
        "SELECT a.sha256 FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
         WHERE a.sha256 <> m.raw_sha256 ORDER BY a.sha256 LIMIT 1",
    )
    .fetch_one(bed.pg())
    .await
    .expect("a stored attachment");

    // Deleted, torn (empty), and same size with other bytes.
    let deleted = object_path(&bed, &raws[0].1).await;
    std::fs::remove_file(&deleted).expect("delete");
    let torn = object_path(&bed, &raws[1].1).await;
    std::fs::write(&torn, b"").expect("tear");
    let flipped = object_path(&bed, &part).await;
    let mut bytes = std::fs::read(&flipped).expect("read");
    bytes.iter_mut().for_each(|b| *b = !*b);
    std::fs::write(&flipped, &bytes).expect("flip");

    let out = bed.run(&["verify", "--deep", "--offline"]).await;
    assert_eq!(out.status.code(), Some(4), "verify sees the damage");

    let (code, reports) = bed.run_json(&["repair"]).await;
    assert_eq!(code, 0, "{reports}");
    let mut repaired: Vec<String> = reports[0]["repaired"]
        .as_array()
        .expect("repaired")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    repaired.sort();
    let mut expected = vec![raws[0].1.clone(), raws[1].1.clone(), part.clone()];
    expected.sort();
    assert_eq!(repaired, expected, "{reports}");
    bed.assert_verify_clean().await;

    // Nothing to do now.
    let (code, again) = bed.run_json(&["repair"]).await;
    assert_eq!(code, 0, "{again}");
    assert_eq!(again[0]["repaired"].as_array().map(Vec::len), Some(0));
}

/// Where the store's trash keeps an object (see `store::BlobStore::trash_if_unmodified`).
fn trash_path(bed: &TestBed, object: &std::path::Path) -> PathBuf {
    let relative = object
        .strip_prefix(bed.store_path())
        .expect("inside the store");
    let mut parts = relative.iter();
    let prefix = parts.next().expect("the org's prefix");
    bed.store_path()
        .join(prefix)
        .join(".trash")
        .join(parts.collect::<PathBuf>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_brings_a_blob_back_from_the_trash_before_asking_gmail() {
    let bed = TestBed::new(small_mailbox(6)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let raws = raws(&bed).await;
    // As gc moves an object: into <prefix>/.trash/sha256/hh/hh/<hex>.
    let object = object_path(&bed, &raws[0].1).await;
    let trashed = trash_path(&bed, &object);
    std::fs::create_dir_all(trashed.parent().unwrap()).unwrap();
    std::fs::rename(&object, &trashed).expect("move to the trash");
    let out = bed.run(&["verify", "--deep", "--offline"]).await;
    assert_eq!(out.status.code(), Some(4), "verify sees it missing");

    bed.emulator.reset_stats();
    let (code, reports) = bed.run_json(&["repair"]).await;
    assert_eq!(code, 0, "{reports}");
    assert_eq!(reports[0]["from_trash"][0], raws[0].1.as_str(), "{reports}");
    assert_eq!(reports[0]["repaired"][0], raws[0].1.as_str(), "{reports}");
    assert_eq!(bed.calls("users.messages.get"), 0, "no Gmail call");
    assert!(!trashed.exists(), "moved back, not copied");
    bed.assert_verify_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_names_what_gmail_no_longer_has() {
    let bed = TestBed::new(small_mailbox(6)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let raws = raws(&bed).await;
    let (id, sha) = &raws[0];
    std::fs::remove_file(object_path(&bed, sha).await).expect("delete");
    bed.emulator
        .delete_message(&bed.mailbox, id)
        .expect("delete in Gmail");

    let (code, reports) = bed.run_json(&["repair"]).await;
    assert_eq!(code, 4, "{reports}");
    let lost = &reports[0]["unrecoverable"][0];
    assert_eq!(lost["sha256"], sha.as_str(), "{reports}");
    assert!(
        lost["reason"].as_str().unwrap_or("").contains(id.as_str()),
        "names the message: {reports}"
    );
}
