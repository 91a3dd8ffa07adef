//! The quota day: Google resets a Cloud project's daily quotas at midnight Pacific time
//! (America/Los_Angeles), so the daily threshold of the quota tables counts units per Pacific
//! calendar day, and a fleet that reached it waits for the next Pacific midnight.
//!
//! Without a time-zone database (chrono-tz) this uses the US daylight-saving rule in force
//! since 2007: UTC-7 from the second Sunday of March 02:00 local to the first Sunday of
//! November 02:00 local, UTC-8 otherwise; wrong only if the rule changes. The emulator keeps
//! the same rule in a copy of its own (it depends on none of our crates).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

/// The n-th (1-based) Sunday of a month.
fn nth_sunday(year: i32, month: u32, n: u8) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n).unwrap_or(NaiveDate::MIN)
}

/// Pacific offset from UTC in hours (-7 in daylight time, -8 otherwise).
fn offset_hours(at: DateTime<Utc>) -> i64 {
    let year = at.year();
    // 02:00 PST = 10:00 UTC; 02:00 PDT = 09:00 UTC.
    let starts = Utc.from_utc_datetime(
        &nth_sunday(year, 3, 2)
            .and_hms_opt(10, 0, 0)
            .unwrap_or_default(),
    );
    let ends = Utc.from_utc_datetime(
        &nth_sunday(year, 11, 1)
            .and_hms_opt(9, 0, 0)
            .unwrap_or_default(),
    );
    if at >= starts && at < ends { -7 } else { -8 }
}

/// The calendar date in Los Angeles at `at`.
pub fn pacific_date(at: DateTime<Utc>) -> NaiveDate {
    (at + Duration::hours(offset_hours(at))).date_naive()
}

/// When the quota day holding `at` began: the last midnight in Los Angeles, in UTC.
pub fn pacific_day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let local = pacific_date(at).and_hms_opt(0, 0, 0).unwrap_or_default();
    // Midnight is never inside a transition (they happen at 02:00).
    let probe = Utc.from_utc_datetime(&(local + Duration::hours(8)));
    Utc.from_utc_datetime(&(local - Duration::hours(offset_hours(probe))))
}

/// Time from `at` to the next midnight in Los Angeles.
pub fn until_pacific_midnight(at: DateTime<Utc>) -> std::time::Duration {
    let next = pacific_date(at).succ_opt().unwrap_or(NaiveDate::MAX);
    let local = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Midnight is never inside a transition (they happen at 02:00), so the offset
    // at "midnight read as PST" is the offset at midnight.
    let probe = Utc.from_utc_datetime(&(local + Duration::hours(8)));
    let midnight = Utc.from_utc_datetime(&(local - Duration::hours(offset_hours(probe))));
    (midnight - at).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    #[test]
    fn winter_is_utc_minus_8() {
        let at = utc("2026-01-15T07:59:00Z");
        assert_eq!(
            pacific_date(at),
            NaiveDate::from_ymd_opt(2026, 1, 14).unwrap_or_default()
        );
        assert_eq!(until_pacific_midnight(at).as_secs(), 60);
    }

    #[test]
    fn summer_is_utc_minus_7() {
        let at = utc("2026-07-01T06:59:30Z");
        assert_eq!(
            pacific_date(at),
            NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default()
        );
        assert_eq!(until_pacific_midnight(at).as_secs(), 30);
    }

    #[test]
    fn a_day_starts_at_the_last_pacific_midnight() {
        assert_eq!(
            pacific_day_start(utc("2026-01-15T07:59:00Z")),
            utc("2026-01-14T08:00:00Z")
        );
        assert_eq!(
            pacific_day_start(utc("2026-07-01T07:00:00Z")),
            utc("2026-07-01T07:00:00Z")
        );
    }

    #[test]
    fn transition_days() {
        // 2026: DST starts Sunday 8 March, ends Sunday 1 November.
        assert_eq!(offset_hours(utc("2026-03-08T09:59:59Z")), -8);
        assert_eq!(offset_hours(utc("2026-03-08T10:00:00Z")), -7);
        assert_eq!(offset_hours(utc("2026-11-01T08:59:59Z")), -7);
        assert_eq!(offset_hours(utc("2026-11-01T09:00:00Z")), -8);
        // The day DST ends is 25 hours long: midnight PDT to midnight PST.
        let start = utc("2026-11-01T07:00:00Z");
        assert_eq!(until_pacific_midnight(start).as_secs(), 25 * 3600);
        // The day it starts is 23 hours long.
        let start = utc("2026-03-08T08:00:00Z");
        assert_eq!(until_pacific_midnight(start).as_secs(), 23 * 3600);
    }
}
