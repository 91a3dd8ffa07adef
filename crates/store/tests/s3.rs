//! S3-backend specifics against the test S3 server: checksums on uploads, multipart without
//! leftovers, and the bad-configuration errors (unreachable endpoint, missing bucket).
//! Wrong credentials are not tested here: moto does not check signatures by default.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::types::ChecksumMode;
use common::{S3Fixture, random_bytes, s3_env, unique_prefix};
use futures::TryStreamExt;
use store::{BlobStore, StoreError, StoreOptions};

#[tokio::test]
async fn uploads_carry_the_sha256_checksum() {
    let fx = S3Fixture::new_default("checksum").await;
    let data = random_bytes(5000);
    let out = fx.store.put(data).await.expect("put");
    let head = fx
        .client
        .head_object()
        .bucket(&fx.bucket)
        .key(&out.key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.checksum_sha256(),
        Some(out.sha256.to_base64().as_str())
    );
}

#[tokio::test]
async fn multipart_upload_leaves_no_incomplete_uploads() {
    // Small threshold and part size so the multipart path runs with a few parts.
    let options = StoreOptions::default()
        .with_multipart_threshold(6 * 1024 * 1024)
        .with_part_size(5 * 1024 * 1024);
    let fx = S3Fixture::with_options("multipart", options).await;
    let data = random_bytes(12 * 1024 * 1024 + 7);
    let out = fx.store.put(data.clone()).await.expect("multipart put");
    assert!(out.created);
    assert!(fx.store.get(&out.sha256).await.expect("get") == data);
    // Racing a second multipart upload of the same bytes: HEAD sees it, nothing uploaded.
    assert!(!fx.store.put(data).await.expect("again").created);
    let uploads = fx
        .client
        .list_multipart_uploads()
        .bucket(&fx.bucket)
        .prefix(&fx.prefix)
        .send()
        .await
        .expect("list uploads");
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
}

#[tokio::test]
async fn keys_include_the_url_path_before_the_prefix() {
    let env = s3_env();
    let prefix = unique_prefix("urlpath");
    let store = BlobStore::from_url(
        &format!("s3://{}/archive/mail?path_style=true", env.bucket),
        &prefix,
    )
    .await
    .expect("open");
    let out = store.put(random_bytes(10)).await.expect("put");
    assert!(
        out.key
            .starts_with(&format!("archive/mail/{prefix}/sha256/")),
        "{}",
        out.key
    );
    assert_eq!(store.head(&out.sha256).await.expect("head"), Some(10));
}

#[tokio::test]
async fn unreachable_endpoint_is_a_clear_error_within_seconds() {
    s3_env();
    // Port 1 on loopback: nothing listens, connections are refused.
    let options = StoreOptions::default()
        .with_endpoint_url("http://127.0.0.1:1")
        .with_outage_budget(Duration::ZERO);
    let url = "s3://some-bucket/x";
    let store = BlobStore::from_url_with(url, "org", options)
        .await
        .expect("open is lazy");
    let started = Instant::now();
    // The preflight never rides out an outage: a dead endpoint at start is reported at once.
    let err = store.preflight(true).await.expect_err("unreachable");
    let elapsed = started.elapsed();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(url) && text.contains("127.0.0.1:1"), "{text}");
    assert!(
        !text.contains(&std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "\u{0}".into())),
        "{text}"
    );
    // Not a speed target: a bound that catches an SDK default of minutes of retries.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
}

#[tokio::test]
async fn a_call_rides_out_an_unreachable_store_for_its_budget_then_names_it() {
    s3_env();
    let options = StoreOptions::default()
        .with_endpoint_url("http://127.0.0.1:1")
        .with_outage_budget(Duration::from_secs(2));
    let url = "s3://some-bucket/x";
    let store = BlobStore::from_url_with(url, "org", options)
        .await
        .expect("open is lazy");
    let started = Instant::now();
    let err = store.put(random_bytes(10)).await.expect_err("unreachable");
    let elapsed = started.elapsed();
    assert!(matches!(err, StoreError::OutageOutlasted { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(url) && text.contains("cannot reach the S3 endpoint"),
        "{text}"
    );
    // It retried (the first refusal comes back in milliseconds) and gave up
    // within its budget.
    assert!(
        elapsed >= Duration::from_millis(700),
        "no retries: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
}

#[tokio::test]
async fn preflight_passes_on_a_working_store_and_writes_only_the_empty_blob() {
    let fx = S3Fixture::new_default("preflight").await;
    fx.store.preflight(true).await.expect("preflight");
    fx.store
        .preflight(false)
        .await
        .expect("read-only preflight");
    let keys: Vec<String> = fx.store.list().try_collect().await.expect("list");
    assert_eq!(
        keys,
        vec![fx.store.key_for(&store::Sha256::digest(b""))],
        "the probe is the empty blob"
    );
}

#[tokio::test]
async fn missing_bucket_is_a_clear_error() {
    let env = s3_env();
    let url = format!("s3://no-such-bucket-{:08x}/x", rand::random::<u32>());
    let store = BlobStore::from_url_with(
        &url,
        "org",
        StoreOptions::default().with_endpoint_url(env.endpoint),
    )
    .await
    .expect("open is lazy");
    for err in [
        store.put(random_bytes(10)).await.expect_err("put"),
        store
            .head(&store::Sha256::digest(b"x"))
            .await
            .expect_err("head"),
        store
            .verify(&store::Sha256::digest(b"x"))
            .await
            .expect_err("verify"),
    ] {
        assert!(matches!(err, StoreError::BucketNotFound { .. }), "{err:?}");
        assert!(err.to_string().contains(&url), "{err}");
    }
}

#[tokio::test]
async fn debug_output_shows_no_client_internals() {
    let fx = S3Fixture::new_default("debug").await;
    let debug = format!("{:?}", fx.store);
    assert!(debug.starts_with("BlobStore {"), "{debug}");
    assert!(
        !debug.contains("testing") || !debug.contains("secret"),
        "{debug}"
    );
    assert!(!debug.to_lowercase().contains("credential"), "{debug}");
}

#[tokio::test]
async fn incomplete_multipart_uploads_are_listed_by_age_and_aborted() {
    let fx = S3Fixture::new_default("abandoned").await;
    let key = format!("{}/sha256/ab/cd/{}", fx.prefix, "ab".repeat(32));
    let created = fx
        .client
        .create_multipart_upload()
        .bucket(&fx.bucket)
        .key(&key)
        .send()
        .await
        .expect("create upload");
    let upload_id = created.upload_id().expect("upload id").to_owned();
    // Only uploads started before the cutoff are listed. The test server reports every
    // upload as initiated on 2010-11-10 (a moto constant), so a young upload cannot be told
    // apart here; a cutoff before that date lists nothing.
    let before_2010 = std::time::UNIX_EPOCH + Duration::from_secs(1_262_304_000);
    assert!(
        fx.store
            .abandoned_writes(before_2010)
            .await
            .expect("list")
            .is_empty(),
        "an upload started after the cutoff is not listed"
    );
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    let found = fx.store.abandoned_writes(later).await.expect("list");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, store::AbandonedKind::MultipartUpload);
    assert_eq!(found[0].name, key);
    fx.store.discard(&found[0]).await.expect("abort");
    let left = fx
        .client
        .list_multipart_uploads()
        .bucket(&fx.bucket)
        .prefix(&fx.prefix)
        .send()
        .await
        .expect("list uploads");
    assert!(
        left.uploads()
            .iter()
            .all(|u| u.upload_id() != Some(upload_id.as_str())),
        "the upload was aborted: {:?}",
        left.uploads()
    );
    fx.store
        .discard(&found[0])
        .await
        .expect("aborting again is harmless");
}
