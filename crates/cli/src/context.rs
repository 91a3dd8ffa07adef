//! What every command works with: the global options, checked once when the
//! command line is read (`GlobalArgs::into_context`), and the builders of what
//! the commands need from them: the database (connected and migrated, in one
//! place), the store, the Gmail client, the engine.
//!
//! A global option that fails its check is kept as an [`InvalidOption`] and
//! reported by the first builder that needs it, not when the line is read, so
//! a command that never uses an option (`migrate` and `--quota-units-per-sec`)
//! is not stopped by it, and errors come in the order the builders run.

mod mailboxes;
mod pool;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use gmail::{AuthSpec, ClientConfig, GmailClient, QuotaTable};
use ingest::anchor::AnchorTarget;
use ingest::engine::{Engine, EngineOptions, MessageMemory};
use ingest::project_quota::{ProjectBudget, ProjectQuota};
use ingest::repo::{DatabaseTarget, Repository};
use store::{BlobStore, StoreOptions};

pub use pool::PoolProfile;

/// The demo emulator has no quota; pace the client well above anything real (units a second).
const DEMO_QUOTA: f64 = 100_000.0;

/// A global option whose value failed its check: the whole line printed
/// after `error: `, the same line the check printed when it ran in the builder.
#[derive(Debug, Clone)]
pub struct InvalidOption(String);

impl InvalidOption {
    pub fn new(message: impl Into<String>) -> Self {
        InvalidOption(message.into())
    }

    /// `what: cause: cause's causes…`, as anyhow prints a chain with `{:#}`.
    pub fn caused_by(
        what: &'static str,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        InvalidOption(format!("{:#}", anyhow::Error::new(cause).context(what)))
    }
}

impl std::fmt::Display for InvalidOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidOption {}

/// A checked option: its value, or why it has none.
pub type Checked<T> = Result<T, InvalidOption>;

/// How each mailbox's Gmail requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuotaPace {
    /// `--quota-units-per-sec`: smoothly, at this many units a second.
    PerSecond(f64),
    /// `--quota-units-per-min`: to a sliding minute of this many units.
    PerMinute(f64),
    /// Neither: the quota table's per-user limit (the demo: no real limit).
    Table,
}

/// What the commands work with, from the global options. No `Debug`: it
/// holds the database URL, which may carry a password.
pub struct Context {
    /// `--org`: owner of the mailboxes and the store prefix.
    pub org: String,
    /// `--database-url`, or the embedded default.
    pub database: Checked<DatabaseTarget>,
    /// Neither `--database-url` nor DATABASE_URL named a database: creating
    /// the embedded one is announced.
    pub database_is_default: bool,
    /// `--store`, or the default beside the database.
    pub store_url: String,
    /// `--outage-budget`.
    pub outage_budget: Duration,
    /// `--gmail-endpoint`.
    pub gmail_endpoint: Option<String>,
    /// `--auth`, parsed; `None` when not given.
    pub auth: Option<Checked<AuthSpec>>,
    /// `--quota-table`.
    pub quota_table: QuotaTable,
    /// `--quota-units-per-sec` / `--quota-units-per-min`.
    pub quota_pace: Checked<QuotaPace>,
    /// `--max-concurrent-requests`.
    pub max_concurrent_requests: Checked<usize>,
    /// `--gmail-max-attempts`.
    pub gmail_max_attempts: u32,
    /// `--max-inflight-mb`, in bytes.
    pub message_memory_bytes: u64,
    /// `--anchor-to`, opened by the engine (it may touch S3).
    pub anchor_to: Option<String>,
    /// `--project-quota-units-per-min` / `--project-quota-units-per-sec`.
    pub project_budget: Checked<Option<ProjectBudget>>,
    /// `--project-daily-units`, or the quota table's daily threshold.
    pub project_daily_units: u64,
}

/// mailingest's data directory: `$XDG_DATA_HOME/mailingest`, by default
/// `~/.local/share/mailingest`.
fn data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mailingest")
}

/// The embedded database used when neither --database-url nor DATABASE_URL says.
pub fn default_database() -> PathBuf {
    data_dir().join("mailingest.db")
}

/// Where blobs go when neither --store nor MAILINGEST_STORE says: beside an
/// SQLite database, else in the data directory.
pub fn default_store(database: Option<&DatabaseTarget>) -> PathBuf {
    match database {
        Some(DatabaseTarget::Sqlite(db)) => db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("store"), |d| d.join("store")),
        _ => data_dir().join("store"),
    }
}

/// What a command will do with the store, so its preflight checks that much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAccess {
    Read,
    Write,
}

impl Context {
    /// The Gmail client. `demo` is the in-process emulator's URL: it gets no auth
    /// and, unless --quota-units-per-sec says otherwise, no real quota.
    pub async fn gmail_client(&self, demo: Option<&str>) -> anyhow::Result<GmailClient> {
        let endpoint = demo
            .or(self.gmail_endpoint.as_deref())
            .unwrap_or(gmail::DEFAULT_ENDPOINT)
            .to_owned();
        // No --auth: none for a loopback endpoint (the emulator); never a guess for Google itself.
        let auth = match &self.auth {
            Some(spec) => spec.clone()?,
            None if endpoint != gmail::DEFAULT_ENDPOINT => AuthSpec::None,
            None => {
                return Err(anyhow!(
                    "no credentials: pass --auth installed:client_secret.json, service-account:KEY.json or token-env:VAR"
                ));
            }
        };
        let mut config = ClientConfig::new(auth).with_endpoint(endpoint);
        config.quota = gmail::QuotaConfig::for_table(self.quota_table);
        match self.quota_pace.clone()? {
            QuotaPace::PerSecond(units) => config.quota.units_per_second = Some(units),
            QuotaPace::PerMinute(units) => config.quota.units_per_minute = Some(units),
            QuotaPace::Table if demo.is_some() => config.quota.units_per_second = Some(DEMO_QUOTA),
            QuotaPace::Table => {}
        }
        config.quota.max_concurrent = self.max_concurrent_requests.clone()?;
        config.retry.max_attempts = self.gmail_max_attempts;
        GmailClient::new(config)
            .await
            .context("setting up the Gmail client")
    }

    /// The store, checked before any work starts (credentials, bucket, and a write for
    /// commands that write): a store that cannot work is one line naming it, not a run that
    /// starts and fails. Calls after that ride out an outage for `--outage-budget`.
    pub async fn blob_store(&self, access: StoreAccess) -> anyhow::Result<BlobStore> {
        self.open_store(access, self.outage_budget).await
    }

    /// [`Context::blob_store`], riding out an outage for at most `max_outage`
    /// (less when `--outage-budget` says so).
    pub async fn blob_store_within(
        &self,
        access: StoreAccess,
        max_outage: Duration,
    ) -> anyhow::Result<BlobStore> {
        self.open_store(access, self.outage_budget.min(max_outage))
            .await
    }

    async fn open_store(
        &self,
        access: StoreAccess,
        outage_budget: Duration,
    ) -> anyhow::Result<BlobStore> {
        let options = StoreOptions::default().with_outage_budget(outage_budget);
        let store = BlobStore::from_url_with(&self.store_url, &self.org, options)
            .await
            .context("opening the attachment store")?;
        store
            .preflight(access == StoreAccess::Write)
            .await
            .context("checking the attachment store")?;
        Ok(store)
    }

    /// The database `--database-url` names (or the embedded default).
    pub fn database_target(&self) -> anyhow::Result<DatabaseTarget> {
        Ok(self.database.clone()?)
    }

    /// The database, connected and with the schema applied. The embedded default
    /// is announced on stderr the first time it is created.
    pub async fn database(&self, pool: PoolProfile) -> anyhow::Result<Arc<dyn Repository>> {
        let target = self.database.clone()?;
        if let DatabaseTarget::Sqlite(path) = &target
            && self.database_is_default
            && !path.exists()
        {
            eprintln!(
                "mailingest: creating the embedded database {} (set DATABASE_URL=postgres://… for PostgreSQL)",
                path.display()
            );
        }
        Ok(target.open(pool.connections()).await?)
    }

    /// The engine over the given Gmail client.
    pub async fn engine(&self, gmail: GmailClient, pool: PoolProfile) -> anyhow::Result<Engine> {
        let repo = self.database(pool).await?;
        let anchor = match self.anchor_to.as_deref() {
            Some(spec) => Some(AnchorTarget::open(spec).await?),
            None => None,
        };
        let options = EngineOptions {
            message_memory: MessageMemory::new(self.message_memory_bytes),
            db_outage: self.outage_budget,
            anchor,
            ..EngineOptions::default()
        };
        let project_budget = self.project_budget.clone()?;
        ProjectQuota::install(
            repo.clone(),
            &gmail,
            project_budget,
            self.project_daily_units,
        );
        Ok(Engine {
            repo,
            gmail,
            store: self.blob_store(StoreAccess::Write).await?,
            org: self.org.clone(),
            options,
        })
    }
}
