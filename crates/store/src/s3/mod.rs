//! S3 backend (aws-sdk-s3): HEAD-then-conditional-PUT (`If-None-Match: *`, 412 = exists),
//! SHA-256 checksum on every upload, multipart above a threshold, streaming reads.

mod config;
mod errors;
mod gc;
mod multipart;
mod put;
mod read;
mod spool;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::sync::OnceCell;

use crate::backend::{Backend, Durability, InputStream, Listed, OutputStream, Placed, Stored};
use crate::error::StoreError;
use crate::gc::{AbandonedWrite, Removal};
use crate::layout::Layout;
use crate::options::StoreOptions;
use crate::sha::Sha256;

pub(crate) struct S3Backend {
    ctx: Arc<S3Ctx>,
}

/// Shared state for all S3 operations of one store.
pub(crate) struct S3Ctx {
    pub url: String,
    pub bucket: String,
    pub client: aws_sdk_s3::Client,
    pub endpoint: Option<String>,
    pub multipart_threshold: u64,
    pub part_size: u64,
    pub spool_dir: Option<PathBuf>,
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    /// Set once HeadBucket succeeded. HEAD on a key cannot tell a missing key from a missing
    /// bucket (both 404 without a body), so the bucket is checked before the first operation.
    bucket_checked: OnceCell<()>,
}

impl S3Ctx {
    /// Resolves credentials through the AWS chain once, so that "none found" is one line
    /// naming the store instead of a signing failure (with the chain's every attempt in it)
    /// on the first request.
    pub(crate) async fn check_credentials(&self) -> Result<(), StoreError> {
        use aws_credential_types::provider::ProvideCredentials as _;
        let Some(provider) = &self.credentials else {
            return Err(StoreError::NoCredentials {
                url: self.url.clone(),
                message: "no credentials provider is configured".into(),
            });
        };
        match provider.provide_credentials().await {
            Ok(_) => Ok(()),
            // The Display of a CredentialsError is one short sentence; its sources list every
            // provider the chain tried, which is what made the old message kilobytes long.
            Err(e) => Err(StoreError::NoCredentials {
                url: self.url.clone(),
                message: e.to_string(),
            }),
        }
    }

    pub(crate) async fn ensure_bucket(&self) -> Result<(), StoreError> {
        self.bucket_checked
            .get_or_try_init(|| async {
                match self.client.head_bucket().bucket(&self.bucket).send().await {
                    Ok(_) => Ok(()),
                    Err(e) => match errors::status_of(&e) {
                        Some(404) => Err(StoreError::BucketNotFound {
                            url: self.url.clone(),
                            bucket: self.bucket.clone(),
                        }),
                        // Least-privilege policies may deny HeadBucket (s3:ListBucket) while
                        // allowing objects; bad credentials then surface on the real call.
                        Some(403) => Ok(()),
                        _ => Err(errors::map_sdk_error(self, "HeadBucket", "", &e)),
                    },
                }
            })
            .await
            .map(|_| ())
    }
}

impl S3Backend {
    pub(crate) async fn open(
        url: String,
        bucket: String,
        path_style: Option<bool>,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let built = config::build(&url, path_style, options).await?;
        Ok(Self {
            ctx: Arc::new(S3Ctx {
                url,
                bucket,
                client: built.client,
                endpoint: built.endpoint,
                multipart_threshold: options.multipart_threshold,
                part_size: options.effective_part_size(),
                spool_dir: options.spool_dir.clone(),
                credentials: built.credentials,
                bucket_checked: OnceCell::new(),
            }),
        })
    }
}

#[async_trait]
impl Backend for S3Backend {
    async fn put_bytes(
        &self,
        key: &str,
        sha: &Sha256,
        bytes: Bytes,
        _durability: Durability,
    ) -> Result<Placed, StoreError> {
        // S3 acknowledges a PutObject only once the object is durable: nothing to defer.
        // Objects are never repaired here: the server checks the checksum of every upload.
        let created = put::put_bytes(&self.ctx, key, sha, bytes).await?;
        Ok(Placed {
            created,
            repaired: false,
        })
    }

    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn put_stream(
        &self,
        layout: &Layout,
        input: InputStream<'_>,
    ) -> Result<Stored, StoreError> {
        put::put_stream(&self.ctx, layout, input).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        read::get(&self.ctx, key).await
    }

    async fn get_stream(&self, key: &str) -> Result<Option<OutputStream>, StoreError> {
        read::get_stream(self.ctx.clone(), key).await
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        read::head(&self.ctx, key).await
    }

    async fn hash_object(&self, key: &str) -> Result<Option<Sha256>, StoreError> {
        read::hash_object(&self.ctx, key).await
    }

    async fn preflight(&self, probe: &str, write: bool) -> Result<(), StoreError> {
        self.ctx.check_credentials().await?;
        self.ctx.ensure_bucket().await?;
        let empty = Bytes::new();
        if write {
            put::put_bytes(&self.ctx, probe, &Sha256::digest(&empty), empty).await?;
        } else {
            read::head(&self.ctx, probe).await?;
        }
        Ok(())
    }

    fn list(&self, objects_prefix: String) -> BoxStream<'static, Result<Listed, StoreError>> {
        read::list(self.ctx.clone(), objects_prefix)
    }

    async fn remove_if_unmodified(
        &self,
        key: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<Removal, StoreError> {
        gc::remove_if_unmodified(&self.ctx, key, cutoff).await
    }

    async fn move_if_unmodified(
        &self,
        from: &str,
        to: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<Removal, StoreError> {
        gc::move_if_unmodified(&self.ctx, from, to, cutoff).await
    }

    async fn clock_probe(&self, key: &str) -> Result<std::time::SystemTime, StoreError> {
        gc::clock_probe(&self.ctx, key).await
    }

    async fn abandoned_writes(
        &self,
        objects_prefix: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<Vec<AbandonedWrite>, StoreError> {
        gc::abandoned_uploads(&self.ctx, objects_prefix, cutoff).await
    }

    async fn discard(&self, write: &AbandonedWrite) -> Result<(), StoreError> {
        gc::abort_upload(&self.ctx, write).await
    }
}
