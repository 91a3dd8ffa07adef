//! `StoreOptions`: tuning knobs beyond the URL (multipart sizes, endpoint and addressing
//! overrides). The defaults are what production wants; tests and benchmarks override them.

use std::path::PathBuf;
use std::time::Duration;

/// Default size at and above which S3 uploads use multipart upload.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Default multipart part size (S3's minimum is 5 MiB for all parts but the last).
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Default time a call keeps retrying through an outage of the store before it fails.
pub const DEFAULT_OUTAGE_BUDGET: Duration = Duration::from_secs(60);

/// Options for `BlobStore::from_url_with`. Construct with `StoreOptions::default()` and the
/// `with_*` methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoreOptions {
    /// S3: objects of at least this many bytes are uploaded in parts.
    pub multipart_threshold: u64,
    /// S3: part size for multipart uploads (raised to S3's 5 MiB minimum).
    pub part_size: u64,
    /// S3: endpoint override; when `None` the AWS chain decides (`AWS_ENDPOINT_URL`, profile).
    pub endpoint_url: Option<String>,
    /// S3: path-style addressing override; beats `?path_style=` and
    /// `MAILINGEST_S3_FORCE_PATH_STYLE`.
    pub force_path_style: Option<bool>,
    /// S3: where `put_stream` spools input of unknown size (default: the system temp dir).
    pub spool_dir: Option<PathBuf>,
    /// How long a call retries, with backoff, while the store is unreachable or answers 5xx
    /// before it fails (zero: fail at the first such error). Calls are idempotent, so a
    /// retry can neither duplicate nor half-write an object.
    pub outage_budget: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            endpoint_url: None,
            force_path_style: None,
            spool_dir: None,
            outage_budget: DEFAULT_OUTAGE_BUDGET,
        }
    }
}

impl StoreOptions {
    pub fn with_multipart_threshold(mut self, bytes: u64) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    pub fn with_part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes;
        self
    }

    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    pub fn with_force_path_style(mut self, on: bool) -> Self {
        self.force_path_style = Some(on);
        self
    }

    pub fn with_spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    pub fn with_outage_budget(mut self, budget: Duration) -> Self {
        self.outage_budget = budget;
        self
    }

    /// Part size actually used: at least S3's minimum.
    pub(crate) fn effective_part_size(&self) -> u64 {
        self.part_size.max(MIN_PART_SIZE)
    }
}
