//! `mailingest status`: per mailbox of `--org`, its health, the last run, cursor age,
//! counts, its labels by name, and schedule; `--check` for cron and monitoring (exit 5 when a
//! mailbox is degraded); `--quarantined` lists quarantined messages.

use std::process::ExitCode;

use clap::Args;

use std::collections::HashMap;

use ingest::domain::LabelKind;
use ingest::repo::{ConsumerPosition, Degraded, MailboxLabelRow, Repository, RunStatus};

use crate::context::{Context, PoolProfile};
use crate::exit::Exit;

#[derive(Debug, Args)]
pub struct Status {
    /// One JSON array on stdout.
    #[arg(long)]
    json: bool,
    /// List every quarantined message instead: mailbox, id, why, attempts,
    /// and when it is tried next (or that it was given up).
    #[arg(long)]
    quarantined: bool,
    /// Exit 5 when any mailbox is degraded (quarantined messages, no
    /// completed run for 6 days while Gmail keeps history about a week,
    /// 3 failed runs in a row, differences found by the worker's last
    /// completeness check); 0 when all are healthy.
    #[arg(long)]
    check: bool,
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
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let repo = ctx.database(PoolProfile::Small).await?;
        if self.quarantined {
            return list_quarantined(ctx, repo.as_ref(), self.json).await;
        }
        let rows = repo.mailbox_status(&ctx.org).await?;
        let now = chrono::Utc::now();
        // Change-feed consumers' positions, by (org, mailbox).
        let mut consumers: HashMap<(String, String), Vec<ConsumerPosition>> = HashMap::new();
        for p in repo.consumer_positions(&ctx.org).await? {
            consumers
                .entry((p.org.clone(), p.mailbox.clone()))
                .or_default()
                .push(p);
        }
        let consumers_of = |org: &str, email: &str| {
            consumers
                .get(&(org.to_owned(), email.to_owned()))
                .map_or(&[][..], Vec::as_slice)
        };
        let degraded: Vec<Vec<Degraded>> = rows.iter().map(|s| s.degraded(now)).collect();
        let ids: Vec<i64> = rows.iter().map(|s| s.mailbox.id).collect();
        let mut labels: HashMap<i64, Vec<MailboxLabelRow>> = HashMap::new();
        for l in repo.mailbox_labels(&ids).await? {
            if !l.deleted {
                labels.entry(l.mailbox_id).or_default().push(l);
            }
        }
        let verdict = if self.check && degraded.iter().any(|d| !d.is_empty()) {
            Exit::Degraded.into()
        } else {
            ExitCode::SUCCESS
        };
        if self.json {
            let out: Vec<serde_json::Value> = rows
                .iter()
                .zip(&degraded)
                .map(|(s, d)| {
                    let mut v = serde_json::to_value(s)?;
                    v["health"] = if d.is_empty() { "healthy" } else { "degraded" }.into();
                    v["degraded"] = serde_json::to_value(d)?;
                    let of: Vec<_> = labels
                        .get(&s.mailbox.id)
                        .map(|l| l.iter().map(|l| &l.label).collect())
                        .unwrap_or_default();
                    v["labels"] = serde_json::to_value(of)?;
                    let m = &s.mailbox;
                    v["consumers"] = consumers_of(&m.org_id, &m.provider_email)
                        .iter()
                        .map(|p| {
                            serde_json::json!({
                                "consumer": p.consumer,
                                "seq": p.seq,
                                "head": p.head,
                                "lag_events": p.lag_events(),
                                "lag_seconds": p.lag_seconds(now),
                                "acked_at": p.acked_at,
                            })
                        })
                        .collect();
                    Ok(v)
                })
                .collect::<Result<_, serde_json::Error>>()?;
            println!("{}", serde_json::to_string(&out)?);
            return Ok(verdict);
        }
        if rows.is_empty() {
            println!("no mailboxes yet: `mailingest mailbox add EMAIL` or run a backfill");
        }
        let spent = ingest::project_quota::ProjectQuota::spent_today(repo.as_ref()).await?;
        let limit = ctx.project_daily_units;
        let resets = gmail::until_pacific_midnight(now).as_secs();
        println!(
            "project quota today: {spent} of {limit} units (quota table {}; the day resets at midnight Pacific, in {}h{:02}m)",
            ctx.quota_table,
            resets / 3600,
            resets % 3600 / 60
        );
        for (s, degraded) in rows.into_iter().zip(degraded) {
            let m = &s.mailbox;
            println!(
                "{} ({}){}",
                m.provider_email,
                m.org_id,
                if m.enabled { "" } else { " [disabled]" }
            );
            println!("  health     {}", health(&degraded));
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
                "  quota      {} units today (finished runs)",
                s.quota_units_today
            );
            println!(
                "  labels     {}",
                label_line(labels.get(&m.id).map_or(&[], Vec::as_slice))
            );
            for p in consumers_of(&m.org_id, &m.provider_email) {
                println!(
                    "  consumer   {}: seq {} of {} ({} events behind, oldest waiting {})",
                    p.consumer,
                    p.seq,
                    p.head,
                    p.lag_events(),
                    age(Some(p.lag_seconds(now)))
                );
            }
            if s.quarantined > 0 {
                println!(
                    "  quarantine {} message(s), {} given up (`mailingest status --quarantined` lists them)",
                    s.quarantined, s.quarantine_given_up
                );
            }
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
        Ok(verdict)
    }
}

/// `17 (3 of the user's: takeout, work/2026, …)`: how many labels Gmail
/// listed at the last run, and the user's by name (at most 8; untrusted
/// names printed as [`gmail::printable_id`] prints them).
fn label_line(labels: &[MailboxLabelRow]) -> String {
    if labels.is_empty() {
        return "- (listed when a run starts)".into();
    }
    let user: Vec<String> = labels
        .iter()
        .filter(|l| l.label.kind == LabelKind::User)
        .map(|l| gmail::printable_id(&l.label.name).into_owned())
        .collect();
    let mut names = user.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    if user.len() > 8 {
        names.push_str(", …");
    }
    format!("{} ({} of the user's: {names})", labels.len(), user.len())
}

fn health(degraded: &[Degraded]) -> String {
    if degraded.is_empty() {
        return "healthy".into();
    }
    let reasons: Vec<String> = degraded
        .iter()
        .map(|d| match d {
            Degraded::Quarantined { messages, given_up } => {
                format!("{messages} quarantined message(s), {given_up} given up")
            }
            Degraded::CursorNearExpiry { days_since_success } => format!(
                "no completed run for {days_since_success} days: Gmail's history may expire"
            ),
            Degraded::Failing {
                consecutive_failures,
            } => format!("{consecutive_failures} failed runs in a row"),
            Degraded::HistoryRewound { at } => format!(
                "Gmail's history went behind the stored cursor at {} (mailbox restored, \
                 re-created, or another account's now): check it with `mailingest verify --full`",
                at.to_rfc3339()
            ),
            Degraded::VerifyFindings {
                checked_at,
                findings,
            } => format!(
                "the completeness check of {} found differences: {}",
                checked_at.to_rfc3339(),
                findings
                    .first()
                    .map_or("see `mailingest verify --full`", String::as_str)
            ),
        })
        .collect();
    format!("DEGRADED: {}", reasons.join("; "))
}

/// `status --quarantined`: one line (or JSON object) per quarantined message
/// of the org's mailboxes.
async fn list_quarantined(
    ctx: &Context,
    repo: &dyn Repository,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mailboxes = repo.list_mailboxes(&ctx.org).await?;
    let mut rows = Vec::new();
    for m in &mailboxes {
        rows.extend(repo.quarantined(Some(m.id)).await?);
    }
    let emails: HashMap<i64, String> = mailboxes
        .into_iter()
        .map(|m| (m.id, m.provider_email))
        .collect();
    if json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|q| {
                let mut v = serde_json::to_value(q)?;
                v["mailbox"] = emails.get(&q.mailbox_id).cloned().into();
                v["given_up"] = q.given_up().into();
                Ok(v)
            })
            .collect::<Result<_, serde_json::Error>>()?;
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no quarantined messages");
    }
    for q in &rows {
        let next = if q.given_up() {
            "given up (`mailingest mailbox requeue EMAIL` tries again)".to_owned()
        } else {
            format!("next try from {}", q.next_attempt_at.to_rfc3339())
        };
        println!(
            "{}  {}  {}  attempts {}  {}\n    {}",
            emails.get(&q.mailbox_id).map_or("?", String::as_str),
            q.provider_message_id,
            q.kind,
            q.attempts,
            next,
            q.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}
