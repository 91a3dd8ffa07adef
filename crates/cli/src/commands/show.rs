//! `mailingest show --mailbox M --as-of T [--label L]`: the mailbox as the
//! ledger says it was at T: every message live then, with its labels then.
//! Computed by replaying the ledger's message events (ingested, labels
//! changed, deleted) recorded up to T, never from the rows, which hold only
//! the present. Labels are printed by their names in Gmail now (a deleted
//! label by its last name); `--label` takes a name or an id.

use std::collections::{BTreeSet, HashMap};
use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use ingest::domain::{MailboxAddress, system_id_of_takeout_name};
use ingest::repo::{MailboxLabelRow, MailboxState};
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
    /// Only messages carrying this label then: its name in Gmail, its id
    /// (INBOX, Label_12) or Takeout's word for a system label (Inbox).
    #[arg(long)]
    label: Option<String>,
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
        let mut state = MailboxState::replay(self.as_of, &events);
        let labels = repo.mailbox_labels(&[mailbox.id]).await?;
        let names: HashMap<&str, &str> = labels
            .iter()
            .map(|l| (l.label.id.as_str(), l.label.name.as_str()))
            .collect();
        let name = |id: &str| names.get(id).copied().unwrap_or(id).to_owned();
        if let Some(wanted) = &self.label {
            let ids = label_ids_of(&labels, wanted);
            state.messages.retain(|m| {
                m.label_ids
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|id| ids.contains(id.as_str())))
            });
        }
        if self.json {
            println!(
                "{}",
                json!({
                    "org": ctx.org,
                    "mailbox": email,
                    "as_of": state.as_of,
                    "ledger_seq": state.last_seq,
                    "messages": state.messages.iter().map(|m| json!({
                        "id": m.id,
                        "label_ids": m.label_ids,
                        "labels": m.label_ids.as_ref().map(|l| l.iter().map(|id| name(id)).collect::<Vec<_>>()),
                    })).collect::<Vec<_>>(),
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
                let labels = m.label_ids.as_ref().map_or_else(
                    || "(labels not recorded)".into(),
                    // A name is untrusted text: printed as ids are in logs.
                    |l| {
                        l.iter()
                            .map(|id| gmail::printable_id(&name(id)).into_owned())
                            .collect::<Vec<_>>()
                            .join(",")
                    },
                );
                println!("  {}  {labels}", m.id);
            }
        }
        Ok(Exit::Done.into())
    }
}

/// The ids `wanted` names: a label's id, its name in Gmail, or Takeout's
/// word for a system label; itself when no stored label matches (a label
/// labels.list never listed is known by its id only).
fn label_ids_of<'a>(labels: &'a [MailboxLabelRow], wanted: &'a str) -> BTreeSet<&'a str> {
    let wanted = system_id_of_takeout_name(wanted).unwrap_or(wanted);
    let mut ids: BTreeSet<&str> = labels
        .iter()
        .filter(|l| l.label.id == wanted || l.label.name == wanted)
        .map(|l| l.label.id.as_str())
        .collect();
    ids.insert(wanted);
    ids
}
