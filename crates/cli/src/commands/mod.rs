//! One module per subcommand, each with `async fn run(self, …)`.

pub mod backfill;
pub mod migrate;
