//! The command line: the global options every command understands, and
//! their checks, done once into the [`Context`] the commands are handed
//! (`GlobalArgs::into_context`). The subcommands live beside their code, in
//! `commands`.

use std::process::ExitCode;

use clap::{Args, Parser};
use ingest::project_quota::ProjectBudget;
use ingest::repo::DatabaseTarget;

use crate::commands::Command;
use crate::context::{self, Checked, Context, InvalidOption, QuotaPace};
use crate::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "mailingest",
    version,
    about = "Copy Gmail mailboxes into a database (embedded SQLite or PostgreSQL) exactly once, provably."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command, handed the global options checked once.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let ctx = self.global.into_context();
        self.command.run(&ctx).await
    }
}

/// Options every command understands.
#[derive(Args)]
pub struct GlobalArgs {
    /// postgres://… (production) or sqlite:PATH; default: the embedded
    /// database $XDG_DATA_HOME/mailingest/mailingest.db.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Attachment store: a path, file:///…, or s3://bucket/prefix.
    #[arg(long = "store", env = "MAILINGEST_STORE", global = true)]
    pub store: Option<String>,
    /// Gmail API base URL (the emulator's URL in tests).
    #[arg(long, env = "GMAIL_ENDPOINT", global = true)]
    pub gmail_endpoint: Option<String>,
    /// installed:FILE | service-account:FILE | token-env:VAR | none
    #[arg(long, global = true)]
    pub auth: Option<String>,
    /// Organisation id: owner of the mailboxes and the store prefix.
    #[arg(long, env = "MAILINGEST_ORG", global = true, default_value = "default",
          value_parser = crate::parse::parse_org)]
    pub org: String,
    #[arg(long, value_enum, global = true, default_value = "text")]
    pub log_format: LogFormat,
    /// Gmail's quota table the Cloud project is on: 2026 (every project
    /// created since May 2026: 6,000 units a minute per user, messages.get 20)
    /// or 2025 (projects that used the API between Nov 2025 and Apr 2026:
    /// 15,000 a minute, messages.get 5). Sets what each call costs and the pace.
    #[arg(
        long,
        env = "MAILINGEST_QUOTA_TABLE",
        global = true,
        default_value = "2026",
        value_parser = clap::value_parser!(gmail::QuotaTable)
    )]
    pub quota_table: gmail::QuotaTable,
    /// Gmail quota units a minute per mailbox, paced as a sliding minute
    /// (default: the table's per-user limit). Lower it when another app spends
    /// the same users' quota.
    #[arg(long, env = "MAILINGEST_QUOTA_UNITS_PER_MIN", global = true)]
    pub quota_units_per_min: Option<f64>,
    /// Pace each mailbox smoothly at this many quota units a second instead of
    /// to the minute (for a per-second limit, or to share one mailbox's quota
    /// with another process). Overrides --quota-units-per-min.
    #[arg(long, env = "MAILINGEST_QUOTA_UNITS_PER_SEC", global = true)]
    pub quota_units_per_sec: Option<f64>,
    /// Concurrent Gmail requests per mailbox.
    #[arg(
        long,
        env = "MAILINGEST_MAX_CONCURRENT_REQUESTS",
        global = true,
        default_value_t = 10
    )]
    pub max_concurrent_requests: usize,
    /// Attempts per Gmail request (the first included) before it counts as
    /// failed: for one message, the message is quarantined and retried by the
    /// next run; for a listing, the run fails.
    #[arg(
        long,
        env = "MAILINGEST_GMAIL_MAX_ATTEMPTS",
        global = true,
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub gmail_max_attempts: u32,
    /// MiB of messages being fetched and archived at once (a message costs
    /// about three times its size while in flight; a larger one runs alone).
    #[arg(
        long,
        env = "MAILINGEST_MAX_INFLIGHT_MB",
        global = true,
        default_value_t = 256,
        value_parser = clap::value_parser!(u64).range(16..=1_048_576)
    )]
    pub max_inflight_mb: u64,
    /// Quota units per second for the whole Cloud project, shared with every
    /// other mailingest process on this database (a token bucket in the
    /// database that every Gmail request also spends from). The same budget as
    /// --project-quota-units-per-min divided by 60.
    #[arg(long, env = "MAILINGEST_PROJECT_QUOTA_UNITS_PER_SEC", global = true)]
    pub project_quota_units_per_sec: Option<f64>,
    /// Quota units a minute for the whole Cloud project (Google's limit is
    /// 1,200,000 on both tables), shared with every other mailingest process on
    /// this database; no minute ever spends more.
    #[arg(
        long,
        env = "MAILINGEST_PROJECT_QUOTA_UNITS_PER_MIN",
        global = true,
        conflicts_with = "project_quota_units_per_sec"
    )]
    pub project_quota_units_per_min: Option<f64>,
    /// Quota units the whole Cloud project may spend per day (midnight to
    /// midnight Pacific time, when Google resets daily quotas), counted in the
    /// database by every process on it (default: the quota table's daily
    /// threshold, 80,000,000 on the 2026 table). When the day is spent, runs
    /// stop, keeping every committed batch (exit 75), and the worker waits for midnight.
    #[arg(long, env = "MAILINGEST_PROJECT_DAILY_UNITS", global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub project_daily_units: Option<u64>,
    /// How long an outage of the database or the store (a restart, a failover,
    /// an endpoint that stops answering) is ridden out, retrying with backoff,
    /// before the run fails: e.g. 60s, 5m, 0s to fail at once.
    #[arg(
        long,
        env = "MAILINGEST_OUTAGE_BUDGET",
        global = true,
        default_value = "60s",
        value_parser = crate::parse::parse_span
    )]
    pub outage_budget: std::time::Duration,
    /// After each run, record the mailbox's ledger head (seq and hash): a JSON
    /// line appended to a file (PATH or file:PATH), or a write-once object in
    /// S3 (s3://bucket/prefix). Keep it where the database host cannot rewrite
    /// it, then `verify --expect-head SEQ:HASH`.
    #[arg(long, env = "MAILINGEST_ANCHOR_TO", global = true)]
    pub anchor_to: Option<String>,
}

// Hand-written: the database URL may carry a password.
impl std::fmt::Debug for GlobalArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalArgs")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("store", &self.store)
            .field("gmail_endpoint", &self.gmail_endpoint)
            .field("auth", &self.auth)
            .field("org", &self.org)
            .field("log_format", &self.log_format)
            .field("quota_table", &self.quota_table)
            .field("quota_units_per_min", &self.quota_units_per_min)
            .field("quota_units_per_sec", &self.quota_units_per_sec)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("gmail_max_attempts", &self.gmail_max_attempts)
            .field("max_inflight_mb", &self.max_inflight_mb)
            .field("outage_budget", &self.outage_budget)
            .field("anchor_to", &self.anchor_to)
            .field(
                "project_quota_units_per_sec",
                &self.project_quota_units_per_sec,
            )
            .field(
                "project_quota_units_per_min",
                &self.project_quota_units_per_min,
            )
            .field("project_daily_units", &self.project_daily_units)
            .finish()
    }
}

impl GlobalArgs {
    /// Every check of a global option, once. A failed check is kept in the
    /// context and reported by the builder that needs the option (see
    /// `context`), with the message and exit code it always had.
    pub fn into_context(self) -> Context {
        let database = match self.database_url.as_deref() {
            Some(url) => DatabaseTarget::parse(url)
                .map_err(|e| InvalidOption::caused_by("--database-url / DATABASE_URL", e)),
            None => Ok(DatabaseTarget::Sqlite(context::default_database())),
        };
        let store_url = match self.store {
            Some(url) => url,
            None => context::default_store(database.as_ref().ok())
                .to_string_lossy()
                .into_owned(),
        };
        let auth = self.auth.as_deref().map(|spec| {
            spec.parse()
                .map_err(|e| InvalidOption::new(format!("--auth: {e}")))
        });
        let project_daily_units = self
            .project_daily_units
            .unwrap_or_else(|| self.quota_table.project_daily_units());
        Context {
            database_is_default: self.database_url.is_none(),
            database,
            store_url,
            org: self.org,
            outage_budget: self.outage_budget,
            gmail_endpoint: self.gmail_endpoint,
            auth,
            quota_table: self.quota_table,
            quota_pace: quota_pace(self.quota_units_per_sec, self.quota_units_per_min),
            max_concurrent_requests: match self.max_concurrent_requests {
                0 => Err(InvalidOption::new(
                    "--max-concurrent-requests must be at least 1",
                )),
                n => Ok(n),
            },
            gmail_max_attempts: self.gmail_max_attempts,
            message_memory_bytes: self.max_inflight_mb * 1024 * 1024,
            anchor_to: self.anchor_to,
            project_budget: project_budget(
                self.project_quota_units_per_min,
                self.project_quota_units_per_sec,
            ),
            project_daily_units,
        }
    }
}

fn positive(units: f64) -> bool {
    units.is_finite() && units > 0.0
}

/// Per second wins over per minute; a per-minute value is not checked when
/// a per-second one is given (it is not used).
fn quota_pace(per_sec: Option<f64>, per_min: Option<f64>) -> Checked<QuotaPace> {
    match (per_sec, per_min) {
        (Some(units), _) if !positive(units) => Err(InvalidOption::new(
            "--quota-units-per-sec must be a positive number",
        )),
        (Some(units), _) => Ok(QuotaPace::PerSecond(units)),
        (None, Some(units)) if !positive(units) => Err(InvalidOption::new(
            "--quota-units-per-min must be a positive number",
        )),
        (None, Some(units)) => Ok(QuotaPace::PerMinute(units)),
        (None, None) => Ok(QuotaPace::Table),
    }
}

/// The project's shared budget, if one was given (clap refuses both).
fn project_budget(per_min: Option<f64>, per_sec: Option<f64>) -> Checked<Option<ProjectBudget>> {
    let budget = match (per_min, per_sec) {
        (Some(m), _) => Some((
            ProjectBudget::per_minute(m),
            "--project-quota-units-per-min",
        )),
        (None, Some(s)) => Some((
            ProjectBudget::per_second(s),
            "--project-quota-units-per-sec",
        )),
        (None, None) => None,
    };
    match budget {
        Some((budget, flag)) if !positive(budget.units) => Err(InvalidOption::new(format!(
            "{flag} must be a positive number"
        ))),
        budget => Ok(budget.map(|(b, _)| b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The context of `migrate` with these global options (explicit flags
    /// win over any environment the test runs in).
    fn context(extra: &[&str]) -> Context {
        let mut argv = vec!["mailingest"];
        if !extra.contains(&"--database-url") {
            argv.extend(["--database-url", "sqlite:/srv/mail/mailingest.db"]);
        }
        argv.extend_from_slice(extra);
        argv.push("migrate");
        Cli::try_parse_from(argv)
            .expect("command line")
            .global
            .into_context()
    }

    fn error<T>(checked: &Checked<T>) -> String {
        match checked {
            Ok(_) => "no error".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_bad_option_is_kept_for_the_command_that_uses_it() {
        let ctx = context(&[
            "--quota-units-per-sec=0",
            "--max-concurrent-requests=0",
            "--project-quota-units-per-min=-1",
            "--auth=bogus",
        ]);
        assert_eq!(
            error(&ctx.quota_pace),
            "--quota-units-per-sec must be a positive number"
        );
        assert_eq!(
            error(&ctx.max_concurrent_requests),
            "--max-concurrent-requests must be at least 1"
        );
        assert_eq!(
            error(&ctx.project_budget),
            "--project-quota-units-per-min must be a positive number"
        );
        assert!(matches!(&ctx.auth, Some(Err(e)) if e.to_string().starts_with("--auth: ")));
        assert!(ctx.database.is_ok(), "the database is still usable");
    }

    #[test]
    fn per_second_pacing_wins_and_leaves_per_minute_unchecked() {
        let ctx = context(&["--quota-units-per-sec=5", "--quota-units-per-min=-1"]);
        assert!(matches!(ctx.quota_pace, Ok(QuotaPace::PerSecond(5.0))));
        let ctx = context(&["--quota-units-per-min=inf"]);
        assert_eq!(
            error(&ctx.quota_pace),
            "--quota-units-per-min must be a positive number"
        );
        assert!(matches!(context(&[]).quota_pace, Ok(QuotaPace::Table)));
    }

    #[test]
    fn the_store_defaults_to_beside_an_sqlite_database() {
        let ctx = context(&[]);
        assert_eq!(ctx.store_url, "/srv/mail/store");
        assert!(!ctx.database_is_default);
        let ctx = context(&["--store", "s3://bucket/prefix"]);
        assert_eq!(ctx.store_url, "s3://bucket/prefix");
    }

    #[test]
    fn a_bad_database_url_names_the_option_and_its_cause() {
        let ctx = context(&["--database-url", "bogus://x"]);
        let message = error(&ctx.database);
        assert!(
            message.starts_with("--database-url / DATABASE_URL: "),
            "{message}"
        );
        assert!(message.len() > "--database-url / DATABASE_URL: ".len());
    }

    #[test]
    fn the_project_day_defaults_to_the_quota_tables_threshold() {
        let ctx = context(&[]);
        assert_eq!(
            ctx.project_daily_units,
            gmail::QuotaTable::Y2026.project_daily_units()
        );
        assert_eq!(
            context(&["--project-daily-units", "5"]).project_daily_units,
            5
        );
    }
}
