//! `mailingest backfill`: back up a window of one mailbox.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;
use ingest::engine::{BackfillRequest, MailboxRef, Progress, Window};

use crate::context::{Context, PoolProfile};
use crate::exit::Exit;
use crate::parse::parse_time;
use crate::progress::ProgressDisplay;
use crate::{signals, summary};

#[derive(Debug, Args)]
pub struct Backfill {
    /// The mailbox to back up (its email address).
    #[arg(long)]
    mailbox: String,
    /// The last N days up to now.
    #[arg(long, default_value_t = 7, conflicts_with_all = ["since", "until"])]
    days: u32,
    /// Window start (RFC 3339, YYYY-MM-DD in UTC, or epoch seconds).
    #[arg(long, requires = "until", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Window end, exclusive.
    #[arg(long, requires = "since", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// Include messages in SPAM and TRASH.
    #[arg(long)]
    include_spam_trash: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Do not back up: list the window (messages.list only, 5 quota units per
    /// 500 ids) and print the messages to fetch, the quota units and the time
    /// the quota allows, at the quota table's pace.
    #[arg(long)]
    estimate: bool,
    #[cfg(feature = "demo")]
    #[command(flatten)]
    demo: Demo,
}

/// `--demo`: a seeded synthetic mailbox served by the built-in Gmail emulator
/// (a default cargo feature; `--no-default-features` builds without it).
#[cfg(feature = "demo")]
#[derive(Debug, Args)]
struct Demo {
    /// Serve a seeded synthetic mailbox from the built-in emulator and back it up.
    #[arg(long = "demo")]
    enabled: bool,
    /// With --demo: how many messages the synthetic mailbox holds.
    #[arg(long, default_value_t = 2000, requires = "enabled")]
    demo_messages: usize,
}

#[cfg(feature = "demo")]
impl Demo {
    /// Starts the emulator when asked to.
    async fn start(
        &self,
        mailbox: &str,
        days: u32,
    ) -> anyhow::Result<Option<gmail_emulator::Emulator>> {
        use gmail_emulator::{Emulator, EmulatorConfig};
        use ingest::domain::MailboxAddress;
        if !self.enabled {
            return Ok(None);
        }
        let config = EmulatorConfig {
            seed: 42,
            messages: self.demo_messages,
            days: days.max(1),
            mailboxes: vec![MailboxAddress::normalized(mailbox).into_string()],
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config)
            .await
            .map_err(|e| anyhow::anyhow!("starting the demo emulator: {e}"))?;
        tracing::info!(url = %emulator.url(), messages = self.demo_messages, "demo: serving a synthetic mailbox");
        Ok(Some(emulator))
    }
}

impl Backfill {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let window = match (self.since, self.until) {
            (Some(since), Some(until)) => Window::new(since, until),
            _ => Window::last_days(self.days, Utc::now()),
        };
        let window = match window {
            Ok(w) => w,
            Err(e) => return summary::engine_error(e.into()),
        };
        #[cfg(feature = "demo")]
        let emulator = self.demo.start(&self.mailbox, self.days).await?;
        #[cfg(feature = "demo")]
        let endpoint = emulator.as_ref().map(|e| e.url());
        #[cfg(not(feature = "demo"))]
        let endpoint: Option<String> = None;
        let gmail = ctx.gmail_client(endpoint.as_deref()).await?;
        let engine = ctx.engine(gmail.clone(), PoolProfile::Run).await?;

        let request = BackfillRequest {
            mailbox: MailboxRef::address(&self.mailbox),
            window,
            include_spam_trash: self.include_spam_trash,
        };
        if self.estimate {
            let estimate = engine.estimate_backfill(&request).await;
            #[cfg(feature = "demo")]
            if let Some(emulator) = emulator {
                emulator.shutdown().await;
            }
            let estimate = match estimate {
                Ok(e) => e,
                Err(e) => return summary::engine_error(e).context("backfill --estimate"),
            };
            summary::print_estimate(&estimate, self.json);
            return Ok(Exit::Done.into());
        }
        let progress = Arc::new(Progress::default());
        let cancel = signals::cancel_on_signal();
        let display =
            ProgressDisplay::start(progress.clone(), gmail, request.mailbox.email().to_owned());
        let result = engine.backfill(request, cancel, &progress).await;
        drop(display);
        #[cfg(feature = "demo")]
        if let Some(emulator) = emulator {
            emulator.shutdown().await;
        }
        let run = match result {
            Ok(run) => run,
            Err(e) => return summary::engine_error(e).context("backfill"),
        };
        summary::print(&run, self.json);
        Ok(Exit::from(&run).into())
    }
}
