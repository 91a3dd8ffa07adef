//! What both backends' statements share as it is: the auditor's duplicate
//! checks (portable SQL), the row shape of the quarantine, and reading a
//! message id back out of a ledger subject.

use chrono::{DateTime, Utc};
use ledger::Subject;

use super::RepoError;
use super::quarantine::{FailureKind, QuarantinedMessage};

/// The original spec's `GROUP BY … HAVING count(*) > 1` checks, per table:
/// the constraints forbid duplicates, and this is the check an auditor asks for.
pub(crate) const DUPLICATE_CHECKS: [(&str, &str); 5] = [
    (
        "mailboxes",
        "SELECT org_id || '/' || provider_email, count(*) FROM mailboxes GROUP BY org_id, provider_email HAVING count(*) > 1",
    ),
    (
        "mail_threads",
        "SELECT mailbox_id || '/' || provider_thread_id, count(*) FROM mail_threads GROUP BY mailbox_id, provider_thread_id HAVING count(*) > 1",
    ),
    (
        "mail_messages",
        "SELECT mailbox_id || '/' || provider_message_id, count(*) FROM mail_messages GROUP BY mailbox_id, provider_message_id HAVING count(*) > 1",
    ),
    (
        "mail_attachments",
        "SELECT message_id || '/' || part_id, count(*) FROM mail_attachments GROUP BY message_id, part_id HAVING count(*) > 1",
    ),
    (
        "blobs",
        "SELECT sha256, count(*) FROM blobs GROUP BY sha256 HAVING count(*) > 1",
    ),
];

/// The message id a `message.…` event names; a key that is not one is kept whole,
/// so a forged or malformed event still shows in the finding.
pub(crate) fn message_id_of(key: &str) -> String {
    match key.parse::<Subject>() {
        Ok(subject) => subject
            .message_id()
            .map_or_else(|| key.to_owned(), str::to_owned),
        Err(_) => key.to_owned(),
    }
}

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
            .map_err(|e: super::UnknownValue| RepoError::Corrupt(e.to_string()))?;
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
