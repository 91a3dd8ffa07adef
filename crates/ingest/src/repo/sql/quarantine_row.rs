//! A `quarantined_messages` row as both backends read it: its columns, in
//! the field order of [`QuarantineRow`], and the conversion to the
//! backend-neutral [`QuarantinedMessage`].

use chrono::{DateTime, Utc};

use crate::repo::quarantine::{FailureKind, QuarantinedMessage};
use crate::repo::{RepoError, UnknownValue};

/// The columns of a [`QuarantineRow`], in its field order.
pub(crate) const QUARANTINE_COLUMNS: &str =
    "mailbox_id, provider_message_id, provider_thread_id, failure, reason,
     raw_sha256, attempts, first_failed_at, last_failed_at, next_attempt_at";

/// A `quarantined_messages` row as both backends read it.
#[derive(sqlx::FromRow)]
pub(crate) struct QuarantineRow {
    mailbox_id: i64,
    provider_message_id: String,
    provider_thread_id: Option<String>,
    failure: String,
    reason: String,
    raw_sha256: Option<String>,
    attempts: i32,
    first_failed_at: DateTime<Utc>,
    last_failed_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
}

impl TryFrom<QuarantineRow> for QuarantinedMessage {
    type Error = RepoError;
    fn try_from(r: QuarantineRow) -> Result<Self, RepoError> {
        let kind: FailureKind = r
            .failure
            .parse()
            .map_err(|e: UnknownValue| RepoError::Corrupt(e.to_string()))?;
        Ok(QuarantinedMessage {
            mailbox_id: r.mailbox_id,
            provider_message_id: r.provider_message_id,
            provider_thread_id: r.provider_thread_id,
            kind,
            reason: r.reason,
            raw_sha256: r.raw_sha256,
            attempts: r.attempts,
            first_failed_at: r.first_failed_at,
            last_failed_at: r.last_failed_at,
            next_attempt_at: r.next_attempt_at,
        })
    }
}
