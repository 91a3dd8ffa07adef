//! Building the S3 client from the standard AWS chain, with this store's policies on top:
//! region fallback, path-style addressing, and timeouts/retries tight enough that an
//! unreachable endpoint fails in about 10 s instead of minutes.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

use crate::error::StoreError;
use crate::options::StoreOptions;

/// Env var that switches path-style addressing (`true`/`false`).
pub(crate) const PATH_STYLE_ENV: &str = "MAILINGEST_S3_FORCE_PATH_STYLE";

/// Connect timeout per attempt; 3 attempts + short backoff stay under ~10 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time to the response's first byte, generous because a part upload is inside it.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_ATTEMPTS: u32 = 3;

pub(crate) struct Built {
    pub client: aws_sdk_s3::Client,
    /// The chain's credentials provider (none when the chain has none at all), kept for the
    /// preflight's "are there credentials?" check.
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    /// Custom endpoint in use, if any (shown in "unreachable" errors).
    pub endpoint: Option<String>,
}

pub(crate) async fn build(
    url: &str,
    url_path_style: Option<bool>,
    options: &StoreOptions,
) -> Result<Built, StoreError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(RegionProviderChain::default_provider().or_else(Region::new("us-east-1")))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(2)),
        );
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    let endpoint = sdk.endpoint_url().map(str::to_owned).or_else(|| {
        std::env::var("AWS_ENDPOINT_URL_S3")
            .ok()
            .filter(|v| !v.is_empty())
    });

    let env_path_style = match std::env::var(PATH_STYLE_ENV) {
        Ok(v) => Some(parse_bool(&v).ok_or_else(|| StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: format!("{PATH_STYLE_ENV} must be true or false, not {v:?}"),
        })?),
        Err(_) => None,
    };
    // S3-compatible servers behind a custom endpoint rarely do virtual-hosted buckets.
    let path_style = options
        .force_path_style
        .or(url_path_style)
        .or(env_path_style)
        .unwrap_or(endpoint.is_some());

    let config = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(path_style)
        .build();
    Ok(Built {
        client: aws_sdk_s3::Client::from_conf(config),
        credentials: sdk.credentials_provider(),
        endpoint,
    })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" | "" => Some(false),
        _ => None,
    }
}
