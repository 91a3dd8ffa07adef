//! `mailingest migrate`: apply the embedded schema.

use std::process::ExitCode;

use clap::Args;

use crate::context::{Context, PoolProfile};

#[derive(Debug, Args)]
pub struct Migrate {}

impl Migrate {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        ctx.database(PoolProfile::Small).await?;
        let applied = ctx.database_target()?.migrations();
        println!("schema up to date ({applied} migrations)");
        Ok(ExitCode::SUCCESS)
    }
}
