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

/// SQL (both backends, given their placeholders): the hashes the mailbox
/// `mailbox`'s messages deleted before `cutoff` hold, as raw bytes or parts.
fn held_by_long_deleted(mailbox: &str, cutoff: &str) -> String {
    format!(
        "SELECT m.raw_sha256 AS sha256 FROM mail_messages m
         WHERE m.mailbox_id = {mailbox} AND m.deleted_at < {cutoff}
         UNION
         SELECT a.sha256 FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
         WHERE m.mailbox_id = {mailbox} AND m.deleted_at < {cutoff}"
    )
}

/// SQL condition (both backends): nothing but messages of `mailbox` deleted
/// before `cutoff` references the blob `sha` (a column or expression): no
/// other message, in any mailbox, by its raw bytes or a part, and no
/// quarantine row. What makes a blob purgeable.
pub(crate) fn only_long_deleted_hold(sha: &str, mailbox: &str, cutoff: &str) -> String {
    let other =
        format!("NOT (o.mailbox_id = {mailbox} AND coalesce(o.deleted_at < {cutoff}, false))");
    format!(
        "NOT EXISTS (SELECT 1 FROM mail_messages o WHERE o.raw_sha256 = {sha} AND {other})
         AND NOT EXISTS (SELECT 1 FROM mail_attachments oa JOIN mail_messages o ON o.id = oa.message_id
                         WHERE oa.sha256 = {sha} AND {other})
         AND NOT EXISTS (SELECT 1 FROM quarantined_messages q WHERE q.raw_sha256 = {sha})"
    )
}

/// SQL condition (both backends) on `blobs b`: a blob only the mailbox's
/// messages deleted before `cutoff` hold, not purged yet.
pub(crate) fn purgeable(mailbox: &str, cutoff: &str) -> String {
    format!(
        "b.state IN ('present', 'purging') AND b.sha256 IN ({}) AND {}",
        held_by_long_deleted(mailbox, cutoff),
        only_long_deleted_hold("b.sha256", mailbox, cutoff)
    )
}

/// SQL (both backends): (sha256, message id) for each of the mailbox's
/// messages whose raw bytes or part is one of the hashes `list` yields.
pub(crate) fn holders(mailbox: &str, list: &str) -> String {
    format!(
        "SELECT m.raw_sha256, m.provider_message_id FROM mail_messages m
         WHERE m.mailbox_id = {mailbox} AND m.raw_sha256 IN ({list})
         UNION
         SELECT a.sha256, m.provider_message_id FROM mail_attachments a
         JOIN mail_messages m ON m.id = a.message_id
         WHERE m.mailbox_id = {mailbox} AND a.sha256 IN ({list})
         ORDER BY 1, 2"
    )
}

/// Groups (sha256, message id) rows into candidates with the given sizes.
pub(crate) fn purge_candidates(
    sizes: Vec<(String, i64)>,
    holders: Vec<(String, String)>,
) -> Vec<super::PurgeCandidate> {
    let mut by_sha: std::collections::BTreeMap<String, super::PurgeCandidate> = sizes
        .into_iter()
        .map(|(sha256, size)| {
            let c = super::PurgeCandidate {
                sha256: sha256.clone(),
                size,
                messages: Vec::new(),
            };
            (sha256, c)
        })
        .collect();
    for (sha, message) in holders {
        if let Some(c) = by_sha.get_mut(&sha)
            && !c.messages.contains(&message)
        {
            c.messages.push(message);
        }
    }
    by_sha.into_values().collect()
}
