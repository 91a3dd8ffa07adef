//! Showing a run's progress: a bar on a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use ingest::engine::Progress;
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
                    "{spinner} [{elapsed_precise}] threads {pos}/{len} {wide_msg} eta {eta}",
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
                match &shown {
                    Some(bar) => {
                        bar.set_length(s.threads_changed);
                        bar.set_position(s.threads_done);
                        bar.set_message(format!(
                            "listed {} | messages fetched {} stored {} | {:.0} msg/s | quota units {}",
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
                        "progress"
                    ),
                }
            }
        });
        ProgressDisplay { task, bar }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
