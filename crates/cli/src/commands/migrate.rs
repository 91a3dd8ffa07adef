//! `mailingest migrate`: apply the embedded schema.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::args::GlobalArgs;
use crate::db;

#[derive(Debug, Args)]
pub struct Migrate {}

impl Migrate {
    pub async fn run(self, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
        let pool = db::connect(global.database_url()?, 2).await?;
        ingest::schema::migrate(&pool)
            .await
            .context("applying migrations")?;
        let applied = ingest::schema::MIGRATOR.iter().count();
        println!("schema up to date ({applied} migrations)");
        Ok(ExitCode::SUCCESS)
    }
}
