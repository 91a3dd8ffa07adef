//! `mailingest migrate`: apply the embedded schema.

use std::process::ExitCode;

use clap::Args;

use crate::args::GlobalArgs;
use crate::context;

#[derive(Debug, Args)]
pub struct Migrate {}

impl Migrate {
    pub async fn run(self, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
        context::database(global, 2).await?;
        let applied = ingest::schema::MIGRATOR.iter().count();
        println!("schema up to date ({applied} migrations)");
        Ok(ExitCode::SUCCESS)
    }
}
