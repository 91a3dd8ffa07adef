-- mailingest import (issue 28): seeding a mailbox from a Google Takeout mbox
-- is a run of its own kind, holding the mailbox's lease like a backfill.
ALTER TABLE sync_runs
    DROP CONSTRAINT sync_runs_kind_check,
    ADD CONSTRAINT sync_runs_kind_check CHECK (kind IN ('backfill', 'sync', 'gc', 'import'));
