//! The time window of a backfill: `[since, until)` on Gmail's internalDate.
//!
//! Gmail's `q` reads dates as midnight PST, so the query uses epoch seconds
//! (`after:A before:B`) and the engine then filters on internalDate (ms) for
//! exact bounds. Bounds are whole seconds so the query and the filter agree.

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use serde::Serialize;

use super::EngineError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Window {
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Self, EngineError> {
        let second = TimeDelta::seconds(1);
        let since = since
            .duration_trunc(second)
            .map_err(|e| EngineError::InvalidWindow(e.to_string()))?;
        // Round `until` up so the window never shrinks below what was asked.
        let until_trunc = until
            .duration_trunc(second)
            .map_err(|e| EngineError::InvalidWindow(e.to_string()))?;
        let until = if until_trunc < until {
            until_trunc + second
        } else {
            until_trunc
        };
        if since >= until {
            return Err(EngineError::InvalidWindow(format!(
                "since {} is not before until {}",
                since.to_rfc3339(),
                until.to_rfc3339()
            )));
        }
        Ok(Window { since, until })
    }

    /// The last `days` days up to `now`.
    pub fn last_days(days: u32, now: DateTime<Utc>) -> Result<Self, EngineError> {
        if days == 0 {
            return Err(EngineError::InvalidWindow(
                "--days must be at least 1".into(),
            ));
        }
        Window::new(now - Duration::days(i64::from(days)), now)
    }

    pub fn after_secs(&self) -> i64 {
        self.since.timestamp()
    }

    pub fn before_secs(&self) -> i64 {
        self.until.timestamp()
    }

    /// Whether an internalDate (ms since the epoch) falls inside the window.
    pub fn contains_ms(&self, internal_date_ms: i64) -> bool {
        internal_date_ms >= self.since.timestamp_millis()
            && internal_date_ms < self.until.timestamp_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn bounds_are_whole_seconds_and_half_open() {
        let since = Utc.timestamp_millis_opt(1_700_000_000_500).unwrap();
        let until = Utc.timestamp_millis_opt(1_700_000_100_200).unwrap();
        let w = Window::new(since, until).unwrap();
        assert_eq!(
            (w.after_secs(), w.before_secs()),
            (1_700_000_000, 1_700_000_101)
        );
        assert!(w.contains_ms(1_700_000_000_000));
        assert!(w.contains_ms(1_700_000_100_999));
        assert!(!w.contains_ms(1_700_000_101_000));
        assert!(!w.contains_ms(1_699_999_999_999));
    }

    #[test]
    fn empty_or_inverted_windows_are_rejected() {
        let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert!(Window::new(t, t).is_err());
        assert!(Window::new(t, t - Duration::seconds(5)).is_err());
        assert!(Window::last_days(0, t).is_err());
    }
}
