//! Stored mail Gmail no longer shows, found by a run that cannot learn
//! deletions from history.
//!
//! A sync learns deletions from history.list (`messagesDeleted`), and a
//! backfill that starts from a mailbox's cursor leaves them to the next sync,
//! which replays history from that cursor. Nothing speaks for the time before
//! a mailbox has a cursor, or after history expired: mail an import stored
//! and Gmail deleted before the first backfill (the import lists the mailbox
//! but takes no cursor; its file is older than now), or mail deleted while a
//! sync's history ran out. Such a row would stay live for ever.
//!
//! So a run without a usable cursor, once its window is written, lists every
//! id Gmail has in the window, SPAM and TRASH included (messages.list, 5
//! units per 500 ids), and asks Gmail about each live row in the window the
//! listing does not name (messages.get minimal, 20 units on the 2026 table):
//! a 404 marks the row deleted, through the one committer, exactly as a sync
//! marks a deletion (soft: the row and its blobs stay, `message.deleted` in
//! the ledger); an answer refreshes its labels. Nothing is marked deleted on
//! the listing's word alone: a listing races changes, and a wrongly deleted
//! row is one gc may later purge. The cost is one listing per such run plus
//! one get per vanished message, which is settled once (deleted rows are not
//! live; a refreshed row is listed next time).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use gmail::{GmailError, ListQuery};
use tracing::{info, warn};

use super::commit::Batch;
use super::run::{Run, Stage};
use super::{Engine, EngineError};
use crate::domain::{LabelUpdate, Window};
use crate::repo::as_i64;

/// Gets in flight while settling vanished rows (the client's limiter paces them).
const ASKED_IN_FLIGHT: usize = 8;

impl Engine {
    /// The live rows of `window` before the run writes it, when nothing in
    /// history can speak for them (`has_cursor` false: no cursor, or history
    /// expired); empty otherwise. Rows the run itself writes were listed by it.
    pub(crate) async fn rows_to_account_for(
        &self,
        run: &Run,
        window: Window,
        has_cursor: bool,
    ) -> Result<Vec<String>, EngineError> {
        if has_cursor {
            return Ok(Vec::new());
        }
        // Whole seconds, as Gmail's `after:`/`before:` read them.
        let (since, until) = (
            DateTime::<Utc>::from_timestamp(window.after_secs(), 0).unwrap_or(window.since),
            DateTime::<Utc>::from_timestamp(window.before_secs(), 0).unwrap_or(window.until),
        );
        self.riding_out("read live message ids", || async {
            Ok(self
                .repo
                .live_message_ids_between(run.mailbox_id(), since, until)
                .await?)
        })
        .await
    }

    /// Settles those of `live` (from [`Engine::rows_to_account_for`]) that
    /// Gmail's listing of `window` no longer names: marked deleted on Gmail's
    /// 404, relabelled otherwise.
    pub(crate) async fn settle_vanished(
        &self,
        run: &Run,
        window: Window,
        live: Vec<String>,
    ) -> Result<(), EngineError> {
        if live.is_empty() {
            return Ok(());
        }
        let query = ListQuery {
            after: Some(window.after_secs()),
            before: Some(window.before_secs()),
            include_spam_trash: true,
            ..ListQuery::default()
        };
        let mut listed: HashSet<String> = HashSet::new();
        let mut pages = self.gmail.list_messages(run.mailbox(), query);
        while let Some(page) = run.timed(Stage::List, pages.next()).await {
            listed.extend(page?.messages.into_iter().map(|m| m.id));
        }
        let vanished: Vec<String> = live.into_iter().filter(|id| !listed.contains(id)).collect();
        drop(listed);
        if vanished.is_empty() {
            return Ok(());
        }
        info!(
            messages = vanished.len(),
            "stored messages Gmail's listing no longer names: asking Gmail about each"
        );
        let batch_size = self.options.batch_messages.max(1);
        for chunk in vanished.chunks(batch_size) {
            let answers: Vec<(String, Result<gmail::MessageMeta, GmailError>)> =
                stream::iter(chunk.iter().cloned())
                    .map(|id| async move {
                        let answer = run
                            .timed(Stage::Fetch, self.gmail.message_minimal(run.mailbox(), &id))
                            .await;
                        (id, answer)
                    })
                    .buffer_unordered(ASKED_IN_FLIGHT)
                    .collect()
                    .await;
            let mut batch = Batch::default();
            for (id, answer) in answers {
                match answer {
                    Err(GmailError::NotFound { .. }) => batch.deletes.push(id),
                    Ok(meta) => batch.label_updates.push(LabelUpdate {
                        provider_message_id: id,
                        label_ids: meta.label_ids,
                        history_id: as_i64("historyId", meta.history_id).ok(),
                    }),
                    // Stored under an id Gmail refuses to be asked about: it
                    // stays as it is, and the run says so.
                    Err(e @ GmailError::InvalidId { .. }) => {
                        warn!(message_id = %id, error = %e, "a stored message's id was refused")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            batch.deletes.sort();
            batch
                .label_updates
                .sort_by(|a, b| a.provider_message_id.cmp(&b.provider_message_id));
            self.commit(run, &batch).await?;
        }
        Ok(())
    }
}
