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

/// SQL (both backends): the ids of the mailboxes in `mailbox`'s org.
fn org_mailboxes(mailbox: &str) -> String {
    format!(
        "SELECT s.id FROM mailboxes s
         WHERE s.org_id = (SELECT t.org_id FROM mailboxes t WHERE t.id = {mailbox})"
    )
}

/// SQL (both backends): the org of `mailbox`.
pub(crate) fn org_of(mailbox: &str) -> String {
    format!("(SELECT ob.org_id FROM mailboxes ob WHERE ob.id = {mailbox})")
}

/// SQL condition (both backends): nothing but messages of `mailbox` deleted
/// before `cutoff` references the blob `sha` (a column or expression) in the
/// mailbox's org: no other message of the org, by its raw bytes or a part,
/// no quarantine row and no kept orphan (`imported_orphans`: the entry's
/// bytes are all the archive has of it) of the org. Other orgs hold copies of their own
/// (under their own prefix), so their rows never keep this org's. What makes
/// the org's copy purgeable.
pub(crate) fn only_long_deleted_hold(sha: &str, mailbox: &str, cutoff: &str) -> String {
    let org = org_mailboxes(mailbox);
    let other = format!(
        "o.mailbox_id IN ({org})
         AND NOT (o.mailbox_id = {mailbox} AND coalesce(o.deleted_at < {cutoff}, false))"
    );
    format!(
        "NOT EXISTS (SELECT 1 FROM mail_messages o WHERE o.raw_sha256 = {sha} AND {other})
         AND NOT EXISTS (SELECT 1 FROM mail_attachments oa JOIN mail_messages o ON o.id = oa.message_id
                         WHERE oa.sha256 = {sha} AND {other})
         AND NOT EXISTS (SELECT 1 FROM quarantined_messages q
                         WHERE q.raw_sha256 = {sha} AND q.mailbox_id IN ({org}))
         AND NOT EXISTS (SELECT 1 FROM imported_orphans io
                         WHERE io.sha256 = {sha} AND io.mailbox_id IN ({org}))"
    )
}

/// SQL condition (both backends) on `blob_copies b`: the copy, in the
/// mailbox's org, of a blob only the mailbox's messages deleted before
/// `cutoff` hold, not purged yet.
pub(crate) fn purgeable(mailbox: &str, cutoff: &str) -> String {
    format!(
        "b.org_id = {} AND b.state IN ('present', 'purging') AND b.sha256 IN ({}) AND {}",
        org_of(mailbox),
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
