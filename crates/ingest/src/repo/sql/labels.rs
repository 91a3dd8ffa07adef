//! The label reads ([`LabelReads`], see `repo::labels`), once for both backends.

use async_trait::async_trait;

use super::{HasDb, IdList, on_either};
use crate::repo::labels::{LABEL_COLUMNS, LabelRow, stored_label};
use crate::repo::{LabelReads, MailboxLabelRow, RepoError};

#[async_trait]
impl<B: HasDb> LabelReads for B {
    async fn mailbox_labels(&self, mailbox_ids: &[i64]) -> Result<Vec<MailboxLabelRow>, RepoError> {
        let db = self.db();
        let sql = format!(
            "SELECT l.mailbox_id, mb.provider_email, {LABEL_COLUMNS}
             FROM mailbox_labels l JOIN mailboxes mb ON mb.id = l.mailbox_id
             WHERE {}
             ORDER BY l.mailbox_id, l.label_id",
            db.dialect().in_list("l.mailbox_id", "$1")
        );
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            bool,
        );
        let rows: Vec<Row> =
            on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(IdList(mailbox_ids))
                .fetch_all(pool)
                .await)
            .map_err(RepoError::db("read mailbox labels"))?;
        Ok(rows
            .into_iter()
            .map(
                |(mailbox_id, mailbox, id, name, kind, tc, bc, ml, ll, deleted)| {
                    let row: LabelRow = (id, name, kind, tc, bc, ml, ll, deleted);
                    let stored = stored_label(row);
                    MailboxLabelRow {
                        mailbox_id,
                        mailbox,
                        label: stored.label,
                        deleted: stored.deleted,
                    }
                },
            )
            .collect())
    }
}
