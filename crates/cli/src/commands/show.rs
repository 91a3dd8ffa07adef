//! `mailingest show --mailbox M --as-of T`: the mailbox as the ledger says it
//! was at T: every message live then, with its labels then. Computed by
//! replaying the ledger's message events (ingested, labels changed, deleted)
//! recorded up to T, never from the rows, which hold only the present.

use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use ingest::domain::MailboxAddress;
use ingest::repo::MailboxState;
use serde_json::json;

use crate::context::{Context, PoolProfile};
use crate::exit::Exit;
use crate::parse::parse_time;

#[derive(Debug, Args)]
pub struct Show {
    /// The mailbox (of --org).
    #[arg(long)]
    mailbox: String,
    /// The instant: RFC 3339, YYYY-MM-DD (midnight UTC) or epoch seconds.
    #[arg(long, value_parser = parse_time)]
    as_of: DateTime<Utc>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl Show {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let repo = ctx.database(PoolProfile::Small).await?;
        let email = MailboxAddress::normalized(&self.mailbox);
        let Some(mailbox) = ctx.find_mailbox(repo.as_ref(), email.as_str()).await? else {
            return Err(ctx.no_such_mailbox(email.as_str()));
        };
        let events = repo.message_events_until(mailbox.id, self.as_of).await?;
        let state = MailboxState::replay(self.as_of, &events);
        if self.json {
            println!(
                "{}",
                json!({
                    "org": ctx.org,
                    "mailbox": email,
                    "as_of": state.as_of,
                    "ledger_seq": state.last_seq,
                    "messages": state.messages,
                })
            );
        } else {
            println!(
                "{email} as of {} (ledger events up to seq {}): {} messages",
                state.as_of.to_rfc3339_opts(SecondsFormat::Secs, true),
                state.last_seq.map_or_else(|| "-".into(), |s| s.to_string()),
                state.messages.len()
            );
            for m in &state.messages {
                let labels = m
                    .label_ids
                    .as_ref()
                    .map_or_else(|| "(labels not recorded)".into(), |l| l.join(","));
                println!("  {}  {labels}", m.id);
            }
        }
        Ok(Exit::Done.into())
    }
}
