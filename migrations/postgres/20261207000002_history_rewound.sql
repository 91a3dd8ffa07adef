-- When a sync last found Gmail's historyId behind the stored cursor (the
-- mailbox restored or re-created at Google, or the address now another
-- account's) and started over from Gmail's: the mailbox is degraded until a
-- completeness check (verify --full) passes after that moment.
ALTER TABLE mailboxes ADD COLUMN history_rewound_at timestamptz;
