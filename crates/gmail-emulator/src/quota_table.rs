//! Gmail's quota tables: what each method costs and how many units a user and a
//! project get, in the two tables Google publishes.
//!
//! Google changed the Gmail API quota on 2026-05-01: Cloud projects created since
//! then get the 2026 table (dearer reads, a smaller per-user minute), older ones
//! keep the 2025 table. The emulator charges every request in the active table's
//! units, so a client can be tested against either. The limits the emulator
//! enforces are set in `Quota`; the figures here are Google's, for callers that
//! want to configure the emulator like the real service.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::EmulatorError;

/// Which of Google's quota tables the emulator charges by (JSON: "2025" / "2026").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum QuotaTable {
    /// Projects created before 2026-05-01.
    #[serde(rename = "2025")]
    Y2025,
    /// Projects created since 2026-05-01 (the default: what a new project gets).
    #[default]
    #[serde(rename = "2026")]
    Y2026,
}

impl QuotaTable {
    /// The table's name as used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            QuotaTable::Y2025 => "2025",
            QuotaTable::Y2026 => "2026",
        }
    }

    /// Units one call of `method` (e.g. "users.messages.get") costs. Methods
    /// without a published price cost 1.
    pub fn cost(self, method: &str) -> u32 {
        match (self, method) {
            (QuotaTable::Y2026, "users.threads.get") => 40,
            (QuotaTable::Y2026, "users.messages.get" | "users.messages.attachments.get") => 20,
            (_, "users.threads.get" | "users.threads.list") => 10,
            (
                _,
                "users.messages.get" | "users.messages.attachments.get" | "users.messages.list",
            ) => 5,
            (_, "users.history.list") => 2,
            _ => 1,
        }
    }

    /// Units per minute per user.
    pub fn user_units_per_minute(self) -> u32 {
        match self {
            QuotaTable::Y2025 => 15_000,
            QuotaTable::Y2026 => 6_000,
        }
    }

    /// Units per minute per project (every user together).
    pub fn project_units_per_minute(self) -> u32 {
        1_200_000
    }

    /// Units per day per project. In the 2026 table this is a billing
    /// threshold, not a refusal point.
    pub fn project_daily_units(self) -> u64 {
        match self {
            QuotaTable::Y2025 => 1_000_000_000,
            QuotaTable::Y2026 => 80_000_000,
        }
    }
}

impl fmt::Display for QuotaTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for QuotaTable {
    type Err = EmulatorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "2025" => Ok(QuotaTable::Y2025),
            "2026" => Ok(QuotaTable::Y2026),
            other => Err(EmulatorError::Config(format!(
                "unknown quota table {other:?}: expected \"2025\" or \"2026\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_each_table() {
        let t = QuotaTable::Y2026;
        assert_eq!(t.cost("users.messages.get"), 20);
        assert_eq!(t.cost("users.messages.attachments.get"), 20);
        assert_eq!(t.cost("users.threads.get"), 40);
        assert_eq!(t.cost("users.threads.list"), 10);
        assert_eq!(t.cost("users.messages.list"), 5);
        assert_eq!(t.cost("users.history.list"), 2);
        assert_eq!(t.cost("users.labels.list"), 1);
        assert_eq!(t.cost("users.getProfile"), 1);
        let t = QuotaTable::Y2025;
        assert_eq!(t.cost("users.messages.get"), 5);
        assert_eq!(t.cost("users.messages.attachments.get"), 5);
        assert_eq!(t.cost("users.threads.get"), 10);
        assert_eq!(t.cost("users.threads.list"), 10);
        assert_eq!(t.cost("users.messages.list"), 5);
        assert_eq!(t.cost("users.history.list"), 2);
        assert_eq!(t.cost("users.labels.list"), 1);
        assert_eq!(t.cost("users.getProfile"), 1);
    }

    #[test]
    fn names_parse_and_serialise_alike() {
        for t in [QuotaTable::Y2025, QuotaTable::Y2026] {
            assert_eq!(t.name().parse::<QuotaTable>().ok(), Some(t));
            assert_eq!(
                serde_json::to_string(&t).ok(),
                Some(format!("\"{}\"", t.name()))
            );
        }
        assert_eq!(QuotaTable::default(), QuotaTable::Y2026);
        let e = "2024".parse::<QuotaTable>().expect_err("unknown");
        assert!(e.to_string().contains("2025") && e.to_string().contains("2026"));
    }
}
