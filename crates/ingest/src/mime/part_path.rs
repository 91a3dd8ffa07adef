//! `PartPath`: a MIME part's position in its message, numbered as Gmail numbers
//! `partId` ("0", "1", "1.0", …). It is half of the natural key of
//! `mail_attachments` (message_id, part_id), so it is validated on the way in.

use std::fmt;
use std::str::FromStr;

/// A MIME part path: non-empty, dot-separated decimal indices
/// (`^[0-9]+(\.[0-9]+)*$`, the schema's CHECK on `part_id`).
///
/// Gmail gives the root payload of a message the empty partId `""`; the empty
/// string is not a valid `PartPath` (the schema needs a non-empty key), so a
/// message whose whole body is one non-body leaf (e.g. a bare application/pdf)
/// stores that leaf as `"0"`. No other part can collide with it: a single-part
/// message has no children.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartPath(String);

/// A string that is not a valid part path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MIME part path {0:?}: expected digits separated by dots, e.g. \"1.0\"")]
pub struct InvalidPartPath(pub String);

impl PartPath {
    /// The path a root-level leaf is stored under (see the type docs).
    pub fn root_leaf() -> Self {
        PartPath("0".to_owned())
    }

    /// Builds a path from child indices, outermost first. `None` for an empty slice
    /// (that would be Gmail's root `""`, which we never store).
    pub fn from_indices(indices: &[usize]) -> Option<Self> {
        if indices.is_empty() {
            return None;
        }
        let parts: Vec<String> = indices.iter().map(usize::to_string).collect();
        Some(PartPath(parts.join(".")))
    }

    /// The path as stored, e.g. `"1.0"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Child indices, outermost first.
    pub fn indices(&self) -> Vec<usize> {
        // Validated on construction: every segment is a decimal number; one too
        // big for usize cannot come from a real tree, so it saturates.
        self.0
            .split('.')
            .map(|s| s.parse().unwrap_or(usize::MAX))
            .collect()
    }
}

impl FromStr for PartPath {
    type Err = InvalidPartPath;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.split('.')
                .all(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()));
        if valid {
            Ok(PartPath(s.to_owned()))
        } else {
            Err(InvalidPartPath(s.to_owned()))
        }
    }
}

impl TryFrom<String> for PartPath {
    type Error = InvalidPartPath;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for PartPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PartPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartPath({:?})", self.0)
    }
}

impl AsRef<str> for PartPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for PartPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PartPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
