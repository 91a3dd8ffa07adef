//! Canonical JSON: the one byte string a payload hashes as, whether it is the
//! `serde_json::Value` handed to `append` or the jsonb Postgres hands back to `verify`.
//!
//! jsonb does not keep the text it was given: it reorders object keys, drops duplicate keys
//! and rewrites numbers (`1e2` → `100`, `1.50` stays `1.50` but `-0` becomes `0`). So the
//! canonical form depends only on the JSON *value*:
//!
//! * objects: keys sorted by their UTF-8 bytes, `{"k":v,…}` with no whitespace;
//! * arrays: `[v,…]`; `null`, `true`, `false` as themselves;
//! * strings: `"` + UTF-8 with only `"` → `\"`, `\` → `\\` and U+0001…U+001F → `\u00xx`
//!   (lowercase hex) escaped; U+0000 is refused (jsonb cannot store it);
//! * numbers: by exact decimal value. The decimal text is normalised to
//!   `[-]digits` when the value is an integer of at most 21 digits, otherwise
//!   `[-]digits` `e` `exponent` with no leading/trailing zeros in `digits`; zero is `0`.
//!   Floats are first written as their shortest round-trip decimal, which is also the text
//!   `append` sends to Postgres, and read back with serde_json's `float_roundtrip`
//!   parser, so both sides see the same decimal value.
//!
//! Nesting deeper than [`MAX_PAYLOAD_DEPTH`] is refused: serde_json refuses to parse more
//! than 128 levels, and an event that cannot be read back cannot be verified.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Deepest payload nesting accepted (levels of arrays/objects).
pub const MAX_PAYLOAD_DEPTH: usize = 64;

/// Why a payload has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadProblem {
    /// A string or key contains U+0000, which Postgres jsonb rejects.
    NulCharacter,
    /// Nested deeper than [`MAX_PAYLOAD_DEPTH`].
    TooDeep,
}

impl std::fmt::Display for PayloadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadProblem::NulCharacter => {
                f.write_str("payload contains U+0000 (jsonb cannot store it)")
            }
            PayloadProblem::TooDeep => {
                write!(f, "payload nests deeper than {MAX_PAYLOAD_DEPTH} levels")
            }
        }
    }
}

/// The canonical JSON text of `value` (valid JSON itself; `append` stores exactly this).
pub fn canonical_json(value: &Value) -> Result<String, PayloadProblem> {
    let mut out = String::with_capacity(128);
    write_value(value, 0, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, depth: usize, out: &mut String) -> Result<(), PayloadProblem> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out)?,
        Value::Array(items) => {
            if depth >= MAX_PAYLOAD_DEPTH {
                return Err(PayloadProblem::TooDeep);
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, depth + 1, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            if depth >= MAX_PAYLOAD_DEPTH {
                return Err(PayloadProblem::TooDeep);
            }
            // serde_json's Map is sorted unless some crate in the build turns on
            // `preserve_order`; sort explicitly so that cannot change a hash.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out)?;
                out.push(':');
                write_value(item, depth + 1, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut String) -> Result<(), PayloadProblem> {
    out.push('"');
    for c in s.chars() {
        match c {
            '\0' => return Err(PayloadProblem::NulCharacter),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}

fn write_number(n: &Number, out: &mut String) {
    // Display gives itoa for integers and the shortest round-trip decimal for floats.
    let text = n.to_string();
    normalise_decimal(&text, out);
}

/// Normalise a JSON number's text to the canonical form described in the module docs.
/// Text that is not a JSON number (cannot come from serde_json) is copied verbatim.
pub fn normalise_decimal(text: &str, out: &mut String) {
    let Some(parsed) = Decimal::parse(text) else {
        out.push_str(text);
        return;
    };
    if parsed.digits.is_empty() {
        out.push('0');
        return;
    }
    if parsed.negative {
        out.push('-');
    }
    out.push_str(&parsed.digits);
    let total = i64::try_from(parsed.digits.len()).unwrap_or(i64::MAX);
    if parsed.exponent >= 0 && total.saturating_add(parsed.exponent) <= 21 {
        for _ in 0..parsed.exponent {
            out.push('0');
        }
    } else if parsed.exponent != 0 {
        let _ = write!(out, "e{}", parsed.exponent);
    }
}

/// value = (-1)^negative × digits × 10^exponent, digits without leading/trailing zeros
/// (empty for zero).
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exp_text) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let mut exponent: i64 = match exp_text {
            Some(e) => {
                let e = e.strip_prefix('+').unwrap_or(e);
                e.parse().ok()?
            }
            None => 0,
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, ""),
        };
        if int_part.is_empty()
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        exponent = exponent.checked_sub(i64::try_from(frac_part.len()).ok()?)?;
        let mut digits: String = int_part.chars().chain(frac_part.chars()).collect();
        let trailing = digits.len() - digits.trim_end_matches('0').len();
        digits.truncate(digits.len() - trailing);
        exponent = exponent.checked_add(i64::try_from(trailing).ok()?)?;
        let digits = digits.trim_start_matches('0').to_owned();
        Some(Decimal {
            negative,
            digits,
            exponent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(s: &str) -> String {
        let mut out = String::new();
        normalise_decimal(s, &mut out);
        out
    }

    #[test]
    fn equal_decimal_values_normalise_identically() {
        assert_eq!(norm("100"), "100");
        assert_eq!(norm("1e2"), "100");
        assert_eq!(norm("1E+2"), "100");
        assert_eq!(norm("100.000"), "100");
        assert_eq!(norm("1.5"), "15e-1");
        assert_eq!(norm("1.50"), "15e-1");
        assert_eq!(norm("0.15e1"), "15e-1");
        assert_eq!(norm("-0.0"), "0");
        assert_eq!(norm("0"), "0");
        assert_eq!(norm("-12"), "-12");
        assert_eq!(norm("1e20"), "100000000000000000000");
        assert_eq!(norm("100000000000000000000"), "100000000000000000000");
        assert_eq!(norm("1e22"), "1e22");
        assert_eq!(norm("10000000000000000000000"), "1e22");
        assert_eq!(norm("1.152921504606847e18"), "1152921504606847000");
        assert_eq!(norm("0.0000001"), "1e-7");
        assert_eq!(norm("1e-7"), "1e-7");
    }

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        let v = json!({"b": 1, "a": [true, null, "x"], "é": {"z": 1.5, "y": -0.0}});
        assert_eq!(
            canonical_json(&v).ok().as_deref(),
            Some(r#"{"a":[true,null,"x"],"b":1,"é":{"y":0,"z":15e-1}}"#)
        );
    }

    #[test]
    fn strings_escape_only_quote_backslash_and_controls() {
        let v = json!("a\"b\\c\n\u{1f}\u{7f}\u{2028}ü");
        assert_eq!(
            canonical_json(&v).ok().as_deref(),
            Some("\"a\\\"b\\\\c\\u000a\\u001f\u{7f}\u{2028}ü\"")
        );
    }

    #[test]
    fn canonical_text_is_json_of_the_same_value() {
        let v = json!({"n": [1, -2, 3.25, 1e300, 18446744073709551615u64], "s": "t\tab"});
        let text = canonical_json(&v).unwrap_or_default();
        let back: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(canonical_json(&back).ok(), Some(text));
    }

    #[test]
    fn nul_and_deep_nesting_are_refused() {
        assert_eq!(
            canonical_json(&json!({"k": "a\u{0}b"})),
            Err(PayloadProblem::NulCharacter)
        );
        assert_eq!(
            canonical_json(&json!({"a\u{0}": 1})),
            Err(PayloadProblem::NulCharacter)
        );
        let mut deep = json!(1);
        for _ in 0..MAX_PAYLOAD_DEPTH {
            deep = json!([deep]);
        }
        assert!(canonical_json(&deep).is_ok());
        assert_eq!(canonical_json(&json!([deep])), Err(PayloadProblem::TooDeep));
    }
}
