//! `Sha256`: the content address of a blob (32 bytes; text form is 64 lowercase hex digits),
//! and `Hasher`, the incremental hasher the backends feed while writing. sha2 picks its SHA-NI
//! backend at run time (benches/put_throughput.rs: ~98 % of `openssl speed -evp sha256`).

use std::fmt;
use std::str::FromStr;

use sha2::Digest;

use crate::error::StoreError;

/// A sha256 digest. `Display`/`FromStr`/serde use lowercase hex (uppercase accepted on input).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// The digest of `bytes`.
    pub fn digest(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Standard base64 of the digest, the form S3 expects in `x-amz-checksum-sha256`.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

impl FromStr for Sha256 {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || StoreError::InvalidSha256 {
            // Bound the echoed input so a hostile string cannot flood logs.
            input: s.chars().take(80).collect(),
        };
        if s.len() != 64 {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| invalid())?;
        Ok(Self(out))
    }
}

impl serde::Serialize for Sha256 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl serde::de::Visitor<'_> for HexVisitor {
            type Value = Sha256;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-character hex sha256")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Sha256, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(HexVisitor)
    }
}

/// Incremental sha256 plus a byte count, fed as bytes are written.
#[derive(Default, Clone)]
pub(crate) struct Hasher {
    inner: sha2::Sha256,
    len: u64,
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn finish(self) -> (Sha256, u64) {
        (Sha256(self.inner.finalize().into()), self.len)
    }
}

/// Hash `bytes`, off the async executor when the buffer is large enough to matter
/// (30 MB takes ~20 ms even with SHA-NI).
pub(crate) async fn digest_bytes(bytes: &bytes::Bytes) -> Result<Sha256, tokio::task::JoinError> {
    const INLINE_LIMIT: usize = 1 << 20;
    if bytes.len() <= INLINE_LIMIT {
        return Ok(Sha256::digest(bytes));
    }
    let owned = bytes.clone();
    tokio::task::spawn_blocking(move || Sha256::digest(&owned)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn empty_digest_is_the_known_constant() {
        assert_eq!(Sha256::digest(b"").to_string(), EMPTY);
    }

    #[test]
    fn hex_round_trips_and_uppercase_is_accepted() {
        let sha: Sha256 = EMPTY.to_uppercase().parse().expect("valid hex");
        assert_eq!(sha.to_string(), EMPTY);
    }

    #[test]
    fn bad_hex_is_rejected() {
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65)] {
            assert!(
                matches!(bad.parse::<Sha256>(), Err(StoreError::InvalidSha256 { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serde_uses_hex() {
        let sha = Sha256::digest(b"x");
        let json = serde_json::to_string(&sha).expect("serialize");
        assert_eq!(json, format!("\"{sha}\""));
        let back: Sha256 = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, sha);
        assert!(serde_json::from_str::<Sha256>("\"zz\"").is_err());
    }

    #[test]
    fn hasher_matches_one_shot_digest() {
        let mut h = Hasher::default();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.len(), 11);
        assert_eq!(h.finish(), (Sha256::digest(b"hello world"), 11));
    }

    #[test]
    fn base64_form_matches_s3_expectation() {
        // sha256("") in base64, as S3 documents it.
        assert_eq!(
            Sha256::digest(b"").to_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
