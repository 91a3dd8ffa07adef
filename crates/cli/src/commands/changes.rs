//! `mailingest changes`: `--org`'s ledger events for downstream systems, as
//! lines on stdout or POSTed to a webhook (`--post`). With `--consumer` the
//! acknowledged position is kept in the database and a re-run resumes after
//! it; `--follow` keeps waiting for new commits. The feed itself (order,
//! positions, the webhook's signing and retries) is `ingest::feed`; this
//! file checks the command line and maps outcomes to exit codes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use clap::Args;
use gmail::Secret;
use ingest::feed::{
    FeedError, FeedEvent, FeedReader, Sink, Start, WebhookConfig, WebhookSink, deliver,
};
use ingest::repo::RepoError;

use crate::context::{Context, PoolProfile};
use crate::exit::{Exit, usage_error};

/// The environment variable holding the webhook's signing secret.
const SECRET_ENV: &str = "MAILINGEST_WEBHOOK_SECRET";

#[derive(Debug, Args)]
pub struct Changes {
    /// Only this mailbox's events (one of --org's).
    #[arg(long)]
    mailbox: Option<String>,
    /// Start after this ledger seq in every mailbox read (0: from the
    /// first event), or `now`: only events committed from now on.
    #[arg(
        long,
        value_name = "SEQ|now",
        required_unless_present = "consumer",
        conflicts_with = "consumer"
    )]
    since: Option<String>,
    /// A named consumer: its acknowledged position is kept in the database,
    /// and a re-run resumes after the last acknowledged event.
    #[arg(long, value_name = "NAME")]
    consumer: Option<String>,
    /// Keep running: wait for new commits and deliver them as they come.
    #[arg(long)]
    follow: bool,
    /// Print each event as one JSON object per line (the README's schema).
    #[arg(long)]
    json: bool,
    /// POST batches to this URL (http or https) instead of printing them,
    /// signed with the secret in MAILINGEST_WEBHOOK_SECRET.
    #[arg(long, value_name = "URL", requires = "consumer")]
    post: Option<PostUrl>,
    /// Events per batch (per POST, per acknowledgement).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,
    /// One POST's limit, the receiver's answer included.
    #[arg(long, default_value = "30s", value_parser = crate::parse::parse_span)]
    post_timeout: Duration,
}

/// `--post`'s value. Its `Debug` shows nothing: the URL may carry credentials.
#[derive(Clone)]
pub struct PostUrl(String);

impl std::str::FromStr for PostUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(PostUrl(s.to_owned()))
    }
}

impl std::fmt::Debug for PostUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostUrl([redacted])")
    }
}

/// What `--since` accepts.
fn parse_since(raw: &str) -> Result<Start, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("now") {
        return Ok(Start::Now);
    }
    match raw.parse::<i64>() {
        Ok(0) => Ok(Start::Beginning),
        Ok(seq) if seq > 0 => Ok(Start::AfterSeq(seq)),
        _ => Err(format!(
            "--since {raw:?}: unknown form (give a ledger seq such as 0 or 42, or `now`)"
        )),
    }
}

/// Events on standard output, flushed before they are acknowledged.
struct Stdout {
    json: bool,
}

#[async_trait]
impl Sink for Stdout {
    async fn deliver(&mut self, batch: &[FeedEvent]) -> Result<(), FeedError> {
        let mut out = std::io::stdout().lock();
        for event in batch {
            if self.json {
                serde_json::to_writer(&mut out, event).map_err(|e| FeedError::Output(e.into()))?;
                out.write_all(b"\n").map_err(FeedError::Output)?;
            } else {
                writeln!(out, "{}", event.text_line()).map_err(FeedError::Output)?;
            }
        }
        out.flush().map_err(FeedError::Output)
    }
}

impl Changes {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let start = match self.since.as_deref().map(parse_since).transpose() {
            Ok(start) => start,
            Err(message) => return Ok(usage_error(message)),
        };
        // The sink is checked before the database is touched: a bad URL or a
        // missing secret is a usage error, whatever the database says.
        let mut sink: Box<dyn Sink> = match &self.post {
            Some(PostUrl(url)) => {
                let secret = match std::env::var(SECRET_ENV) {
                    Ok(s) if !s.is_empty() => Secret::new(s),
                    _ => {
                        return Ok(usage_error(format!(
                            "--post needs the signing secret in {SECRET_ENV} (empty or unset)"
                        )));
                    }
                };
                let config = WebhookConfig {
                    url: url.clone(),
                    secret,
                    outage_budget: ctx.outage_budget,
                    request_timeout: self.post_timeout,
                };
                match WebhookSink::new(config) {
                    Ok(sink) => Box::new(sink),
                    Err(FeedError::Config(message)) => return Ok(usage_error(message)),
                    Err(e) => return Err(e.into()),
                }
            }
            None => Box::new(Stdout { json: self.json }),
        };
        let repo = ctx.database(PoolProfile::Small).await?;
        let only = match &self.mailbox {
            Some(email) => match ctx.find_mailbox(repo.as_ref(), email).await? {
                Some(m) => Some(m.id),
                None => return Ok(usage_error(ctx.no_such_mailbox(email))),
            },
            None => None,
        };
        let held = match &self.consumer {
            Some(name) => match repo.hold_consumer(&ctx.org, name).await {
                Ok(held) => Some(held),
                Err(e @ RepoError::ConsumerBusy { .. }) => {
                    eprintln!("error: {e}; try again when it stops");
                    return Ok(Exit::Locked.into());
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let positions = held
            .as_ref()
            .map_or_else(BTreeMap::new, |h| h.positions.clone());
        let batch_size = self.batch_size as usize;
        let mut reader = FeedReader::open(
            repo.clone(),
            &ctx.org,
            only,
            start.unwrap_or(Start::Beginning),
            positions,
            batch_size,
        )
        .await?;
        let stop = crate::signals::cancel_on_signal();
        let outcome = deliver(
            repo.as_ref(),
            &mut reader,
            held.as_ref(),
            sink.as_mut(),
            batch_size,
            self.follow,
            &stop,
        )
        .await;
        match outcome {
            Ok(done) => {
                tracing::info!(
                    events = done.events,
                    batches = done.batches,
                    "change feed delivered"
                );
                Ok(if done.interrupted {
                    Exit::Interrupted
                } else {
                    Exit::Done
                }
                .into())
            }
            Err(FeedError::Repo(e @ RepoError::ConsumerFenced { .. })) => {
                eprintln!("error: {e}; stopped without acknowledging more");
                Ok(Exit::Locked.into())
            }
            Err(FeedError::Config(message)) => Ok(usage_error(message)),
            Err(e) => Err(anyhow!(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_seq_or_now_and_nothing_else() {
        assert_eq!(parse_since("0"), Ok(Start::Beginning));
        assert_eq!(parse_since("42"), Ok(Start::AfterSeq(42)));
        assert_eq!(parse_since("NOW"), Ok(Start::Now));
        for bad in ["-1", "yesterday", "", "4.2", "2026-12-01"] {
            assert!(parse_since(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_post_url_never_prints() {
        let url = PostUrl("https://user:hunter2@example.com/hook".into());
        assert!(!format!("{url:?}").contains("hunter2"));
    }
}
