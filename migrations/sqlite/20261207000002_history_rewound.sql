-- See migrations/postgres/20261207000002_history_rewound.sql.
ALTER TABLE mailboxes ADD COLUMN history_rewound_at TEXT;
