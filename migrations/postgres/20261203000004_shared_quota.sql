-- Quota budgets shared by every process on this database: one continuously
-- refilled token bucket per key (a Cloud project's Gmail budget). A process
-- reserves units in one statement (refill, then debit); a negative balance is
-- how long the reserver waits, at the bucket's rate. See
-- crates/ingest/src/project_quota.rs.
CREATE TABLE shared_quota (
    key         text             PRIMARY KEY CHECK (key <> ''),
    tokens      double precision NOT NULL,
    refilled_at timestamptz      NOT NULL
);
