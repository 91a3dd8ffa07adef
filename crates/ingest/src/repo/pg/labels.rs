//! PostgreSQL: a mailbox's labels refreshed from labels.list inside a run's
//! fenced transaction (`RepoTx::refresh_labels`); mirrors `sqlite/labels.rs`.
//! The stored rows are read locked, compared with the listing
//! ([`label_changes`]), and each change is one upsert whose `WHERE` lets
//! the database decide whether the row really differs: only a row it changed
//! is reported, so the ledger never records a change the table lacks.

use sqlx::PgConnection;

use crate::domain::{LabelChange, LabelChangeKind, MailboxLabel, label_changes};
use crate::repo::RepoError;
use crate::repo::labels::{LABEL_COLUMNS, LabelRow, stored_label};
use crate::repo::text::without_nul;

/// Takes the mailbox's stored labels to `listed`; returns the changes made.
pub(crate) async fn refresh_labels(
    conn: &mut PgConnection,
    mailbox_id: i64,
    listed: &[MailboxLabel],
) -> Result<Vec<LabelChange>, RepoError> {
    const OP: &str = "refresh labels";
    let rows: Vec<LabelRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {LABEL_COLUMNS} FROM mailbox_labels l WHERE l.mailbox_id = $1 FOR UPDATE"
    )))
    .bind(mailbox_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db(OP))?;
    let stored: Vec<_> = rows.into_iter().map(stored_label).collect();
    let mut made = Vec::new();
    for change in label_changes(&stored, listed) {
        let l = &change.label;
        let changed: Option<String> = match change.kind {
            LabelChangeKind::Deleted => {
                sqlx::query_scalar(
                    "UPDATE mailbox_labels SET deleted_at = now(), updated_at = now()
                 WHERE mailbox_id = $1 AND label_id = $2 AND deleted_at IS NULL
                 RETURNING label_id",
                )
                .bind(mailbox_id)
                .bind(&l.id)
                .fetch_optional(&mut *conn)
                .await
            }
            _ => sqlx::query_scalar(
                "INSERT INTO mailbox_labels (mailbox_id, label_id, name, label_type, text_color,
                     background_color, message_list_visibility, label_list_visibility)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (mailbox_id, label_id) DO UPDATE SET
                     name = EXCLUDED.name, label_type = EXCLUDED.label_type,
                     text_color = EXCLUDED.text_color,
                     background_color = EXCLUDED.background_color,
                     message_list_visibility = EXCLUDED.message_list_visibility,
                     label_list_visibility = EXCLUDED.label_list_visibility,
                     deleted_at = NULL, updated_at = now()
                 WHERE (mailbox_labels.name, mailbox_labels.label_type, mailbox_labels.text_color,
                        mailbox_labels.background_color, mailbox_labels.message_list_visibility,
                        mailbox_labels.label_list_visibility, mailbox_labels.deleted_at IS NULL)
                     IS DISTINCT FROM
                       (EXCLUDED.name, EXCLUDED.label_type, EXCLUDED.text_color,
                        EXCLUDED.background_color, EXCLUDED.message_list_visibility,
                        EXCLUDED.label_list_visibility, true)
                 RETURNING label_id",
            )
            .bind(mailbox_id)
            .bind(&l.id)
            .bind(without_nul(&l.name).as_ref())
            .bind(l.kind.as_str())
            .bind(l.text_color.as_deref().map(without_nul).as_deref())
            .bind(l.background_color.as_deref().map(without_nul).as_deref())
            .bind(
                l.message_list_visibility
                    .as_deref()
                    .map(without_nul)
                    .as_deref(),
            )
            .bind(
                l.label_list_visibility
                    .as_deref()
                    .map(without_nul)
                    .as_deref(),
            )
            .fetch_optional(&mut *conn)
            .await,
        }
        .map_err(RepoError::db(OP))?;
        if changed.is_some() {
            made.push(change);
        }
    }
    Ok(made)
}
