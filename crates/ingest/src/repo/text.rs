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

/// Removes NUL from every string inside a JSON value, in place: allocates only
/// where there is one. Ledger payloads go through it (jsonb cannot hold U+0000),
/// so a NUL in, say, a MIME parameter never fails the batch that records it.
pub(crate) fn strip_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', ""),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(map) if map.keys().any(|k| k.contains('\0')) => {
            let taken = std::mem::take(map);
            *map = taken
                .into_iter()
                .map(|(k, mut v)| {
                    strip_nul(&mut v);
                    (k.replace('\0', ""), v)
                })
                .collect();
        }
        Value::Object(map) => map.values_mut().for_each(strip_nul),
        _ => {}
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
        let mut in_place = v.clone();
        strip_nul(&mut in_place);
        assert_eq!(in_place, json_without_nul(&v));
    }
}
