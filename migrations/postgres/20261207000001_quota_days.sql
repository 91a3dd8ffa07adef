-- Gmail quota units a Cloud project spent per quota day (the Pacific calendar
-- day: Google resets daily quotas at midnight Pacific time). Every process on
-- the database adds what it is about to spend, in chunks, and stops starting
-- requests before the day's total would pass --project-daily-units. See
-- crates/ingest/src/project_quota.rs.
CREATE TABLE project_quota_days (
    key   text   NOT NULL CHECK (key <> ''),
    day   date   NOT NULL,
    units bigint NOT NULL CHECK (units >= 0),
    PRIMARY KEY (key, day)
);
