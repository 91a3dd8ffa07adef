//! The one error of reading a domain value back from its stored string: a
//! status, kind or failure the schema does not allow. A backend turns it into
//! a corrupt-database error; it lives here so the values can parse themselves.

/// A status or kind string the schema does not allow.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown {what} '{value}'")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}
