//! `mailingest status`: per mailbox, the last run, cursor age, counts and schedule.

use std::process::ExitCode;

use clap::Args;

use ingest::repo::RunStatus;

use crate::args::GlobalArgs;
use crate::context;

#[derive(Debug, Args)]
pub struct Status {
    /// One JSON array on stdout.
    #[arg(long)]
    json: bool,
}

fn age(secs: Option<f64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 120.0 => format!("{s:.0}s"),
        Some(s) if s < 7200.0 => format!("{:.0}m", s / 60.0),
        Some(s) if s < 172_800.0 => format!("{:.0}h", s / 3600.0),
        Some(s) => format!("{:.0}d", s / 86400.0),
    }
}

impl Status {
    pub async fn run(self, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
        let rows = context::database(global, 2).await?.mailbox_status().await?;
        if self.json {
            println!("{}", serde_json::to_string(&rows)?);
            return Ok(ExitCode::SUCCESS);
        }
        if rows.is_empty() {
            println!("no mailboxes yet: `mailingest mailbox add EMAIL` or run a backfill");
        }
        for s in rows {
            let m = &s.mailbox;
            println!(
                "{} ({}){}",
                m.provider_email,
                m.org_id,
                if m.enabled { "" } else { " [disabled]" }
            );
            println!(
                "  last run   {}",
                match (&s.last_run_id, &s.last_run_status) {
                    (Some(id), Some(status)) => format!(
                        "{id} {} {status}{} (started {}{})",
                        s.last_run_kind.map_or("?", |k| k.as_str()),
                        if *status == RunStatus::Running {
                            format!(", heartbeat {} ago", age(s.last_run_heartbeat_age_secs))
                        } else {
                            String::new()
                        },
                        s.last_run_started_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_default(),
                        s.last_run_error
                            .as_ref()
                            .map(|e| format!("; error: {e}"))
                            .unwrap_or_default()
                    ),
                    _ => "never".into(),
                }
            );
            println!(
                "  cursor     {} (updated {} ago)",
                m.history_id
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "none".into()),
                age(s.cursor_age_secs)
            );
            println!(
                "  stored     threads {}  messages {} (deleted {})  attachments {}",
                s.threads, s.messages, s.messages_deleted, s.attachments
            );
            println!(
                "  schedule   next sync {}  every {}s  consecutive failures {}{}",
                m.next_sync_at.to_rfc3339(),
                m.sync_interval_secs,
                m.consecutive_failures,
                m.last_error
                    .as_ref()
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
