//! `mailingest`: the binary. Parses the command line, sets up logging, and maps
//! every outcome to the documented exit codes. `anyhow` lives only here.

mod args;
mod commands;
mod context;
mod exit;
mod logging;
mod metrics_server;
mod parse;
mod progress;
mod signals;
mod summary;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::exit::{Exit, UsageError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout with exit 0, usage errors to stderr with 2.
            // A usage error is one line (what was wrong, and where), without clap's
            // "For more information" trailer; a missing subcommand still shows the help.
            use clap::error::ErrorKind;
            if !err.use_stderr()
                || err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = err.print();
            } else {
                let rendered = err.render().to_string();
                let line = rendered
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("error");
                eprintln!("{line}");
            }
            return if err.use_stderr() {
                Exit::Usage.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    quiet_on_closed_stdout();
    // One rustls crypto provider for the process (aws-lc-rs; see Cargo.toml).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    logging::init(cli.global.log_format);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return Exit::Failed.into();
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(err) => {
            // One line, the whole cause chain, never a backtrace.
            eprintln!("error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                Exit::Usage.into()
            } else {
                Exit::Failed.into()
            }
        }
    }
}

/// `mailingest show … | head`: the reader went away. Commands print with
/// `println!`, which panics when stdout is a closed pipe; that is the end of
/// the output the reader wanted, not a failure, so the process ends at once
/// with status 0 and nothing on stderr, as ripgrep does. Nothing is lost:
/// a command prints after the work it reports is committed (the change feed
/// writes through its own error path and acknowledges only what it flushed).
/// Any other panic reaches the default hook as before.
fn quiet_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // std's wording: "failed printing to stdout: Broken pipe (os error 32)".
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info)
    }));
}
