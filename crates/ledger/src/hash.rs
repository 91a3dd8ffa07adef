//! The event hash: `hash = sha256(prev ‖ encoding)`, hex-encoded lowercase.
//!
//! `prev` is the previous event's hash as its 32 raw bytes (the [`GENESIS_HASH`], 32 zero
//! bytes, for seq 1). The encoding of an event (version 1) is, in order:
//!
//! ```text
//! b"mailingest.ledger.v1\0"
//! mailbox_id  i64, 8 bytes big-endian
//! seq         i64, 8 bytes big-endian
//! run_id      i64, 8 bytes big-endian
//! event_type  u64 BE byte length ‖ UTF-8 (e.g. "message.ingested")
//! subject_key u64 BE byte length ‖ UTF-8
//! payload     u64 BE byte length ‖ canonical JSON (see `canonical`)
//! created_at  i64, 8 bytes big-endian: microseconds since 1970-01-01T00:00:00Z
//! ```
//!
//! Fixed widths and length prefixes make it unambiguous (no field can bleed into the next);
//! every field is a column of the stored row, so `verify` recomputes it from the row alone.
//! Postgres keeps timestamps in microseconds, so `created_at` is truncated to microseconds
//! before hashing and that exact value is stored.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// prev_hash of the first event of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const DOMAIN: &[u8] = b"mailingest.ledger.v1\0";

/// The hashed fields of one event. `payload_canonical` is [`crate::canonical::canonical_json`]
/// of the payload.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    pub mailbox_id: i64,
    pub seq: i64,
    pub run_id: i64,
    pub event_type: &'a str,
    pub subject_key: &'a str,
    pub payload_canonical: &'a str,
    pub created_at_micros: i64,
}

/// Reasons a stored prev_hash cannot take part in a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHex;

/// Parse a 64-character lowercase hex hash into its bytes.
pub fn decode_hash(hex_text: &str) -> Result<[u8; 32], BadHex> {
    if hex_text.len() != 64 || hex_text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(BadHex);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).map_err(|_| BadHex)?;
    Ok(out)
}

/// sha256(prev ‖ encoding(input)), the 32 raw bytes.
pub fn event_hash_bytes(prev: &[u8; 32], input: &HashInput<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(DOMAIN);
    h.update(input.mailbox_id.to_be_bytes());
    h.update(input.seq.to_be_bytes());
    h.update(input.run_id.to_be_bytes());
    for field in [input.event_type, input.subject_key, input.payload_canonical] {
        // usize → u64 is lossless on every platform Rust supports.
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.update(input.created_at_micros.to_be_bytes());
    h.finalize().into()
}

/// The lowercase-hex hash of an event whose predecessor's hash is `prev_hash` (hex).
pub fn event_hash(prev_hash: &str, input: &HashInput<'_>) -> Result<String, BadHex> {
    let prev = decode_hash(prev_hash)?;
    Ok(hex::encode(event_hash_bytes(&prev, input)))
}

/// `t` truncated to whole microseconds (what Postgres stores), and that count.
pub fn truncate_to_micros(t: DateTime<Utc>) -> (DateTime<Utc>, i64) {
    let micros = t.timestamp_micros();
    // from_timestamp_micros only fails outside chrono's range, which `t` is inside of.
    let truncated = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or(t);
    (truncated, micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(subject: &'a str, payload: &'a str) -> HashInput<'a> {
        HashInput {
            mailbox_id: 1,
            seq: 1,
            run_id: 7,
            event_type: "message.ingested",
            subject_key: subject,
            payload_canonical: payload,
            created_at_micros: 1_700_000_000_000_000,
        }
    }

    #[test]
    fn field_boundaries_cannot_shift() {
        let a = event_hash(GENESIS_HASH, &input("ab", "{}c"));
        let b = event_hash(GENESIS_HASH, &input("ab{", "}c"));
        assert!(a.is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn every_field_and_the_predecessor_change_the_hash() {
        let base = input("m1", "{}");
        let h0 = event_hash(GENESIS_HASH, &base).unwrap_or_default();
        assert_eq!(h0.len(), 64);
        let variants = [
            HashInput {
                mailbox_id: 2,
                ..base
            },
            HashInput { seq: 2, ..base },
            HashInput { run_id: 8, ..base },
            HashInput {
                event_type: "message.skipped",
                ..base
            },
            HashInput {
                subject_key: "m2",
                ..base
            },
            HashInput {
                payload_canonical: "{\"a\":1}",
                ..base
            },
            HashInput {
                created_at_micros: 1,
                ..base
            },
        ];
        for v in variants {
            assert_ne!(event_hash(GENESIS_HASH, &v).unwrap_or_default(), h0);
        }
        let other_prev = "11".repeat(32);
        assert_ne!(event_hash(&other_prev, &base).unwrap_or_default(), h0);
    }

    #[test]
    fn malformed_prev_hash_is_refused() {
        let base = input("m1", "{}");
        assert!(event_hash("00", &base).is_err());
        assert!(event_hash(&"AA".repeat(32), &base).is_err());
        assert!(event_hash(&"zz".repeat(32), &base).is_err());
    }

    #[test]
    fn timestamps_truncate_to_microseconds() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default();
        let (trunc, micros) = truncate_to_micros(t);
        assert_eq!(micros, 1_700_000_000_123_456);
        assert_eq!(trunc.timestamp_subsec_nanos(), 123_456_000);
    }
}
