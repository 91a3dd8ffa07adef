//! The per-mailbox chain lock that serialises appends.
//!
//! Key: the two-int4 advisory lock `(LEDGER_LOCK_CLASS, mailbox key)`, transaction-scoped
//! (`pg_advisory_xact_lock`), so it is released by COMMIT or ROLLBACK and can never leak.
//! The run lease of the ingest crate uses two-int4 keys too, under its own class
//! ("MRUN"), so the two never collide.

use sqlx::PgConnection;
use tracing::instrument;

/// First half of the ledger's advisory lock key: ASCII "LEDG".
pub const LEDGER_LOCK_CLASS: i32 = 0x4C45_4447;

/// Second half of the key: the mailbox id folded to 32 bits. Ids that fold to the same
/// value only share a lock (some extra waiting), never a chain.
pub const fn mailbox_lock_key(mailbox_id: i64) -> i32 {
    // Truncation is the point: fold the high half into the low half.
    (mailbox_id ^ (mailbox_id >> 32)) as i32
}

/// Block until this transaction holds the chain lock of `mailbox_id`.
#[instrument(skip_all)]
pub async fn lock_chain(conn: &mut PgConnection, mailbox_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LEDGER_LOCK_CLASS)
        .bind(mailbox_lock_key(mailbox_id))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_ids_map_to_themselves_and_large_ones_fold() {
        assert_eq!(mailbox_lock_key(1), 1);
        assert_eq!(mailbox_lock_key(123_456), 123_456);
        assert_ne!(mailbox_lock_key(1 << 32), 0);
    }
}
