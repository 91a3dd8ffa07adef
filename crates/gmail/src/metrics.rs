//! The Gmail methods this crate calls, their quota costs, and per-method counters (calls,
//! quota units, retries, throttled ms). Counters are atomics; a snapshot is a few loads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::quota_table::QuotaTable;

/// A Gmail API method. What it costs depends on the project's quota table
/// ([`crate::QuotaTable::cost`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    GetProfile,
    LabelsList,
    MessagesList,
    MessagesGet,
    AttachmentsGet,
    ThreadsList,
    ThreadsGet,
    HistoryList,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::GetProfile,
        Method::LabelsList,
        Method::MessagesList,
        Method::MessagesGet,
        Method::AttachmentsGet,
        Method::ThreadsList,
        Method::ThreadsGet,
        Method::HistoryList,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::GetProfile => "users.getProfile",
            Method::LabelsList => "labels.list",
            Method::MessagesList => "messages.list",
            Method::MessagesGet => "messages.get",
            Method::AttachmentsGet => "messages.attachments.get",
            Method::ThreadsList => "threads.list",
            Method::ThreadsGet => "threads.get",
            Method::HistoryList => "history.list",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Live counters for one method.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    quota_units: AtomicU64,
    retries: AtomicU64,
    throttled_ms: AtomicU64,
    rate_limited: AtomicU64,
    failures: AtomicU64,
}

/// Live counters for every method (one table per mailbox).
#[derive(Debug)]
pub(crate) struct MetricsTable {
    /// What each request is charged.
    table: QuotaTable,
    methods: [Counters; Method::ALL.len()],
    /// Server wait hints longer than `retry::MAX_RETRY_AFTER`, cut to it. Kept out of
    /// `MethodMetrics` (callers build that struct literally).
    retry_after_clamped: AtomicU64,
}

impl MetricsTable {
    pub(crate) fn new(table: QuotaTable) -> Self {
        MetricsTable {
            table,
            methods: Default::default(),
            retry_after_clamped: AtomicU64::new(0),
        }
    }
    fn c(&self, m: Method) -> &Counters {
        &self.methods[m.index()]
    }
    /// One HTTP request sent (first attempt or retry), charged `cost` units.
    pub(crate) fn request(&self, m: Method) {
        let c = self.c(m);
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.quota_units
            .fetch_add(u64::from(self.table.cost(m)), Ordering::Relaxed);
    }
    pub(crate) fn retry(&self, m: Method) {
        self.c(m).retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn rate_limited(&self, m: Method) {
        self.c(m).rate_limited.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn failure(&self, m: Method) {
        self.c(m).failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn retry_after_clamped(&self) {
        self.retry_after_clamped.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn retry_after_clamped_count(&self) -> u64 {
        self.retry_after_clamped.load(Ordering::Relaxed)
    }
    pub(crate) fn throttled(&self, m: Method, d: std::time::Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.c(m).throttled_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Add this table's counts into `out`.
    pub(crate) fn add_to(&self, out: &mut ApiMetrics) {
        for m in Method::ALL {
            let c = self.c(m);
            let snap = MethodMetrics {
                calls: c.calls.load(Ordering::Relaxed),
                quota_units: c.quota_units.load(Ordering::Relaxed),
                retries: c.retries.load(Ordering::Relaxed),
                throttled_ms: c.throttled_ms.load(Ordering::Relaxed),
                rate_limited: c.rate_limited.load(Ordering::Relaxed),
                failures: c.failures.load(Ordering::Relaxed),
            };
            if snap == MethodMetrics::default() {
                continue;
            }
            out.total.add(&snap);
            out.methods
                .entry(m.name().to_string())
                .or_default()
                .add(&snap);
        }
    }
}

/// Counts for one method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MethodMetrics {
    /// HTTP requests sent, retries included.
    pub calls: u64,
    /// Quota units charged (cost × requests).
    pub quota_units: u64,
    /// Requests that were repeats of a failed attempt.
    pub retries: u64,
    /// Time spent waiting for quota or backing off, summed over calls.
    pub throttled_ms: u64,
    /// Responses that were 429 or 403 rate-limit errors.
    pub rate_limited: u64,
    /// Calls that ended in an error (after retries).
    pub failures: u64,
}

impl MethodMetrics {
    fn add(&mut self, o: &MethodMetrics) {
        self.calls += o.calls;
        self.quota_units += o.quota_units;
        self.retries += o.retries;
        self.throttled_ms += o.throttled_ms;
        self.rate_limited += o.rate_limited;
        self.failures += o.failures;
    }
}

/// A snapshot of API usage: per method (keyed by Gmail method name) and the total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApiMetrics {
    pub methods: BTreeMap<String, MethodMetrics>,
    pub total: MethodMetrics,
}

impl ApiMetrics {
    /// Counts for one method ("messages.get", …); zero if never called.
    pub fn method(&self, name: &str) -> MethodMetrics {
        self.methods.get(name).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sums_and_serializes() {
        for (table, get) in [(QuotaTable::Y2025, 5), (QuotaTable::Y2026, 20)] {
            let t = MetricsTable::new(table);
            t.request(Method::MessagesGet);
            t.request(Method::MessagesGet);
            t.request(Method::GetProfile);
            let mut m = ApiMetrics::default();
            t.add_to(&mut m);
            assert_eq!(m.method("messages.get").quota_units, 2 * get, "{table}");
            assert_eq!(m.total.quota_units, 2 * get + 1, "{table}");
        }
        let t = MetricsTable::new(QuotaTable::Y2026);
        t.request(Method::MessagesGet);
        t.request(Method::MessagesGet);
        t.retry(Method::MessagesGet);
        t.request(Method::GetProfile);
        let mut m = ApiMetrics::default();
        t.add_to(&mut m);
        assert_eq!(m.method("messages.get").calls, 2);
        assert_eq!(m.method("messages.get").quota_units, 40);
        assert_eq!(m.total.quota_units, 41);
        assert_eq!(m.total.retries, 1);
        let json = serde_json::to_value(&m).expect("json");
        assert_eq!(json["methods"]["users.getProfile"]["calls"], 1);
    }
}
