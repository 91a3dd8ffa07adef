//! The value parsers clap calls for flag values (`value_parser = …`): times,
//! spans and durations, ledger heads. In one module because several commands
//! share them; each returns clap's `String` error, printed as the usage error.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ingest::gc::DEFAULT_GRACE;

/// Below this, an object a run has just written and not yet recorded could look like garbage.
const MIN_GRACE: Duration = Duration::from_secs(3600);

/// `--org`: one segment of the store prefix, so one org's objects can never
/// land inside another's (`acme/sha256/aa` would be org `acme`'s key space).
/// The store's own prefix rules, plus: exactly one segment, not empty.
pub fn parse_org(s: &str) -> Result<String, String> {
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+' | '=');
    if s.is_empty() || s.len() > 128 || s.starts_with('.') || !s.chars().all(allowed) {
        return Err(format!(
            "'{}' is not an org id: it names the org's store prefix, so it is one path segment of \
             1 to 128 ASCII letters, digits and - _ . @ + =, not starting with '.'",
            s.escape_debug()
        ));
    }
    Ok(s.to_owned())
}

/// Accepts RFC 3339, a bare date (midnight UTC) or epoch seconds.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(Utc.from_utc_datetime(&t));
    }
    if let Ok(secs) = s.parse::<i64>()
        && let Some(t) = Utc.timestamp_opt(secs, 0).single()
    {
        return Ok(t);
    }
    Err(format!(
        "'{s}' is not a time (use RFC 3339, YYYY-MM-DD or epoch seconds)"
    ))
}

/// Accepts `90`, `90s`, `5m`, `1h`, `7d`; positive.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_span(s)?;
    if d.is_zero() {
        return Err("a duration must be positive".into());
    }
    Ok(d)
}

/// [`parse_duration`], zero allowed (`0s`: "not at all").
pub fn parse_span(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 30s, 5m, 1h)"))?;
    let per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("'{s}': unit must be s, m, h or d")),
    };
    n.checked_mul(per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{s}' is too long"))
}

/// `worker --verify-every`: a duration, or `off` (`None`).
#[derive(Debug, Clone, Copy)]
pub struct VerifyEvery(pub Option<Duration>);

pub fn parse_verify_every(s: &str) -> Result<VerifyEvery, String> {
    if s == "off" {
        return Ok(VerifyEvery(None));
    }
    parse_duration(s).map(|d| VerifyEvery(Some(d)))
}

/// `gc --purge-deleted-older-than`: a span, but never zero, which would purge
/// mail deleted a moment ago.
pub fn parse_purge_age(s: &str) -> Result<Duration, String> {
    let age = parse_span(s)?;
    if age.is_zero() {
        return Err("'0' would purge mail deleted a moment ago; give an age such as 90d".into());
    }
    Ok(age)
}

/// `gc --grace`: a span of at least [`MIN_GRACE`].
pub fn parse_grace(s: &str) -> Result<Duration, String> {
    let grace = parse_span(s)?;
    if grace < MIN_GRACE {
        return Err(format!(
            "'{s}' is shorter than 1h: a run in flight may have written an object it has not \
             recorded yet (the default is {}h)",
            DEFAULT_GRACE.as_secs() / 3600
        ));
    }
    Ok(grace)
}

/// `verify --expect-head SEQ:HASH`: a positive seq and 64 lowercase hex digits.
pub fn parse_head(text: &str) -> Result<ledger::ChainHead, String> {
    let (seq, hash) = text
        .split_once(':')
        .ok_or("expected SEQ:HASH, as a run summary's ledger head prints it")?;
    let seq: i64 = seq
        .parse()
        .ok()
        .filter(|s| *s >= 1)
        .ok_or("SEQ must be a positive integer")?;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("HASH must be 64 lowercase hex digits".into());
    }
    Ok(ledger::ChainHead {
        seq,
        hash: hash.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_org_is_one_safe_segment_of_the_store_prefix() {
        for good in ["default", "acme", "org-a", "acme.example.com", "a_b+c=d@e"] {
            assert_eq!(parse_org(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "a/sha256/aa",
            "acme/",
            "..",
            ".trash",
            "a b",
            "ümlaut",
            "a\nb",
        ] {
            assert!(parse_org(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_org(&"a".repeat(129)).is_err());
    }

    #[test]
    fn spans_take_a_unit_and_durations_are_positive() {
        assert_eq!(parse_span("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_span("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_span("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_span("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_span("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_span("0s"), Ok(Duration::ZERO));
        assert_eq!(
            parse_span("5q"),
            Err("'5q': unit must be s, m, h or d".to_owned())
        );
        assert_eq!(
            parse_span("m"),
            Err("'m' is not a duration (e.g. 30s, 5m, 1h)".to_owned())
        );
        assert_eq!(
            parse_duration("0"),
            Err("a duration must be positive".to_owned())
        );
        assert!(parse_span("99999999999999999d").is_err());
        assert!(matches!(parse_verify_every("off"), Ok(VerifyEvery(None))));
        assert!(matches!(
            parse_verify_every("24h"),
            Ok(VerifyEvery(Some(d))) if d == Duration::from_secs(86400)
        ));
    }

    #[test]
    fn times_are_rfc3339_dates_or_epoch_seconds() {
        let midnight = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).single();
        assert_eq!(parse_time("2026-01-02").ok(), midnight);
        assert_eq!(parse_time("2026-01-02T00:00:00Z").ok(), midnight);
        assert_eq!(parse_time("2026-01-02T01:00:00+01:00").ok(), midnight);
        assert_eq!(
            parse_time("1767312000").ok(),
            midnight,
            "epoch seconds of 2026-01-02"
        );
        assert_eq!(
            parse_time("yesterday"),
            Err("'yesterday' is not a time (use RFC 3339, YYYY-MM-DD or epoch seconds)".to_owned())
        );
    }

    #[test]
    fn gc_refuses_a_short_grace_and_a_zero_age() {
        assert_eq!(parse_grace("1h"), Ok(MIN_GRACE));
        assert!(parse_grace("59m").is_err_and(|e| e.starts_with("'59m' is shorter than 1h")));
        assert_eq!(parse_purge_age("90d"), Ok(Duration::from_secs(90 * 86400)));
        assert!(parse_purge_age("0").is_err());
    }

    #[test]
    fn a_head_is_a_positive_seq_and_64_lowercase_hex_digits() {
        let hash = "a".repeat(64);
        let head = parse_head(&format!("7:{hash}")).expect("head");
        assert_eq!((head.seq, head.hash), (7, hash.clone()));
        assert!(parse_head(&format!("0:{hash}")).is_err());
        assert!(parse_head(&format!("7:{}", "A".repeat(64))).is_err());
        assert!(parse_head("7").is_err());
    }
}
