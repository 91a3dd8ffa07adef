-- The run lease's lock file, and an index for verify (first released inside
-- 20261204000001_schema.sql, which is back to its first shape: a migration is
-- never edited once on main, since sqlx refuses a database whose applied
-- migration's checksum no longer matches; crates/ingest/src/repo/sqlite/schema.rs
-- recognises databases created by that edited file).

-- the name of the lock file the run's process holds while it lives
-- (crates/ingest/src/repo/sqlite/runs.rs); SQLite has no advisory locks
ALTER TABLE sync_runs ADD COLUMN
    lock_token       TEXT    CHECK (lock_token IS NULL OR (length(lock_token) = 32 AND lock_token NOT GLOB '*[^0-9a-f]*'));

-- verify's ledger/table agreement looks events up by subject (SQLite has no hash join)
CREATE INDEX ledger_events_subject ON ledger_events (mailbox_id, event_type, subject_key);
