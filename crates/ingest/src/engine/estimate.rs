//! `backfill --estimate`: the price of a backfill before paying it. On the 2026 table a
//! message costs 20 units and a mailbox gets 6,000 a minute, so a large window is hours of
//! quota; the operator should see that first. The estimate lists the window with
//! messages.list only (5 units per 500 ids, no get), compares the ids with what is stored, and
//! applies the backfill's cost model (`backfill.rs`'s header) with the client's quota table and
//! pace. It writes nothing and takes no lease.
//!
//! What it cannot see without paying for it: label changes of stored threads (a history page
//! or a per-label listing on the 2026 table, threads.get per changed thread on the 2025
//! table) and messages that arrive meanwhile. Both are small next to the gets.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt;
use gmail::{ListQuery, Method, QuotaTable};
use serde::Serialize;

use super::{BackfillRequest, Engine, EngineError, MailboxRef};

/// Ids per list page (Gmail's maximum, what the backfill asks for).
const PAGE: u64 = 500;

/// What a backfill of a window is expected to cost.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillEstimate {
    pub mailbox: String,
    /// The quota table the units are counted in.
    pub quota_table: QuotaTable,
    /// Messages in the window (in scope: SPAM and TRASH only when asked for).
    pub messages_in_window: u64,
    pub threads_in_window: u64,
    /// Of those, messages already stored.
    pub stored: u64,
    /// Messages the backfill will fetch (one raw messages.get each).
    pub to_fetch: u64,
    /// Stored threads that gain messages: their labels are reconciled too.
    pub threads_to_reconcile: u64,
    /// Units per method the backfill is expected to spend.
    pub units_by_method: BTreeMap<&'static str, u64>,
    /// Their sum.
    pub units: u64,
    /// Least wall time the quota allows at the client's pace, seconds (round trips not
    /// counted).
    pub quota_seconds: f64,
    /// What this estimate itself spent (the listing).
    pub estimate_units: u64,
}

impl Engine {
    /// Lists `request`'s window and prices its backfill.
    pub async fn estimate_backfill(
        &self,
        request: &BackfillRequest,
    ) -> Result<BackfillEstimate, EngineError> {
        let email = request.mailbox.email();
        let table = self.gmail.quota_table();
        let query = ListQuery {
            after: Some(request.window.after_secs()),
            before: Some(request.window.before_secs()),
            include_spam_trash: request.include_spam_trash,
            ..ListQuery::default()
        };
        let mut by_thread: HashMap<String, Vec<String>> = HashMap::new();
        let mut pages = self.gmail.list_messages(email, query);
        let mut list_pages = 0u64;
        while let Some(page) = pages.next().await {
            list_pages += 1;
            for m in page?.messages {
                by_thread.entry(m.thread_id).or_default().push(m.id);
            }
        }
        let ids: Vec<String> = by_thread.values().flatten().cloned().collect();
        let stored = match self.mailbox_id(&request.mailbox).await? {
            Some(id) => self.repo.stored_message_ids(id, &ids).await?,
            None => HashSet::new(),
        };
        let model = CostModel {
            table,
            threads: by_thread.len() as u64,
            messages: ids.len() as u64,
            to_fetch: ids.iter().filter(|id| !stored.contains(*id)).count() as u64,
            threads_to_reconcile: by_thread
                .values()
                .filter(|ids| {
                    ids.iter().any(|id| stored.contains(id))
                        && ids.iter().any(|id| !stored.contains(id))
                })
                .count() as u64,
        };
        let units_by_method = model.units_by_method();
        let units = units_by_method.values().sum();
        Ok(BackfillEstimate {
            mailbox: email.to_owned(),
            quota_table: table,
            messages_in_window: model.messages,
            threads_in_window: model.threads,
            stored: stored.len() as u64,
            to_fetch: model.to_fetch,
            threads_to_reconcile: model.threads_to_reconcile,
            units_by_method,
            units,
            quota_seconds: self.gmail.quota_config().pace_seconds(units as f64),
            estimate_units: list_pages * u64::from(table.cost(Method::MessagesList)),
        })
    }

    /// The mailbox's row id when it is registered; never registers it.
    async fn mailbox_id(&self, mailbox: &MailboxRef) -> Result<Option<i64>, EngineError> {
        if let MailboxRef::Known { id, .. } = mailbox {
            return Ok(Some(*id));
        }
        let email = mailbox.email();
        Ok(self
            .repo
            .list_mailboxes(&self.org)
            .await?
            .into_iter()
            .find(|m| m.provider_email == email)
            .map(|m| m.id))
    }
}

/// The backfill's cost model over a listed window (see `backfill.rs`).
#[derive(Debug, Clone, Copy)]
struct CostModel {
    table: QuotaTable,
    threads: u64,
    messages: u64,
    to_fetch: u64,
    threads_to_reconcile: u64,
}

impl CostModel {
    fn units_by_method(&self) -> BTreeMap<&'static str, u64> {
        let cost = |m: Method| u64::from(self.table.cost(m));
        let pages = |n: u64| n.div_ceil(PAGE).max(1);
        let mut out = BTreeMap::new();
        out.insert(Method::GetProfile.name(), cost(Method::GetProfile));
        // Every run lists the mailbox's labels when it starts (`labels.rs`).
        out.insert(Method::LabelsList.name(), cost(Method::LabelsList));
        out.insert(
            Method::ThreadsList.name(),
            pages(self.threads) * cost(Method::ThreadsList),
        );
        if self.to_fetch > 0 {
            // Which messages of a thread are in the window comes from messages.list.
            out.insert(
                Method::MessagesList.name(),
                pages(self.messages) * cost(Method::MessagesList),
            );
            out.insert(
                Method::MessagesGet.name(),
                self.to_fetch * cost(Method::MessagesGet),
            );
        }
        if self.threads_to_reconcile > 0 {
            if cost(Method::ThreadsGet) > 2 * cost(Method::MessagesList) {
                // Labels from history since the cursor: a page is usually enough.
                out.insert(Method::HistoryList.name(), cost(Method::HistoryList));
            } else {
                out.insert(
                    Method::ThreadsGet.name(),
                    self.threads_to_reconcile * cost(Method::ThreadsGet),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_backfill_costs_a_get_per_message_plus_listing() {
        for (table, get) in [(QuotaTable::Y2026, 20), (QuotaTable::Y2025, 5)] {
            let m = CostModel {
                table,
                threads: 600,
                messages: 1_000,
                to_fetch: 1_000,
                threads_to_reconcile: 0,
            };
            let by = m.units_by_method();
            let units: u64 = by.values().sum();
            // getProfile, labels.list, 2 pages × 10, 2 pages × 5, 1,000 gets.
            assert_eq!(units, 1 + 1 + 20 + 10 + 1_000 * get, "{table}: {by:?}");
            assert!(units as f64 / 1_000.0 <= f64::from(get as u32) + 0.05);
        }
    }

    #[test]
    fn an_unchanged_window_costs_the_listing_only() {
        let m = CostModel {
            table: QuotaTable::Y2026,
            threads: 600,
            messages: 1_000,
            to_fetch: 0,
            threads_to_reconcile: 0,
        };
        assert_eq!(m.units_by_method().values().sum::<u64>(), 1 + 1 + 20);
    }

    #[test]
    fn stored_threads_gaining_mail_cost_a_history_page_on_2026_and_threads_get_on_2025() {
        let m = |table| CostModel {
            table,
            threads: 10,
            messages: 30,
            to_fetch: 4,
            threads_to_reconcile: 3,
        };
        let new = m(QuotaTable::Y2026).units_by_method();
        assert_eq!(new.get("history.list"), Some(&2));
        assert_eq!(new.get("threads.get"), None);
        let old = m(QuotaTable::Y2025).units_by_method();
        assert_eq!(old.get("threads.get"), Some(&30));
        assert_eq!(old.get("history.list"), None);
    }
}
