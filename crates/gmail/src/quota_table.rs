//! Gmail's quota tables: what each method costs and how many units a user and a project may
//! spend per minute (and a project per day). Google changed the table on 2026-05-01, and which
//! one applies depends on the Cloud project, not on anything mailingest can ask Gmail; so the
//! table is data chosen by the operator, and everything that counts, paces or predicts units
//! (the limiter, the metrics, the shared project bucket, the engines' cost models) reads this
//! one type instead of a constant of its own.
//!
//! Sources (read 2026-12-07):
//! - developers.google.com/workspace/gmail/api/reference/quota: the 2026 table (6,000 units a
//!   minute per user per project, 1,200,000 a minute per project, an 80,000,000-unit daily
//!   billing threshold per project; messages.get 20, threads.get 40, messages.list 5,
//!   history.list 2). messages.attachments.get 20, threads.list 10, labels.list 1 and
//!   getProfile 1 are as the issue that introduced this table states them; the third-party
//!   summaries we could read confirm only the first four costs.
//! - the same page before May 2026 (the 2025 table, still served to projects that used the
//!   API between November 2025 and April 2026): 15,000 units a minute per user,
//!   1,200,000 a minute per project; messages.get, messages.list and attachments.get 5,
//!   threads.get and threads.list 10, history.list 2, labels.list and getProfile 1. Its daily
//!   limit was 1,000,000,000 units per project.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::metrics::Method;

/// One of Gmail's quota tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum QuotaTable {
    /// Projects that used the Gmail API between November 2025 and April 2026.
    #[serde(rename = "2025")]
    Y2025,
    /// Every Cloud project created since 2026-05-01 (and, from 2027-04-01, every project not
    /// on the paid scaled tier).
    #[default]
    #[serde(rename = "2026")]
    Y2026,
}

impl QuotaTable {
    pub const ALL: [QuotaTable; 2] = [QuotaTable::Y2026, QuotaTable::Y2025];

    /// "2026" or "2025", as `--quota-table` spells it.
    pub fn name(self) -> &'static str {
        match self {
            QuotaTable::Y2025 => "2025",
            QuotaTable::Y2026 => "2026",
        }
    }

    /// Units one call of `method` is charged.
    pub fn cost(self, method: Method) -> u32 {
        use Method as M;
        match (self, method) {
            (_, M::GetProfile | M::LabelsList) => 1,
            (_, M::HistoryList) => 2,
            (_, M::MessagesList) => 5,
            (_, M::ThreadsList) => 10,
            (QuotaTable::Y2025, M::MessagesGet | M::AttachmentsGet) => 5,
            (QuotaTable::Y2025, M::ThreadsGet) => 10,
            (QuotaTable::Y2026, M::MessagesGet | M::AttachmentsGet) => 20,
            (QuotaTable::Y2026, M::ThreadsGet) => 40,
        }
    }

    /// Units a minute one user (mailbox) may spend per project.
    pub fn user_units_per_minute(self) -> u32 {
        match self {
            QuotaTable::Y2025 => 15_000,
            QuotaTable::Y2026 => 6_000,
        }
    }

    /// Units a minute the whole project may spend.
    pub fn project_units_per_minute(self) -> u32 {
        1_200_000
    }

    /// Units a project may spend per day (midnight to midnight, Pacific time): the 2026
    /// table's billing threshold, the 2025 table's daily limit.
    pub fn project_daily_units(self) -> u64 {
        match self {
            QuotaTable::Y2025 => 1_000_000_000,
            QuotaTable::Y2026 => 80_000_000,
        }
    }

    /// Units a stored message costs to fetch once (messages.get, format raw).
    pub fn message_get_units(self) -> u32 {
        self.cost(Method::MessagesGet)
    }
}

impl fmt::Display for QuotaTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--quota-table` value that names no table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown quota table '{0}': the tables are 2026 (Cloud projects created since May 2026) and 2025 (projects that used the Gmail API between Nov 2025 and Apr 2026)"
)]
pub struct UnknownQuotaTable(pub String);

impl FromStr for QuotaTable {
    type Err = UnknownQuotaTable;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "2026" => Ok(QuotaTable::Y2026),
            "2025" => Ok(QuotaTable::Y2025),
            other => Err(UnknownQuotaTable(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_2026_table_matches_googles_page() {
        let t = QuotaTable::Y2026;
        assert_eq!(t.cost(Method::MessagesGet), 20);
        assert_eq!(t.cost(Method::AttachmentsGet), 20);
        assert_eq!(t.cost(Method::ThreadsGet), 40);
        assert_eq!(t.cost(Method::ThreadsList), 10);
        assert_eq!(t.cost(Method::MessagesList), 5);
        assert_eq!(t.cost(Method::HistoryList), 2);
        assert_eq!(t.cost(Method::LabelsList), 1);
        assert_eq!(t.cost(Method::GetProfile), 1);
        assert_eq!(t.user_units_per_minute(), 6_000);
        assert_eq!(t.project_units_per_minute(), 1_200_000);
        assert_eq!(t.project_daily_units(), 80_000_000);
    }

    #[test]
    fn the_2025_table_keeps_the_old_figures() {
        let t = QuotaTable::Y2025;
        assert_eq!(t.cost(Method::MessagesGet), 5);
        assert_eq!(t.cost(Method::AttachmentsGet), 5);
        assert_eq!(t.cost(Method::ThreadsGet), 10);
        assert_eq!(t.cost(Method::ThreadsList), 10);
        assert_eq!(t.cost(Method::MessagesList), 5);
        assert_eq!(t.cost(Method::HistoryList), 2);
        assert_eq!(t.cost(Method::LabelsList), 1);
        assert_eq!(t.cost(Method::GetProfile), 1);
        assert_eq!(t.user_units_per_minute(), 15_000);
    }

    #[test]
    fn names_parse_back_and_unknown_names_list_the_tables() {
        for t in QuotaTable::ALL {
            assert_eq!(t.name().parse::<QuotaTable>(), Ok(t));
        }
        assert_eq!(QuotaTable::default(), QuotaTable::Y2026);
        let err = "2024".parse::<QuotaTable>().unwrap_err().to_string();
        assert!(err.contains("'2024'") && err.contains("2026") && err.contains("2025"));
        assert!(!err.contains('\n'));
    }
}
