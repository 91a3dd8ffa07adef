//! The `gmail-emulator` binary: `gmail-emulator serve …` prints the bound URL as the
//! first stdout line and serves until SIGTERM/SIGINT.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use gmail_emulator::{Emulator, EmulatorConfig, Faults, Quota, QuotaTable};

#[derive(Parser)]
#[command(name = "gmail-emulator", about = "A Gmail REST v1 API emulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the emulator.
    Serve(Serve),
}

#[derive(clap::Args)]
struct Serve {
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 5000)]
    messages: usize,
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Mailbox addresses (repeat); the first is the default.
    #[arg(long = "mailbox")]
    mailboxes: Vec<String>,
    /// Directory of .eml files or an mbox file, imported into the default mailbox.
    #[arg(long)]
    import: Option<PathBuf>,
    /// token=mailbox mapping for `me` (repeat).
    #[arg(long = "token")]
    tokens: Vec<String>,
    /// Leave out the few 1.5–2.6 MB attachments.
    #[arg(long)]
    no_large_attachments: bool,
    /// Percent of messages with an attachment, inline image or forwarded
    /// message (default: the generator's own mix, about 38%).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    attachment_percent: Option<u8>,
    /// Quota table requests are charged by: 2025 (older projects) or 2026
    /// (projects created since 2026-05-01). Every limit counts in its units.
    #[arg(long, default_value_t = QuotaTable::Y2026)]
    quota_table: QuotaTable,
    /// Quota units per second per user (fixed one-second window).
    #[arg(long)]
    quota_per_sec: Option<u32>,
    /// Quota units per minute per user (sliding 60-second window).
    #[arg(long)]
    quota_per_min: Option<u32>,
    #[arg(long)]
    max_concurrent: Option<u32>,
    /// Quota units per second for all mailboxes together (the project's limit).
    #[arg(long)]
    project_quota_per_sec: Option<u32>,
    /// Quota units per minute for all mailboxes together (sliding 60-second window).
    #[arg(long)]
    project_quota_per_min: Option<u32>,
    /// Quota units per Pacific day for all mailboxes together. Past it requests
    /// are still served and the excess is counted, unless --enforce-daily.
    #[arg(long)]
    project_daily_units: Option<u64>,
    /// Refuse requests past --project-daily-units with 403 dailyLimitExceeded.
    #[arg(long, requires = "project_daily_units")]
    enforce_daily: bool,
    /// Answer quota exhaustion with 403 userRateLimitExceeded instead of 429.
    #[arg(long)]
    quota_403: bool,
    /// Rate of 500 backendError responses.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Rate of 503 responses.
    #[arg(long, default_value_t = 0.0)]
    unavailable_rate: f64,
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[arg(long, default_value_t = 0)]
    latency_jitter_ms: u64,
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    vanish_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    empty_history_page_rate: f64,
    /// Parse and encode every message before printing the URL (benchmarks: keeps
    /// the emulator's first-touch work out of the measured run).
    #[arg(long)]
    warm: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve(s) = Cli::parse().command;
    let mut tokens = std::collections::HashMap::new();
    for t in &s.tokens {
        match t.split_once('=') {
            Some((tok, mb)) => {
                tokens.insert(tok.to_string(), mb.to_string());
            }
            None => {
                eprintln!("--token expects TOKEN=MAILBOX, got {t:?}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let mut config = EmulatorConfig {
        addr: s.addr,
        seed: s.seed,
        messages: s.messages,
        days: s.days,
        import: s.import,
        tokens,
        large_attachments: !s.no_large_attachments,
        attachment_percent: s.attachment_percent,
        faults: Faults {
            error_rate: s.fault_rate,
            unavailable_rate: s.unavailable_rate,
            latency_ms: s.latency_ms,
            latency_jitter_ms: s.latency_jitter_ms,
            drop_rate: s.drop_rate,
            vanish_rate: s.vanish_rate,
            empty_history_page_rate: s.empty_history_page_rate,
            // Poison ids are set through the control API (PUT /control/faults).
            failing_messages: Default::default(),
        },
        quota: Quota {
            per_second: s.quota_per_sec,
            per_minute: s.quota_per_min,
            max_concurrent: s.max_concurrent,
            use_403: s.quota_403,
            project_per_second: s.project_quota_per_sec,
            table: s.quota_table,
            project_per_minute: s.project_quota_per_min,
            project_daily: s.project_daily_units,
            enforce_daily: s.enforce_daily,
        },
        ..EmulatorConfig::default()
    };
    if !s.mailboxes.is_empty() {
        config.mailboxes = s.mailboxes;
    }
    let emu = match Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gmail-emulator: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if s.warm {
        emu.warm_caches().await;
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", emu.url());
    let _ = out.flush();
    wait_for_signal().await;
    emu.shutdown().await;
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
