//! What `export` reads: the stored messages a filter selects, page by page
//! (keyset pagination on the row id), so an export of any size holds one page
//! of rows and one message's bytes at a time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{LabelReads, RepoError};

/// Which stored messages to export.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// The mailboxes (row ids); empty selects nothing.
    pub mailbox_ids: Vec<i64>,
    /// internalDate at or after.
    pub since: Option<DateTime<Utc>>,
    /// internalDate before.
    pub until: Option<DateTime<Utc>>,
    /// Only messages carrying this label: its id (`INBOX`, `Label_12`), its
    /// name in Gmail (`Work/2026`), or Takeout's word for a system label
    /// (`Inbox`).
    pub label: Option<String>,
    /// Messages Gmail deleted (kept here, marked deleted) too.
    pub include_deleted: bool,
}

/// One message to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// The row id: the page cursor.
    pub id: i64,
    pub mailbox: String,
    pub provider_message_id: String,
    pub provider_thread_id: String,
    pub label_ids: Vec<String>,
    /// Each of `label_ids`' names in Gmail, in the same order, once the
    /// export has looked them up (empty until then; an id with no stored
    /// label is its own name).
    pub label_names: Vec<String>,
    pub internal_date: DateTime<Utc>,
    pub raw_sha256: String,
    pub raw_size: i64,
    pub deleted: bool,
    /// gc removed its raw bytes (`gc --purge-deleted-older-than`): it cannot be exported.
    pub purged: bool,
}

/// What `export` reads: the messages, and the labels' names.
#[async_trait]
pub trait ExportReads: LabelReads + Send + Sync {
    /// Up to `limit` messages the filter selects with a row id above
    /// `after_id`, in row id order.
    async fn export_page(
        &self,
        filter: &ExportFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ExportRow>, RepoError>;
}
