//! The statements of `gc --purge-deleted-older-than` that read the same on
//! both backends, given each one's placeholders: which blobs only a
//! mailbox's long-deleted messages hold, and who holds them (the protocol is
//! in `crate::gc`).

use std::collections::BTreeMap;

use crate::repo::PurgeCandidate;

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
) -> Vec<PurgeCandidate> {
    let mut by_sha: BTreeMap<String, PurgeCandidate> = sizes
        .into_iter()
        .map(|(sha256, size)| {
            let c = PurgeCandidate {
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
