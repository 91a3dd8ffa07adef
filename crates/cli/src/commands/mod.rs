//! One module per subcommand, each with `async fn run(self, …)`.

pub mod auth;
pub mod backfill;
pub mod export;
pub mod gc;
pub mod mailbox;
pub mod migrate;
pub mod repair;
pub mod show;
pub mod status;
pub mod sync;
pub mod verify;
pub mod worker;
