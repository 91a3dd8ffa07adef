//! Building what commands work with from the global options: the database
//! (connected and migrated, in one place), the store, the Gmail client, the engine.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use gmail::{AuthSpec, ClientConfig, GmailClient};
use ingest::anchor::AnchorTarget;
use ingest::engine::{Engine, EngineOptions, MessageMemory};
use ingest::project_quota::{ProjectBudget, ProjectQuota};
use ingest::repo::{DatabaseTarget, Repository};
use store::{BlobStore, StoreOptions};

use crate::args::GlobalArgs;

/// The demo emulator has no quota; pace the client well above anything real (units a second).
const DEMO_QUOTA: f64 = 100_000.0;

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

/// The database the options name: their URL, or the embedded default.
pub fn database_target(global: &GlobalArgs) -> anyhow::Result<DatabaseTarget> {
    match global.database_url.as_deref() {
        Some(url) => Ok(DatabaseTarget::parse(url).context("--database-url / DATABASE_URL")?),
        None => Ok(DatabaseTarget::Sqlite(default_database())),
    }
}

/// Where blobs go when neither --store nor MAILINGEST_STORE says: beside an
/// SQLite database, else in the data directory.
pub fn default_store(global: &GlobalArgs) -> PathBuf {
    match database_target(global) {
        Ok(DatabaseTarget::Sqlite(db)) => db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("store"), |d| d.join("store")),
        _ => data_dir().join("store"),
    }
}

/// The auth spec from --auth, defaulting to none for a loopback endpoint
/// (the emulator) and refusing to guess for Google itself.
pub fn auth_spec(global: &GlobalArgs, endpoint: &str) -> anyhow::Result<AuthSpec> {
    match &global.auth {
        Some(spec) => AuthSpec::from_str(spec).map_err(|e| anyhow!("--auth: {e}")),
        None if endpoint != gmail::DEFAULT_ENDPOINT => Ok(AuthSpec::None),
        None => Err(anyhow!(
            "no credentials: pass --auth installed:client_secret.json, service-account:KEY.json or token-env:VAR"
        )),
    }
}

/// The Gmail client. `demo` is the in-process emulator's URL: it gets no auth
/// and, unless --quota-units-per-sec says otherwise, no real quota.
pub async fn gmail_client(global: &GlobalArgs, demo: Option<&str>) -> anyhow::Result<GmailClient> {
    let endpoint = demo
        .or(global.gmail_endpoint.as_deref())
        .unwrap_or(gmail::DEFAULT_ENDPOINT)
        .to_owned();
    let auth = auth_spec(global, &endpoint)?;
    let mut config = ClientConfig::new(auth).with_endpoint(endpoint);
    config.quota = gmail::QuotaConfig::for_table(global.quota_table);
    let positive = |v: f64| v.is_finite() && v > 0.0;
    match (global.quota_units_per_sec, global.quota_units_per_min) {
        (Some(units), _) if !positive(units) => {
            return Err(anyhow!("--quota-units-per-sec must be a positive number"));
        }
        (Some(units), _) => config.quota.units_per_second = Some(units),
        (None, Some(units)) if !positive(units) => {
            return Err(anyhow!("--quota-units-per-min must be a positive number"));
        }
        (None, Some(units)) => config.quota.units_per_minute = Some(units),
        // The demo emulator has no quota: pace well above anything real.
        (None, None) if demo.is_some() => config.quota.units_per_second = Some(DEMO_QUOTA),
        (None, None) => {}
    }
    if global.max_concurrent_requests == 0 {
        return Err(anyhow!("--max-concurrent-requests must be at least 1"));
    }
    config.quota.max_concurrent = global.max_concurrent_requests;
    config.retry.max_attempts = global.gmail_max_attempts;
    GmailClient::new(config)
        .await
        .context("setting up the Gmail client")
}

/// What a command will do with the store, so its preflight checks that much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAccess {
    Read,
    Write,
}

/// The store, checked before any work starts (credentials, bucket, and a write for
/// commands that write): a store that cannot work is one line naming it, not a run that
/// starts and fails. Calls after that ride out an outage for `--outage-budget`.
pub async fn blob_store(global: &GlobalArgs, access: StoreAccess) -> anyhow::Result<BlobStore> {
    let url = match &global.store {
        Some(url) => url.clone(),
        None => default_store(global).to_string_lossy().into_owned(),
    };
    let options = StoreOptions::default().with_outage_budget(global.outage_budget);
    let store = BlobStore::from_url_with(&url, &global.org, options)
        .await
        .context("opening the attachment store")?;
    store
        .preflight(access == StoreAccess::Write)
        .await
        .context("checking the attachment store")?;
    Ok(store)
}

/// The database, connected and with the schema applied. The embedded default
/// is announced on stderr the first time it is created.
pub async fn database(
    global: &GlobalArgs,
    connections: u32,
) -> anyhow::Result<Arc<dyn Repository>> {
    let target = database_target(global)?;
    if let DatabaseTarget::Sqlite(path) = &target
        && global.database_url.is_none()
        && !path.exists()
    {
        eprintln!(
            "mailingest: creating the embedded database {} (set DATABASE_URL=postgres://… for PostgreSQL)",
            path.display()
        );
    }
    Ok(target.open(connections).await?)
}

/// The engine over the given Gmail client.
pub async fn engine(
    global: &GlobalArgs,
    gmail: GmailClient,
    connections: u32,
) -> anyhow::Result<Engine> {
    let repo = database(global, connections).await?;
    let anchor = match global.anchor_to.as_deref() {
        Some(spec) => Some(AnchorTarget::open(spec).await?),
        None => None,
    };
    let options = EngineOptions {
        message_memory: MessageMemory::new(global.max_inflight_mb * 1024 * 1024),
        db_outage: global.outage_budget,
        anchor,
        ..EngineOptions::default()
    };
    let project_budget = match (
        global.project_quota_units_per_min,
        global.project_quota_units_per_sec,
    ) {
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
    if let Some((budget, flag)) = project_budget
        && !(budget.units.is_finite() && budget.units > 0.0)
    {
        return Err(anyhow!("{flag} must be a positive number"));
    }
    let daily = global
        .project_daily_units
        .unwrap_or_else(|| global.quota_table.project_daily_units());
    ProjectQuota::install(repo.clone(), &gmail, project_budget.map(|(b, _)| b), daily);
    Ok(Engine {
        repo,
        gmail,
        store: blob_store(global, StoreAccess::Write).await?,
        org: global.org.clone(),
        options,
    })
}
