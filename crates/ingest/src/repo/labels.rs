//! A mailbox's Gmail labels (`mailbox_labels`): the [`LabelReads`] role, what
//! export, show and status read to give label ids their names. The refresh
//! from labels.list is a write of a run's fenced transaction
//! ([`RepoTx::refresh_labels`](super::RepoTx::refresh_labels), in
//! `pg/labels.rs` and `sqlite/labels.rs`).

use async_trait::async_trait;

use super::RepoError;
use crate::domain::{LabelKind, MailboxLabel, StoredLabel};

/// One stored label of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxLabelRow {
    pub mailbox_id: i64,
    /// The mailbox's address.
    pub mailbox: String,
    pub label: MailboxLabel,
    /// Gmail deleted it; the row keeps its last name.
    pub deleted: bool,
}

/// What reads a mailbox's labels.
#[async_trait]
pub trait LabelReads: Send + Sync {
    /// Every label of these mailboxes (deleted ones too), by mailbox and label id.
    async fn mailbox_labels(&self, mailbox_ids: &[i64]) -> Result<Vec<MailboxLabelRow>, RepoError>;
}

/// A `mailbox_labels` row as both backends read it: (label id, name, type,
/// text colour, background colour, message list visibility, label list
/// visibility, deleted).
pub(crate) type LabelRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

/// The columns of a [`LabelRow`], in its order, of `mailbox_labels` as `l`.
pub(crate) const LABEL_COLUMNS: &str = "l.label_id, l.name, l.label_type, l.text_color,
    l.background_color, l.message_list_visibility, l.label_list_visibility,
    l.deleted_at IS NOT NULL";

pub(crate) fn stored_label(
    (id, name, kind, text_color, background_color, message_list, label_list, deleted): LabelRow,
) -> StoredLabel {
    StoredLabel {
        label: MailboxLabel {
            id,
            name,
            kind: LabelKind::from_stored(&kind),
            text_color,
            background_color,
            message_list_visibility: message_list,
            label_list_visibility: label_list,
        },
        deleted,
    }
}
