//! Test fixtures shared by the integration tests: a store on a temp directory and a store on
//! the S3-compatible test server (endpoint and bucket from the environment that
//! `scripts/s3-server.sh` exports), each with a private prefix, plus the backend-specific
//! "damage an object behind the store's back" hooks the conformance suite needs.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use rand::RngCore;
use store::{BlobStore, StoreOptions};

pub const S3_ENV_HELP: &str = "S3 tests need the test S3 server: run scripts/test.sh, or \
     `source scripts/s3-server.sh && s3_server_start`, or set AWS_ENDPOINT_URL and \
     MAILINGEST_TEST_S3_BUCKET (plus AWS credentials) yourself";

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Bytes {
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    Bytes::from(v)
}

/// A prefix no other test (or earlier run) uses.
pub fn unique_prefix(test: &str) -> String {
    format!("t-{test}-{:016x}", rand::random::<u64>())
}

/// A backend under test plus ways to tamper with it directly.
pub trait Fixture: Sized {
    async fn new(test: &str) -> Self;
    fn store(&self) -> &BlobStore;
    /// Change the stored bytes of `key` (same length) without going through the store.
    async fn corrupt(&self, key: &str);
    /// Delete `key` without going through the store.
    async fn remove(&self, key: &str);
}

pub struct FsFixture {
    pub dir: tempfile::TempDir,
    pub store: BlobStore,
}

impl FsFixture {
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.path().join(key)
    }
}

impl Fixture for FsFixture {
    async fn new(test: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = dir.path().to_str().expect("utf-8 temp path").to_owned();
        let store = BlobStore::from_url(&url, &unique_prefix(test))
            .await
            .expect("open fs store");
        Self { dir, store }
    }

    fn store(&self) -> &BlobStore {
        &self.store
    }

    async fn corrupt(&self, key: &str) {
        let path = self.path(key);
        let mut bytes = std::fs::read(&path).expect("read object");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&path, bytes).expect("write corrupted object");
    }

    async fn remove(&self, key: &str) {
        std::fs::remove_file(self.path(key)).expect("remove object");
    }
}

pub struct S3Env {
    pub endpoint: String,
    pub bucket: String,
}

/// The test server's coordinates; panics with instructions when they are not set, so S3 tests
/// fail loudly instead of passing without having run.
pub fn s3_env() -> S3Env {
    let get = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| panic!("{name} is not set. {S3_ENV_HELP}"))
    };
    S3Env {
        endpoint: get("AWS_ENDPOINT_URL"),
        bucket: get("MAILINGEST_TEST_S3_BUCKET"),
    }
}

/// A raw client for the test server (to tamper with objects and inspect uploads).
pub async fn raw_s3_client() -> aws_sdk_s3::Client {
    let env = s3_env();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(env.endpoint)
        .load()
        .await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub struct S3Fixture {
    pub store: BlobStore,
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    pub prefix: String,
}

impl S3Fixture {
    pub async fn new_default(test: &str) -> Self {
        Self::with_options(test, StoreOptions::default()).await
    }

    pub async fn with_options(test: &str, options: StoreOptions) -> Self {
        let env = s3_env();
        let prefix = unique_prefix(test);
        let store = BlobStore::from_url_with(&format!("s3://{}", env.bucket), &prefix, options)
            .await
            .expect("open s3 store");
        Self {
            store,
            client: raw_s3_client().await,
            bucket: env.bucket,
            prefix,
        }
    }
}

impl Fixture for S3Fixture {
    async fn new(test: &str) -> Self {
        Self::with_options(test, StoreOptions::default()).await
    }

    fn store(&self) -> &BlobStore {
        &self.store
    }

    async fn corrupt(&self, key: &str) {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .expect("get object");
        let mut bytes = out.body.collect().await.expect("read body").to_vec();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        // An unconditional overwrite: what a buggy or malicious writer would do.
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .expect("overwrite object");
    }

    async fn remove(&self, key: &str) {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .expect("delete object");
    }
}
