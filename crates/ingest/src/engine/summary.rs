//! The engine's arithmetic over a run's summary: the counts as stored on the
//! run row, and the API usage of one run out of the client's running
//! counters. The summary types themselves are `domain` values.

use crate::domain::Tally;
use crate::repo::RepoError;

/// The counts as stored on the run row (`sync_runs.counts`).
pub(crate) fn run_counts(tally: &Tally) -> Result<serde_json::Value, RepoError> {
    serde_json::to_value(tally).map_err(|source| RepoError::Encode {
        operation: "run counts",
        source,
    })
}

/// API usage between two snapshots of the client's counters.
pub(crate) fn api_delta(
    after: &gmail::ApiMetrics,
    before: &gmail::ApiMetrics,
) -> gmail::ApiMetrics {
    fn sub(a: &gmail::MethodMetrics, b: &gmail::MethodMetrics) -> gmail::MethodMetrics {
        gmail::MethodMetrics {
            calls: a.calls.saturating_sub(b.calls),
            quota_units: a.quota_units.saturating_sub(b.quota_units),
            retries: a.retries.saturating_sub(b.retries),
            throttled_ms: a.throttled_ms.saturating_sub(b.throttled_ms),
            rate_limited: a.rate_limited.saturating_sub(b.rate_limited),
            failures: a.failures.saturating_sub(b.failures),
        }
    }
    let mut out = gmail::ApiMetrics {
        total: sub(&after.total, &before.total),
        ..Default::default()
    };
    for (name, m) in &after.methods {
        let d = sub(m, &before.method(name));
        if d.calls > 0 || d.throttled_ms > 0 {
            out.methods.insert(name.clone(), d);
        }
    }
    out
}
