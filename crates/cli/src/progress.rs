//! Showing a run's progress: a bar on a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use ingest::engine::{Progress, ProgressSnapshot};
use tokio::task::JoinHandle;
use tracing::info;

/// Renders `progress` until dropped.
pub struct ProgressDisplay {
    task: JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl ProgressDisplay {
    pub fn start(progress: Arc<Progress>, gmail: gmail::GmailClient, mailbox: String) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] threads {pos}/{len} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let every = if shown.is_some() {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(10)
            };
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let s = progress.snapshot();
                let units = gmail.mailbox_metrics(&mailbox).total.quota_units;
                let secs = started.elapsed().as_secs_f64().max(0.001);
                let rate = s.messages_fetched as f64 / secs;
                let eta = quota_eta(&s, gmail.quota_config())
                    .map_or_else(|| "listing".to_string(), |e| format!("quota eta {e:.0}s"));
                match &shown {
                    Some(bar) => {
                        bar.set_length(s.threads_changed);
                        bar.set_position(s.threads_done);
                        bar.set_message(format!(
                            "listed {} | messages fetched {} stored {} | {:.0} msg/s | quota units {} | {eta}",
                            s.threads_listed, s.messages_fetched, s.messages_stored, rate, units
                        ));
                    }
                    None => info!(
                        threads_listed = s.threads_listed,
                        threads_changed = s.threads_changed,
                        threads_done = s.threads_done,
                        messages_fetched = s.messages_fetched,
                        messages_stored = s.messages_stored,
                        msg_per_s = format!("{rate:.0}"),
                        quota_units = units,
                        eta = %eta,
                        "progress"
                    ),
                }
            }
        });
        ProgressDisplay { task, bar }
    }
}

/// Seconds of quota the rest of the run needs at the client's sustained pace, by the
/// backfill's cost model (one messages.get per message still to fetch; the threads left
/// hold as many messages as those done so far, on average). `None` while listing.
fn quota_eta(s: &ProgressSnapshot, quota: &gmail::QuotaConfig) -> Option<f64> {
    if !s.listing_done {
        return None;
    }
    let left = s.threads_changed.saturating_sub(s.threads_done) as f64;
    let per_thread = if s.threads_done > 0 {
        s.messages_fetched as f64 / s.threads_done as f64
    } else {
        1.0
    };
    let units = left * per_thread * f64::from(quota.table.cost(gmail::Method::MessagesGet));
    Some(units / quota.sustained_units_per_second())
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_is_the_quota_the_remaining_messages_need() {
        let quota = gmail::QuotaConfig::for_table(gmail::QuotaTable::Y2026);
        let mut s = ProgressSnapshot {
            threads_changed: 300,
            threads_done: 100,
            messages_fetched: 200,
            ..ProgressSnapshot::default()
        };
        assert_eq!(quota_eta(&s, &quota), None, "still listing");
        s.listing_done = true;
        // 200 threads left x 2 messages x 20 units at 6,000 a minute (60.5 s window).
        let eta = quota_eta(&s, &quota).expect("eta");
        assert!((eta - 8_000.0 / (6_000.0 / 60.5)).abs() < 1e-6, "{eta}");
    }
}
