//! Gmail search `q` for a time window. Gmail reads `after:2026/11/01` as midnight PST, so
//! windows are given in epoch seconds; callers still filter on internalDate for exact bounds.

/// `after:A before:B` (either part optional); None when there is no bound.
pub fn build_q(after: Option<i64>, before: Option<i64>) -> Option<String> {
    let mut parts = Vec::with_capacity(2);
    if let Some(a) = after {
        parts.push(format!("after:{a}"));
    }
    if let Some(b) = before {
        parts.push(format!("before:{b}"));
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_epoch_second_queries() {
        assert_eq!(
            build_q(Some(1_700_000_000), Some(1_700_600_000)).as_deref(),
            Some("after:1700000000 before:1700600000")
        );
        assert_eq!(build_q(Some(5), None).as_deref(), Some("after:5"));
        assert_eq!(build_q(None, Some(9)).as_deref(), Some("before:9"));
        assert_eq!(build_q(None, None), None);
    }
}
