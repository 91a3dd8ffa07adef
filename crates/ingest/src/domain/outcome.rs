//! What an upsert did to each row: the evidence behind "a re-run changed nothing".

use serde::Serialize;

/// The effect of one upsert on one natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No row had this natural key; one was created.
    Inserted,
    /// A row existed and differed; it was rewritten.
    Updated,
    /// A row existed and was identical; nothing was written.
    Unchanged,
}

/// The outcome for one input row, with the surrogate id of the stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpsertResult {
    pub id: i64,
    pub outcome: Outcome,
}

/// Inserted / updated / unchanged tallies, as the run summary reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl OutcomeCounts {
    pub fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Inserted => self.inserted += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }

    pub fn add(&mut self, other: &OutcomeCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }

    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.unchanged
    }
}
