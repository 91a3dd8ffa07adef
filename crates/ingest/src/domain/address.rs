//! [`MailboxAddress`]: a mailbox's address as every layer compares and stores
//! it, lowercase and trimmed by construction. Gmail addresses are
//! case-insensitive, and a mailbox row is keyed by `(org_id, provider_email)`,
//! so one spelling must reach the database whatever case the operator typed;
//! lowercasing once, here, keeps the CLI, the engines and both backends from
//! each doing it (or forgetting it) by hand.

use std::fmt;

use serde::Serialize;

/// Text that cannot be a mailbox address (what `mailbox add` refuses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an email address")]
pub struct InvalidAddress(pub String);

/// A mailbox address: lowercase (Unicode lowercasing, as `str::to_lowercase`)
/// and without surrounding whitespace. Serialises as the string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MailboxAddress(String);

impl MailboxAddress {
    /// The address of `raw`, refusing text without an `@` (the test
    /// `mailbox add` has always applied; the error keeps its wording).
    pub fn new(raw: &str) -> Result<Self, InvalidAddress> {
        if !raw.contains('@') {
            return Err(InvalidAddress(raw.to_owned()));
        }
        Ok(Self::normalized(raw))
    }

    /// The address of `raw` without the `@` test, for the paths that have
    /// never refused an address: a lookup of text that is no address finds
    /// nothing, and backfill and sync register what they are given (Gmail
    /// then refuses it).
    pub fn normalized(raw: &str) -> Self {
        MailboxAddress(raw.trim().to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for MailboxAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MailboxAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_and_trimmed_by_construction() {
        let a = MailboxAddress::new("  Ann@Example.COM\n").expect("address");
        assert_eq!(a.as_str(), "ann@example.com");
        assert_eq!(a.to_string(), "ann@example.com");
        assert_eq!(
            serde_json::to_string(&a).expect("json"),
            "\"ann@example.com\""
        );
    }

    #[test]
    fn refuses_text_without_at_with_the_old_wording() {
        let e = MailboxAddress::new("Ann").expect_err("no @");
        assert_eq!(e.to_string(), "'Ann' is not an email address");
        assert_eq!(MailboxAddress::normalized("Ann").as_str(), "ann");
    }
}
