//! Which log records may be written at all, whatever `RUST_LOG` says.
//!
//! yup-oauth2 logs every token request and response at DEBUG through the `log` crate
//! (`"Sending request: …"`, `"Received response; head: … body: …"`): the client secret and
//! refresh token in the request body, the access and refresh tokens in the response, the
//! signed JWT assertion of a service account. A subscriber with the `tracing-log` bridge (the
//! CLI's) turns those into events like any other, so `RUST_LOG=debug` or `trace` would print
//! them. [`log_metadata_is_safe`] is the veto: a subscriber applies it on top of its level
//! filter (an AND, not another directive), so no `RUST_LOG` — not `yup_oauth2=trace`, not a
//! more specific `yup_oauth2::refresh=trace`, not a span-field directive — can turn those
//! records back on. An `EnvFilter` directive such as `yup_oauth2=warn` appended after the
//! user's would not be enough: a more specific target the user names wins over it.
//!
//! The other crates on the request path were checked and log no secrets: hyper and
//! hyper-util log connection events (no headers, no bodies), h2 leaves header blocks out of
//! its frame Debug output on purpose, rustls logs handshake progress, google-gmail1 does not
//! log. Our own events are built from scrubbed text.

use tracing::{Level, Metadata};

/// Targets (and their sub-modules) whose records below WARN may contain credentials.
pub const SECRET_BEARING_LOG_TARGETS: &[&str] = &["yup_oauth2"];

/// `false` for a record that may carry a secret: anything below WARN from a target in
/// [`SECRET_BEARING_LOG_TARGETS`]. Use it as a filter that `RUST_LOG` cannot override, e.g.
/// `fmt_layer.with_filter(env_filter.and(filter_fn(gmail::log_metadata_is_safe)))`.
pub fn log_metadata_is_safe(meta: &Metadata<'_>) -> bool {
    if *meta.level() <= Level::WARN {
        return true;
    }
    let target = meta.target();
    !SECRET_BEARING_LOG_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}
