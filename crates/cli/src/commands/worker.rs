//! `mailingest worker`: the long-running scheduler, a thin adapter over
//! `ingest::worker` (which owns claiming, scheduling and outcomes). SIGTERM
//! stops claiming, lets in-flight runs commit what they have and mark
//! themselves interrupted, and exits 0.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use ingest::worker::WorkerOptions;

use ingest::metrics::Metrics;

use crate::context::{Context, PoolProfile};
use crate::parse::{VerifyEvery, parse_duration, parse_verify_every};
use crate::{metrics_server, signals};

#[derive(Debug, Args)]
pub struct Worker {
    /// Time between syncs of one mailbox (e.g. 30s, 5m, 1h); default: each mailbox's own.
    #[arg(long, value_parser = parse_duration)]
    interval: Option<Duration>,
    /// Mailboxes synced at once by this worker.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// How often to look for due mailboxes.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    poll: Duration,
    /// Days backed up when a mailbox has no cursor or its history expired.
    #[arg(long, default_value_t = 7)]
    fallback_days: u32,
    /// How often each mailbox is compared with Gmail, both ways (`verify
    /// --full`, 5 quota units per 500 messages), after a sync; each mailbox's
    /// first check falls at a random point of its first day. `off` disables.
    #[arg(long, value_parser = parse_verify_every, default_value = "24h")]
    verify_every: VerifyEvery,
    /// Serve Prometheus metrics at http://ADDR/metrics and a health check at
    /// /healthz (e.g. 127.0.0.1:9464).
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Stop after this many claim rounds that found work (for tests and one-shot use).
    #[arg(long, hide = true)]
    max_rounds: Option<u64>,
}

impl Worker {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let options = WorkerOptions {
            concurrency: self.concurrency.max(1),
            interval: self.interval,
            poll: self.poll,
            fallback_days: self.fallback_days,
            max_rounds: self.max_rounds,
            verify_every: self.verify_every.0,
            ..WorkerOptions::default()
        };
        let gmail = ctx.gmail_client(None).await?;
        let pool = PoolProfile::Worker {
            concurrency: options.concurrency,
        };
        let mut engine = ctx.engine(gmail, pool).await?;
        let mut options = options;
        if let Some(addr) = self.metrics_addr {
            let metrics = Metrics::new(&ctx.org);
            engine.options.metrics = Some(metrics.clone());
            options.metrics = Some(metrics.clone());
            metrics_server::serve(
                addr,
                metrics,
                engine.repo.clone(),
                engine.gmail.clone(),
                options.poll,
            )
            .await?;
        }
        let cancel = signals::cancel_on_signal();
        ingest::worker::Worker::new(engine, options)
            .run(cancel)
            .await;
        Ok(ExitCode::SUCCESS)
    }
}
