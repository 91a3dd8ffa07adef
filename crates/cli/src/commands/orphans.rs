//! `mailingest orphans --mailbox M [--json]`: the archive entries `import
//! --keep-unmatched` kept for the mailbox although they are no message of it
//! (not in Gmail's mailbox, no usable id, malformed): where each came from,
//! why it was kept, and the blob its bytes are. Read only, of --org's mailbox.

use std::process::ExitCode;

use chrono::SecondsFormat;
use clap::Args;
use ingest::domain::MailboxAddress;

use crate::context::{Context, PoolProfile};
use crate::exit::Exit;

#[derive(Debug, Args)]
pub struct Orphans {
    /// The mailbox (of --org).
    #[arg(long)]
    mailbox: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl Orphans {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let repo = ctx.database(PoolProfile::Small).await?;
        let email = MailboxAddress::normalized(&self.mailbox);
        let Some(mailbox) = ctx.find_mailbox(repo.as_ref(), email.as_str()).await? else {
            return Err(ctx.no_such_mailbox(email.as_str()));
        };
        let orphans = repo.imported_orphans(mailbox.id).await?;
        if self.json {
            let out = serde_json::json!({"org": ctx.org, "mailbox": email, "orphans": orphans});
            println!("{}", serde_json::to_string(&out)?);
            return Ok(Exit::Done.into());
        }
        println!("{email}: {} orphans kept by import", orphans.len());
        // Header values are the message's own text: printed as untrusted ids are.
        let text = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "-".to_owned(), |v| gmail::printable_id(v).into_owned())
        };
        for o in &orphans {
            let r = &o.row;
            println!(
                "  {} {} bytes  {} at byte {}  {}{}  run {} {}",
                r.sha256,
                r.size,
                r.source,
                r.file_offset,
                r.reason,
                r.provider_message_id
                    .as_ref()
                    .map(|id| format!(" (message {})", gmail::printable_id(id)))
                    .unwrap_or_default(),
                o.first_run_id,
                o.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            );
            println!(
                "      Message-ID {}  Date {}  Subject {}",
                text(&r.rfc822_message_id),
                text(&r.date_header),
                text(&r.subject)
            );
        }
        Ok(Exit::Done.into())
    }
}
