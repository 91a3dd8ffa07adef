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
//! Google's project limit is per minute (1,200,000 units on both quota
//! tables), so the budget is a number of units per period (a minute; a second
//! with `--project-quota-units-per-sec`). A token bucket that holds B units and
//! refills at R a second admits at most B + P·R in any period P; with B 5% of
//! the period's budget and R 95% of it spread over the period, no period ever
//! spends more than the budget and a fleet runs at 95% of it. Credit is taken
//! in chunks of a fiftieth of a second's budget (at least 10 units), so a
//! process makes at most about 50 reservations a second whatever the budget.

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
    budget: ProjectBudget,
}

/// What the whole project may spend: `units` in any `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProjectBudget {
    pub units: f64,
    pub period: Duration,
}

impl ProjectBudget {
    pub fn per_minute(units: f64) -> Self {
        ProjectBudget {
            units,
            period: Duration::from_secs(60),
        }
    }
    pub fn per_second(units: f64) -> Self {
        ProjectBudget {
            units,
            period: Duration::from_secs(1),
        }
    }
    fn units_per_sec(&self) -> f64 {
        self.units / self.period.as_secs_f64()
    }
}

impl ProjectQuota {
    /// Makes every request of `gmail` spend from the project's `budget` too.
    pub fn install(repo: Arc<dyn Repository>, gmail: &GmailClient, budget: ProjectBudget) {
        let chunk = (budget.units_per_sec() / 50.0).max(10.0);
        gmail.share_quota(Arc::new(ProjectQuota { repo, budget }), chunk);
    }
}

#[async_trait]
impl SharedQuota for ProjectQuota {
    async fn reserve(&self, units: f64) -> Result<Duration, String> {
        let rate = self.budget.units_per_sec() * PACED;
        let left = self
            .repo
            .reserve_shared_quota(KEY, units, rate, self.budget.units * BURST)
            .await
            .map_err(|e| e.to_string())?;
        Ok(if left < 0.0 {
            Duration::from_secs_f64(-left / rate)
        } else {
            Duration::ZERO
        })
    }
}
