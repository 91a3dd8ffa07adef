//! One Cloud project's Gmail quota shared by a fleet, through the database.
//!
//! Google limits a project as a whole (1,200,000 units a minute by default)
//! besides each user. Workers on several hosts serving many mailboxes stay
//! under a configured project budget by spending every request's units from
//! one token bucket in PostgreSQL (`shared_quota`, no new server), after each
//! mailbox's own per-user pace. Reservations queue in arrival order, and each
//! mailbox asks at most at its own per-user pace with the same concurrency
//! cap, so busy mailboxes share the budget evenly and a huge one cannot
//! starve the rest.
//!
//! The bucket is paced at 95% of the budget and holds 5% as burst, so no
//! one-second window ever exceeds the budget. Credit is taken in chunks of a
//! fiftieth of a second's budget (at least 10 units), so a process makes at
//! most about 50 reservations a second whatever the budget.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gmail::{GmailClient, SharedQuota};

use crate::repo::Repository;

/// The bucket's key: one budget per database.
pub const KEY: &str = "gmail-project";
const PACED: f64 = 0.95;
const BURST: f64 = 0.05;

/// The project budget in the database.
pub struct ProjectQuota {
    repo: Arc<dyn Repository>,
    units_per_sec: f64,
}

impl ProjectQuota {
    /// Makes every request of `gmail` spend from the project budget too.
    pub fn install(repo: Arc<dyn Repository>, gmail: &GmailClient, units_per_sec: f64) {
        let chunk = (units_per_sec / 50.0).max(10.0);
        gmail.share_quota(
            Arc::new(ProjectQuota {
                repo,
                units_per_sec,
            }),
            chunk,
        );
    }
}

#[async_trait]
impl SharedQuota for ProjectQuota {
    async fn reserve(&self, units: f64) -> Result<Duration, String> {
        let rate = self.units_per_sec * PACED;
        let left = self
            .repo
            .reserve_shared_quota(KEY, units, rate, self.units_per_sec * BURST)
            .await
            .map_err(|e| e.to_string())?;
        Ok(if left < 0.0 {
            Duration::from_secs_f64(-left / rate)
        } else {
            Duration::ZERO
        })
    }
}
