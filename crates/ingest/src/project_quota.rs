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
//!
//! The day has a budget too: the quota table's daily threshold (80,000,000
//! units on the 2026 table), or `--project-daily-units`. Every process adds
//! what it is about to spend to the quota day's row (`project_quota_days`,
//! the Pacific calendar day: Google resets daily quotas at midnight Pacific
//! time) before spending it, in chunks, and a chunk that would carry the day
//! past the budget is refused: no request starts, the runs in flight stop
//! (their committed batches stay; what they fetched but had not committed is
//! fetched again later), and the worker schedules the mailboxes after midnight
//! Pacific. The budget is therefore never crossed, at the price of at most
//! one unspent chunk per process at the end of the day.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gmail::{GmailClient, SharedQuota, SharedQuotaError};

use crate::repo::Repository;

/// The bucket's key: one budget per database.
pub const KEY: &str = "gmail-project";
const PACED: f64 = 0.95;
const BURST: f64 = 0.05;

/// The project budget in the database.
pub struct ProjectQuota {
    repo: Arc<dyn Repository>,
    budget: Option<ProjectBudget>,
    daily_units: u64,
}

/// Units reserved against the day at once when only the day is budgeted: one
/// statement per 250 messages.get on the 2026 table.
const DAILY_CHUNK: f64 = 5_000.0;

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
    /// Makes every request of `gmail` spend from the project's day of
    /// `daily_units` too, and from its `budget` per period when one is given.
    pub fn install(
        repo: Arc<dyn Repository>,
        gmail: &GmailClient,
        budget: Option<ProjectBudget>,
        daily_units: u64,
    ) {
        // A chunk is at most a hundredth of the day, so a small day (a test's,
        // a cautious operator's) is not spent by one process's first chunk.
        let daily_chunk = DAILY_CHUNK.min((daily_units as f64 / 100.0).max(20.0));
        let chunk = match budget {
            Some(b) => (b.units_per_sec() / 50.0).max(10.0).min(daily_chunk),
            None => daily_chunk,
        };
        gmail.share_quota(
            Arc::new(ProjectQuota {
                repo,
                budget,
                daily_units,
            }),
            chunk,
        );
    }

    /// Units the project spent (reserved) on the current quota day.
    pub async fn spent_today(repo: &dyn Repository) -> Result<i64, crate::repo::RepoError> {
        repo.daily_units(KEY, gmail::pacific_date(chrono::Utc::now()))
            .await
    }
}

#[async_trait]
impl SharedQuota for ProjectQuota {
    async fn reserve(&self, units: f64) -> Result<Duration, SharedQuotaError> {
        let now = chrono::Utc::now();
        let limit = i64::try_from(self.daily_units).unwrap_or(i64::MAX);
        let granted = self
            .repo
            .reserve_daily_units(KEY, gmail::pacific_date(now), units.ceil() as i64, limit)
            .await
            .map_err(|e| SharedQuotaError::Unreachable(e.to_string()))?;
        if granted.is_none() {
            return Err(SharedQuotaError::DayExhausted {
                limit: self.daily_units,
                resets_in: gmail::until_pacific_midnight(now),
            });
        }
        let Some(budget) = self.budget else {
            return Ok(Duration::ZERO);
        };
        let rate = budget.units_per_sec() * PACED;
        let left = self
            .repo
            .reserve_shared_quota(KEY, units, rate, budget.units * BURST)
            .await
            .map_err(|e| SharedQuotaError::Unreachable(e.to_string()))?;
        Ok(if left < 0.0 {
            Duration::from_secs_f64(-left / rate)
        } else {
            Duration::ZERO
        })
    }
}
