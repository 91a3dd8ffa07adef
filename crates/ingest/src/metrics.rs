//! The worker's Prometheus metrics (`worker --metrics-addr`), one registry
//! per process. Events are counted where they happen (a run ends, a batch
//! commits); what the database and the Gmail client already know (cursor
//! ages, quarantines, checks, quota units) is read when scraped, so a scrape
//! always shows the fleet's state, not this process's memory of it: of the
//! worker's org only, each mailbox labelled with its org and address.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::domain::{RunSummary, RunVerdict};
use crate::repo::{RepoError, Repository};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    org: String,
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    org: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    org: String,
    method: String,
}

/// A mailbox is its org and its address: one address in two orgs is two
/// mailboxes, and two series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MailboxLabels {
    org: String,
    mailbox: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabels {
    org: String,
    consumer: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the worker exports. Labelled series carry the worker's org
/// (the project's units today are the whole database's).
pub struct Metrics {
    /// The worker's `--org`: the only org it counts and reads.
    org: String,
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    messages: Family<OutcomeLabels, Counter>,
    runs_in_flight: Gauge,
    commit_seconds: Histogram,
    quota_units: Family<MethodLabels, FloatGauge>,
    rate_limited: Family<MethodLabels, FloatGauge>,
    cursor_age: Family<MailboxLabels, FloatGauge>,
    last_success: Family<MailboxLabels, FloatGauge>,
    quarantined: Family<MailboxLabels, Gauge>,
    verify_findings: Family<MailboxLabels, Gauge>,
    degraded: Family<MailboxLabels, Gauge>,
    quota_units_today: Family<MailboxLabels, Gauge>,
    project_quota_units_today: Gauge,
    feed_lag_events: Family<ConsumerLabels, Gauge>,
    feed_lag_seconds: Family<ConsumerLabels, FloatGauge>,
    /// Unix seconds of the worker loop's last turn (health).
    last_tick: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(org: &str) -> Arc<Self> {
        let mut registry = Registry::with_prefix("mailingest");
        let m = Metrics {
            org: org.to_owned(),
            runs: Family::default(),
            messages: Family::default(),
            runs_in_flight: Gauge::default(),
            // 1 ms .. ~16 s.
            commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            quota_units: Family::default(),
            rate_limited: Family::default(),
            cursor_age: Family::default(),
            last_success: Family::default(),
            quarantined: Family::default(),
            verify_findings: Family::default(),
            degraded: Family::default(),
            quota_units_today: Family::default(),
            project_quota_units_today: Gauge::default(),
            feed_lag_events: Family::default(),
            feed_lag_seconds: Family::default(),
            last_tick: AtomicI64::new(0),
            registry: Registry::default(),
        };
        registry.register("runs", "Runs ended, by kind and outcome", m.runs.clone());
        registry.register(
            "messages",
            "Messages by what their run did with them (inserted, updated, skipped, quarantined)",
            m.messages.clone(),
        );
        registry.register(
            "runs_in_flight",
            "Runs going on in this process",
            m.runs_in_flight.clone(),
        );
        registry.register(
            "batch_commit_seconds",
            "Time to commit one batch transaction",
            m.commit_seconds.clone(),
        );
        registry.register(
            "gmail_quota_units",
            "Gmail quota units spent by this process, by method",
            m.quota_units.clone(),
        );
        registry.register(
            "gmail_rate_limited",
            "Gmail rate-limit answers (429 or 403) received by this process, by method",
            m.rate_limited.clone(),
        );
        registry.register(
            "cursor_age_seconds",
            "Seconds since the mailbox's history cursor last moved",
            m.cursor_age.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "When a run of the mailbox last completed (Unix seconds)",
            m.last_success.clone(),
        );
        registry.register(
            "quarantined_messages",
            "Messages of the mailbox in quarantine",
            m.quarantined.clone(),
        );
        registry.register(
            "verify_findings",
            "Findings of the mailbox's last completeness check",
            m.verify_findings.clone(),
        );
        registry.register(
            "degraded",
            "1 when the mailbox is degraded (see `mailingest status`)",
            m.degraded.clone(),
        );
        registry.register(
            "quota_units_today",
            "Gmail quota units the mailbox's finished runs spent since midnight Pacific time",
            m.quota_units_today.clone(),
        );
        registry.register(
            "project_quota_units_today",
            "Gmail quota units every process on this database reserved for the project since midnight Pacific time (see --project-daily-units)",
            m.project_quota_units_today.clone(),
        );
        registry.register(
            "feed_consumer_lag_events",
            "Ledger events of the org committed and not yet acknowledged by the change-feed consumer",
            m.feed_lag_events.clone(),
        );
        registry.register(
            "feed_consumer_lag_seconds",
            "Seconds the change-feed consumer's oldest unacknowledged event has waited (0: none)",
            m.feed_lag_seconds.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// A run ended (or failed to start).
    pub fn record_run(&self, kind: &str, summary: Option<&RunSummary>, outcome: &str) {
        self.runs
            .get_or_create(&RunLabels {
                org: self.org.clone(),
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        let Some(s) = summary else { return };
        let t = &s.tally;
        let quarantined = t
            .skipped
            .iter()
            .filter(|x| x.kind.failure().is_some())
            .count() as u64;
        for (outcome, n) in [
            ("inserted", t.messages.inserted),
            ("updated", t.messages.updated),
            ("skipped", t.skipped.len() as u64 - quarantined),
            ("quarantined", quarantined),
        ] {
            self.messages
                .get_or_create(&OutcomeLabels {
                    org: self.org.clone(),
                    outcome: outcome.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// The `outcome` label of a finished run, from its verdict.
    pub fn outcome_label(verdict: RunVerdict) -> &'static str {
        match verdict {
            RunVerdict::Completed => "completed",
            RunVerdict::CompletedWithSkips => "completed_with_skips",
            RunVerdict::Failed => "failed",
            RunVerdict::Interrupted => "interrupted",
            RunVerdict::QuotaDaySpent => "quota_day_spent",
        }
    }

    pub fn run_started(&self) {
        self.runs_in_flight.inc();
    }

    pub fn run_finished(&self) {
        self.runs_in_flight.dec();
    }

    pub fn observe_commit(&self, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// The worker loop turned (for `/healthz`).
    pub fn tick(&self) {
        self.last_tick
            .store(Utc::now().timestamp(), Ordering::Relaxed);
    }

    /// Seconds since the worker loop last turned (`None`: it never did).
    pub fn since_tick(&self) -> Option<i64> {
        match self.last_tick.load(Ordering::Relaxed) {
            0 => None,
            t => Some(Utc::now().timestamp() - t),
        }
    }

    /// The org whose mailboxes this registry counts and reads.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// Each change-feed consumer's lag, summed (events) and at its worst
    /// (seconds) over its org's mailboxes.
    async fn scrape_consumers(
        &self,
        repo: &dyn Repository,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let mut lag: std::collections::BTreeMap<(String, String), (i64, f64)> =
            std::collections::BTreeMap::new();
        for p in repo.consumer_positions(&self.org).await? {
            let entry = lag.entry((p.org.clone(), p.consumer.clone())).or_default();
            entry.0 += p.lag_events();
            entry.1 = entry.1.max(p.lag_seconds(now));
        }
        for ((org, consumer), (events, seconds)) in lag {
            let labels = ConsumerLabels { org, consumer };
            self.feed_lag_events.get_or_create(&labels).set(events);
            self.feed_lag_seconds.get_or_create(&labels).set(seconds);
        }
        Ok(())
    }

    /// Reads what the database and the Gmail client know of the worker's
    /// org, then encodes everything in Prometheus' text format.
    pub async fn scrape(
        &self,
        repo: &dyn Repository,
        gmail: &gmail::GmailClient,
    ) -> Result<String, RepoError> {
        let api = gmail.metrics();
        for (method, m) in &api.methods {
            let labels = MethodLabels {
                org: self.org.clone(),
                method: method.clone(),
            };
            self.quota_units
                .get_or_create(&labels)
                .set(m.quota_units as f64);
            self.rate_limited
                .get_or_create(&labels)
                .set(m.rate_limited as f64);
        }
        let now = Utc::now();
        for s in repo.mailbox_status(&self.org).await? {
            let labels = MailboxLabels {
                org: s.mailbox.org_id.clone(),
                mailbox: s.mailbox.provider_email.clone(),
            };
            if let Some(age) = s.cursor_age_secs {
                self.cursor_age.get_or_create(&labels).set(age);
            }
            if let Some(at) = s.last_success_at {
                self.last_success
                    .get_or_create(&labels)
                    .set(at.timestamp() as f64);
            }
            self.quarantined.get_or_create(&labels).set(s.quarantined);
            let findings = match s.last_verify_ok {
                Some(false) => s
                    .last_verify_findings
                    .as_ref()
                    .map_or(1, |f| f.len().max(1)),
                _ => 0,
            };
            self.verify_findings
                .get_or_create(&labels)
                .set(i64::try_from(findings).unwrap_or(i64::MAX));
            self.degraded
                .get_or_create(&labels)
                .set(i64::from(!s.degraded(now).is_empty()));
            self.quota_units_today
                .get_or_create(&labels)
                .set(s.quota_units_today);
        }
        self.project_quota_units_today
            .set(crate::project_quota::ProjectQuota::spent_today(repo).await?);
        self.scrape_consumers(repo, now).await?;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| RepoError::Corrupt(format!("encoding metrics: {e}")))?;
        Ok(out)
    }
}
