//! Typed surrogate ids: a [`MailboxId`] cannot be passed where a run id or a
//! row count is meant. The database keys are `BIGINT`; a backend binds
//! [`MailboxId::get`] explicitly (nothing here knows sqlx). Applied so far at
//! the boundary of one role trait (`repo::VerifySchedule`), as the pattern
//! for the rest.

use std::fmt;

use serde::Serialize;

/// A `mailboxes.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MailboxId(pub i64);

impl MailboxId {
    /// The key as the database stores it.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
