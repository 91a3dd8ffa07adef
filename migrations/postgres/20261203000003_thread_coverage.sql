-- How far a thread's stored historyId vouches for it. A first backfill learns
-- a new thread's messages in its window from messages.list and fetches them
-- raw, without threads.get (10 quota units a thread saved), so it knows the
-- thread is complete only within that window: every in-scope message of the
-- thread with internalDate in [complete_since, complete_until) was stored at
-- history_id. NULL bounds are open: both NULL means the whole thread, as a
-- threads.get of the thread proves. A later backfill skips the thread only
-- when the historyId is unchanged and these bounds cover its own window.
ALTER TABLE mail_threads
    ADD COLUMN complete_since timestamptz,
    ADD COLUMN complete_until timestamptz,
    ADD CONSTRAINT mail_threads_coverage
        CHECK (complete_since IS NULL OR complete_until IS NULL OR complete_since < complete_until);
