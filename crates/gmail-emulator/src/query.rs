//! The `q` search language subset: after:/before:, newer_than:/older_than:, in:anywhere,
//! label:, has:attachment, space-separated conjunction. Anything else is rejected.

use chrono::{FixedOffset, NaiveDate, TimeZone};

/// A compiled `q`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Query {
    /// internalDate (ms) must be >= this.
    pub after_ms: Option<i64>,
    /// internalDate (ms) must be < this.
    pub before_ms: Option<i64>,
    /// Label names/ids as written after `label:`.
    pub labels: Vec<String>,
    pub has_attachment: bool,
    pub anywhere: bool,
}

/// Parse `q` relative to `now_ms`. Errors carry the message for a 400 invalidArgument.
pub(crate) fn parse(q: &str, now_ms: i64) -> Result<Query, String> {
    let mut out = Query::default();
    for token in tokens(q)? {
        let (op, value) = token.split_once(':').ok_or_else(|| {
            format!("Unsupported search term {token:?} (only operators are supported)")
        })?;
        let value = value.trim_matches('"');
        if value.is_empty() {
            return Err(format!("Missing value for operator {op:?}"));
        }
        match op.to_ascii_lowercase().as_str() {
            "after" => {
                let t = date_ms(value)?;
                out.after_ms = Some(out.after_ms.map_or(t, |a: i64| a.max(t)));
            }
            "before" => {
                let t = date_ms(value)?;
                out.before_ms = Some(out.before_ms.map_or(t, |b: i64| b.min(t)));
            }
            "newer_than" => {
                let t = now_ms - relative_ms(value)?;
                out.after_ms = Some(out.after_ms.map_or(t, |a: i64| a.max(t)));
            }
            "older_than" => {
                let t = now_ms - relative_ms(value)?;
                out.before_ms = Some(out.before_ms.map_or(t, |b: i64| b.min(t)));
            }
            "in" if value.eq_ignore_ascii_case("anywhere") => out.anywhere = true,
            "label" => out.labels.push(value.to_string()),
            "has" if value.eq_ignore_ascii_case("attachment") => out.has_attachment = true,
            _ => return Err(format!("Unsupported search operator {op}:{value}")),
        }
    }
    Ok(out)
}

/// Split on whitespace, keeping double-quoted values together; reject syntax we do not model.
fn tokens(q: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err("Unbalanced quote in query".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    for t in &out {
        if t == "OR" || t == "AND" || t.starts_with('-') || t.starts_with('{') || t.starts_with('(')
        {
            return Err(format!("Unsupported search syntax {t:?}"));
        }
    }
    Ok(out)
}

/// Epoch seconds, or yyyy/mm/dd read as midnight PST (as Gmail does).
fn date_ms(v: &str) -> Result<i64, String> {
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<i64>()
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .ok_or_else(|| format!("Invalid date {v:?}"));
    }
    let date = NaiveDate::parse_from_str(v, "%Y/%m/%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%Y-%m-%d"))
        .map_err(|_| format!("Invalid date {v:?}"))?;
    let pst = FixedOffset::west_opt(8 * 3600).ok_or("bad offset")?;
    let midnight = date.and_hms_opt(0, 0, 0).ok_or("bad date")?;
    pst.from_local_datetime(&midnight)
        .single()
        .map(|d| d.timestamp_millis())
        .ok_or_else(|| format!("Invalid date {v:?}"))
}

/// `Nd`, `Nm`, `Ny` → milliseconds.
fn relative_ms(v: &str) -> Result<i64, String> {
    // Split before the last char (not byte): the unit may be any character on bad input.
    let cut = v.char_indices().last().map_or(0, |(i, _)| i);
    let (num, unit) = v.split_at(cut);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("Invalid relative time {v:?}"))?;
    let day = 86_400_000i64;
    let per = match unit.to_ascii_lowercase().as_str() {
        "d" => day,
        "m" => 30 * day,
        "y" => 365 * day,
        _ => return Err(format!("Invalid relative time unit in {v:?}")),
    };
    n.checked_mul(per)
        .ok_or_else(|| format!("Relative time out of range {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supported_operators() {
        let q = parse(
            "after:1700000000 before:2024/01/02 label:\"My Label\" has:attachment in:anywhere",
            0,
        )
        .expect("valid");
        assert_eq!(q.after_ms, Some(1_700_000_000_000));
        // 2024-01-02 00:00 PST = 08:00 UTC.
        assert_eq!(q.before_ms, Some(1_704_182_400_000));
        assert_eq!(q.labels, vec!["My Label".to_string()]);
        assert!(q.has_attachment && q.anywhere);
    }

    #[test]
    fn relative_times() {
        let q = parse("newer_than:2d older_than:1d", 10 * 86_400_000).expect("valid");
        assert_eq!(q.after_ms, Some(8 * 86_400_000));
        assert_eq!(q.before_ms, Some(9 * 86_400_000));
    }

    #[test]
    fn rejects_unsupported() {
        for q in [
            "from:bob",
            "subject:x",
            "hello",
            "-label:x",
            "a OR b",
            "is:unread",
            "newer_than:3w",
            "after:",
            "newer_than:3é",
            "older_than:é",
            "after:99999999999999999999",
        ] {
            assert!(parse(q, 0).is_err(), "{q} should be rejected");
        }
    }
}
