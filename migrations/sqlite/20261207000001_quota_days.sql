-- Gmail quota units a Cloud project spent per quota day (the Pacific calendar
-- day, YYYY-MM-DD: Google resets daily quotas at midnight Pacific time). See
-- migrations/postgres/20261207000001_quota_days.sql and
-- crates/ingest/src/project_quota.rs.
CREATE TABLE project_quota_days (
    key   TEXT    NOT NULL CHECK (key <> ''),
    day   TEXT    NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    units INTEGER NOT NULL CHECK (units >= 0),
    PRIMARY KEY (key, day)
) STRICT;
