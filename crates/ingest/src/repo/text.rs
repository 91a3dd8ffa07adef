//! Text sanitising at the database boundary.
//!
//! PostgreSQL `text` and `jsonb` cannot hold U+0000, and mail happily contains
//! it (broken encoders, binary pasted into headers). Dropping the NUL is the
//! only lossless-enough choice: the raw message is archived byte for byte in
//! the store, so the column is a convenience copy, never the record.

use std::borrow::Cow;

pub(crate) fn without_nul(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', ""))
    } else {
        Cow::Borrowed(s)
    }
}

/// Removes NUL from every string inside a JSON value.
pub(crate) fn json_without_nul(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(without_nul(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(json_without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (without_nul(k).into_owned(), json_without_nul(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_removed_everywhere() {
        assert_eq!(without_nul("a\0b\0"), "ab");
        assert!(matches!(without_nul("clean"), Cow::Borrowed(_)));
        let v = serde_json::json!({"k\0": ["x\0y", 1, {"n": "\0"}]});
        assert_eq!(
            json_without_nul(&v),
            serde_json::json!({"k": ["xy", 1, {"n": ""}]})
        );
    }
}
