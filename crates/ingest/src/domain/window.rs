//! The time window of a backfill: `[since, until)` on Gmail's internalDate.
//!
//! Gmail's `q` reads dates as midnight PST, so the query uses epoch seconds
//! (`after:A before:B`) and the engine then filters on internalDate (ms) for
//! exact bounds. Bounds are whole seconds so the query and the filter agree.

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;

/// A window that cannot be: empty, inverted, or outside the supported dates.
/// The engine reports it as `EngineError::InvalidWindow`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid window: {0}")]
pub struct InvalidWindow(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Window {
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Self, InvalidWindow> {
        let second = TimeDelta::seconds(1);
        // Truncation only fails outside the nanosecond-timestamp range.
        let truncate = |t: DateTime<Utc>| {
            t.duration_trunc(second).map_err(|_| {
                InvalidWindow(format!(
                    "{} is outside the supported dates ({} to {})",
                    t.to_rfc3339(),
                    earliest().to_rfc3339(),
                    latest().to_rfc3339()
                ))
            })
        };
        let since = truncate(since)?;
        // Round `until` up so the window never shrinks below what was asked.
        let until_trunc = truncate(until)?;
        let until = if until_trunc < until {
            until_trunc + second
        } else {
            until_trunc
        };
        if since >= until {
            return Err(InvalidWindow(format!(
                "since {} is not before until {}",
                since.to_rfc3339(),
                until.to_rfc3339()
            )));
        }
        Ok(Window { since, until })
    }

    /// The last `days` days up to `now`.
    ///
    /// Checked arithmetic: a start before the earliest supported date (about
    /// 127,000 days back today; the command line accepts up to `u32::MAX`) is
    /// an `InvalidWindow`, never an overflow panic.
    pub fn last_days(days: u32, now: DateTime<Utc>) -> Result<Self, InvalidWindow> {
        if days == 0 {
            return Err(InvalidWindow("--days must be at least 1".into()));
        }
        let since = TimeDelta::try_days(i64::from(days))
            .and_then(|span| now.checked_sub_signed(span))
            .filter(|since| *since >= earliest())
            .ok_or_else(|| {
                let max_days = (now - earliest()).num_days();
                InvalidWindow(format!(
                    "{days} days back from {} is too far: at most {max_days} days \
                     (the earliest supported date is {})",
                    now.to_rfc3339_opts(SecondsFormat::Secs, true),
                    earliest().to_rfc3339_opts(SecondsFormat::Secs, true)
                ))
            })?;
        Window::new(since, now)
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

/// The earliest bound a window can have: the first whole second of the
/// nanosecond-timestamp range (1677-09-21), which `duration_trunc` needs.
fn earliest() -> DateTime<Utc> {
    let min = DateTime::from_timestamp_nanos(i64::MIN);
    DateTime::from_timestamp(min.timestamp() + 1, 0).unwrap_or(min)
}

/// The last whole second of the nanosecond-timestamp range (2262-04-11).
fn latest() -> DateTime<Utc> {
    let max = DateTime::from_timestamp_nanos(i64::MAX);
    DateTime::from_timestamp(max.timestamp(), 0).unwrap_or(max)
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
        assert!(Window::new(t, t - TimeDelta::seconds(5)).is_err());
        assert!(Window::last_days(0, t).is_err());
    }

    fn invalid_window_message(result: Result<Window, InvalidWindow>) -> String {
        match result {
            Err(InvalidWindow(message)) => message,
            other => panic!("expected InvalidWindow, got {other:?}"),
        }
    }

    #[test]
    fn days_beyond_the_supported_range_are_invalid_not_a_panic() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        // u32::MAX days is far outside chrono's range: `now - days` used to panic.
        let message = invalid_window_message(Window::last_days(u32::MAX, now));
        assert!(message.contains("4294967295 days"), "{message}");
        assert!(message.contains("too far"), "{message}");
        // Inside chrono's range but before the earliest supported date.
        let message = invalid_window_message(Window::last_days(200_000, now));
        assert!(message.contains("1677-09-21"), "{message}");
        // The most the message promises still works; one more day does not.
        let max_days = (now - earliest()).num_days();
        assert!(
            message.contains(&format!("at most {max_days} days")),
            "{message}"
        );
        let max = u32::try_from(max_days).unwrap();
        let w = Window::last_days(max, now).expect("the stated maximum is accepted");
        assert_eq!(w.until, now);
        assert!(w.since >= earliest());
        invalid_window_message(Window::last_days(max + 1, now));
        // And ordinary values are unaffected.
        let w = Window::last_days(7, now).unwrap();
        assert_eq!(w.before_secs() - w.after_secs(), 7 * 86_400);
    }

    #[test]
    fn bounds_outside_the_supported_dates_are_invalid_windows() {
        let before = Utc.with_ymd_and_hms(1500, 1, 1, 0, 0, 0).unwrap();
        let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let message = invalid_window_message(Window::new(before, t));
        assert!(message.contains("1500-01-01"), "{message}");
        assert!(message.contains("supported dates"), "{message}");
        let after = Utc.with_ymd_and_hms(3000, 1, 1, 0, 0, 0).unwrap();
        invalid_window_message(Window::new(t, after));
        // The extreme bounds themselves are accepted.
        let w = Window::new(earliest(), latest()).expect("full supported range");
        assert_eq!((w.since, w.until), (earliest(), latest()));
    }
}
