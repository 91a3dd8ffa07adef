//! How many database connections a command's pool may open, by what the
//! command does: a command names its profile instead of a number, and each
//! size says here why it is that size.

/// A command's database pool, by the work it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolProfile {
    /// Commands that run their queries one after another (migrate, mailbox,
    /// status, show, export, gc): 2, one connection at work and one to spare.
    Small,
    /// `verify` and `repair`: 4. They read a whole archive mailbox by mailbox;
    /// their concurrency is in the store and Gmail checks, not the database.
    Check,
    /// One backfill or sync run: 24. The listing's lookups of stored threads,
    /// the writer's batch transactions, the heartbeat and the project quota's
    /// reservations all use the pool at once, and none should wait on another.
    Run,
    /// The worker: 4 for each mailbox it syncs at once, plus 4 for its own
    /// claiming and scheduling (and the metrics endpoint's reads).
    Worker { concurrency: usize },
}

impl PoolProfile {
    /// The pool's maximum number of connections.
    pub fn connections(self) -> u32 {
        match self {
            PoolProfile::Small => 2,
            PoolProfile::Check => 4,
            PoolProfile::Run => 24,
            PoolProfile::Worker { concurrency } => (concurrency as u32) * 4 + 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_profile_has_the_size_its_commands_always_used() {
        assert_eq!(PoolProfile::Small.connections(), 2);
        assert_eq!(PoolProfile::Check.connections(), 4);
        assert_eq!(PoolProfile::Run.connections(), 24);
        assert_eq!(PoolProfile::Worker { concurrency: 1 }.connections(), 8);
        assert_eq!(PoolProfile::Worker { concurrency: 4 }.connections(), 20);
    }
}
