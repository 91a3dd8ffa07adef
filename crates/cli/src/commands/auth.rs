//! `mailingest auth login`: run Google's installed-app flow once and cache the token.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct Auth {
    #[command(subcommand)]
    action: AuthAction,
}

#[derive(Debug, Subcommand)]
enum AuthAction {
    /// Open the consent URL (printed), receive the code on a loopback redirect,
    /// and store the refresh token next to the credentials (mode 0600).
    Login {
        /// The Desktop-app client_secret.json from Google Cloud.
        #[arg(long)]
        credentials: PathBuf,
        /// Where to cache the token (default: beside the credentials).
        #[arg(long)]
        token_cache: Option<PathBuf>,
    },
}

impl Auth {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.action {
            AuthAction::Login {
                credentials,
                token_cache,
            } => {
                let cache = token_cache.unwrap_or_else(|| gmail::default_token_cache(&credentials));
                gmail::login(&credentials, &cache)
                    .await
                    .context("auth login")?;
                println!("token cached in {}", cache.display());
                println!("use it with: --auth installed:{}", credentials.display());
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
