//! Logging to stderr (stdout is reserved for summaries and `--json` output).
//!
//! Two filters, both must pass (both global, see `subscriber`): the user's `RUST_LOG` (an `EnvFilter`, default
//! `warn,mailingest=info,ingest=info,cli=info`) and `gmail::log_metadata_is_safe`, which
//! drops the records that carry credentials (yup-oauth2 logs token requests and responses,
//! client secret and refresh/access tokens included, at DEBUG through the `log` crate, which
//! the `tracing-log` bridge installed by `try_init` forwards). The veto is a separate filter
//! ANDed with the `EnvFilter`, not a directive appended to it: in an `EnvFilter` the more
//! specific directive wins, so a user's `RUST_LOG=yup_oauth2::refresh=trace` would beat an
//! appended `yup_oauth2=warn`. Nothing in `RUST_LOG` can lift the veto.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `aws_config` is held to errors: its credential chain warns about every provider that
/// had nothing (instance metadata included, with a `Debug` dump of the response), which is
/// noise around the one line the store's preflight prints when no credentials are found.
const DEFAULT_FILTER: &str = "warn,aws_config=error,mailingest=info,ingest=info,cli=info";

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::stderr().is_terminal();
    // try_init also installs the `log` → tracing bridge (tracing-subscriber's tracing-log
    // feature), so `log` records go through the same two filters.
    let _ = subscriber(format, filter, std::io::stderr, ansi).try_init();
}

/// The subscriber `init` installs, writing to `writer` (separate so tests can capture it).
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    // The filters apply to the whole subscriber, not per layer: with a
    // per-layer filter, a `log::logger().enabled()` query (rustls and the
    // PostgreSQL driver make them) swallows the next tracing event on that
    // thread (tokio-rs/tracing#2519), so runs on PostgreSQL printed no log
    // line at all. One output layer needs no per-layer filtering.
    tracing_subscriber::registry()
        .with(filter)
        .with(filter_fn(gmail::log_metadata_is_safe))
        .with(fmt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The records yup-oauth2 writes around a token refresh never reach the output, whatever
    /// RUST_LOG asks for; everything else still does.
    #[test]
    fn rust_log_cannot_turn_on_token_records() {
        for rust_log in [
            "trace",
            "yup_oauth2=trace",
            "yup_oauth2::refresh=trace,yup_oauth2::service_account=trace",
            "trace,yup_oauth2=trace,yup_oauth2::refresh=trace",
        ] {
            for format in [LogFormat::Text, LogFormat::Json] {
                let capture = Capture::default();
                let w = capture.clone();
                let sub = subscriber(format, EnvFilter::new(rust_log), move || w.clone(), false);
                tracing::subscriber::with_default(sub, || {
                    tracing::debug!(
                        target: "yup_oauth2::refresh",
                        "Sending request: refresh_token=1//SECRET-REFRESH"
                    );
                    tracing::trace!(target: "yup_oauth2", "SECRET-TRACE");
                    tracing::info!(target: "yup_oauth2::authenticator", "SECRET-INFO");
                    tracing::debug!(target: "ingest::engine", "visible-debug");
                    tracing::warn!(target: "yup_oauth2::installed", "visible-warning");
                    tracing::debug!(target: "yup_oauth2_lookalike", "visible-lookalike");
                });
                let out = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
                assert!(!out.contains("SECRET"), "{rust_log} {format:?}:\n{out}");
                // Everything else still comes through under a plain `trace`.
                let expected: &[&str] = if rust_log.starts_with("trace") {
                    &["visible-debug", "visible-warning", "visible-lookalike"]
                } else {
                    &[]
                };
                for v in expected {
                    assert!(
                        out.contains(v),
                        "{rust_log} {format:?}: {v} missing:\n{out}"
                    );
                }
            }
        }
    }

    #[test]
    fn default_filter_still_applies() {
        let capture = Capture::default();
        let w = capture.clone();
        let sub = subscriber(
            LogFormat::Text,
            EnvFilter::new(DEFAULT_FILTER),
            move || w.clone(),
            false,
        );
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: "ingest", "shown-info");
            tracing::debug!(target: "ingest", "hidden-debug");
        });
        let out = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
        assert!(
            out.contains("shown-info") && !out.contains("hidden-debug"),
            "{out}"
        );
    }
}
