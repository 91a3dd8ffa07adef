//! Rules the schema itself enforces, whatever the code does: the ledger is
//! append-only, one live run per mailbox, one terminal event per run, and
//! migrations can be applied again and concurrently.

mod common;

use common::{Writer, mailbox, message, thread};
use sqlx::{PgConnection, PgPool};

async fn run(conn: &mut PgConnection, mailbox_id: i64, status: &str) -> Result<i64, sqlx::Error> {
    let finished = if status == "running" {
        None
    } else {
        Some(chrono::Utc::now())
    };
    sqlx::query_scalar(
        "INSERT INTO sync_runs (mailbox_id, kind, status, finished_at) VALUES ($1, 'backfill', $2, $3)
         RETURNING id",
    )
    .bind(mailbox_id)
    .bind(status)
    .bind(finished)
    .fetch_one(conn)
    .await
}

async fn event(
    conn: &mut PgConnection,
    mailbox_id: i64,
    seq: i64,
    run_id: i64,
    event_type: &str,
) -> Result<(), sqlx::Error> {
    let zeros = "0".repeat(64);
    sqlx::query(
        "INSERT INTO ledger_events (mailbox_id, seq, run_id, event_type, subject_key, prev_hash, hash)
         VALUES ($1, $2, $3, $4, 'k', $5, $5)",
    )
    .bind(mailbox_id)
    .bind(seq)
    .bind(run_id)
    .bind(event_type)
    .bind(zeros)
    .execute(conn)
    .await
    .map(|_| ())
}

fn db_message(err: sqlx::Error) -> String {
    err.as_database_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_else(|| err.to_string())
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn ledger_rejects_update_delete_and_truncate(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let mb = mailbox(&pool).await;
    let r = run(&mut conn, mb, "running").await.unwrap();
    event(&mut conn, mb, 1, r, "sync.started").await.unwrap();

    for (sql, op) in [
        ("UPDATE ledger_events SET payload = '{\"x\":1}'", "UPDATE"),
        ("DELETE FROM ledger_events", "DELETE"),
        ("TRUNCATE ledger_events", "TRUNCATE"),
    ] {
        let err = sqlx::query(sql).execute(&mut *conn).await.expect_err(sql);
        let message = db_message(err);
        assert!(
            message.contains("append-only") && message.contains(op),
            "{sql}: unexpected error {message}"
        );
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_events")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn one_running_run_per_mailbox(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let mb = mailbox(&pool).await;
    run(&mut conn, mb, "running").await.unwrap();
    let err = run(&mut conn, mb, "running")
        .await
        .expect_err("second running run");
    assert_eq!(
        err.as_database_error().and_then(|e| e.constraint()),
        Some("sync_runs_one_running")
    );
    // Finished runs do not count.
    run(&mut conn, mb, "completed").await.unwrap();
    run(&mut conn, mb, "interrupted").await.unwrap();
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn one_terminal_event_per_run(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let mb = mailbox(&pool).await;
    let r = run(&mut conn, mb, "completed").await.unwrap();
    event(&mut conn, mb, 1, r, "sync.started").await.unwrap();
    event(&mut conn, mb, 2, r, "sync.completed").await.unwrap();
    for (seq, terminal) in [
        (3, "sync.completed"),
        (4, "sync.failed"),
        (5, "sync.interrupted"),
    ] {
        let err = event(&mut conn, mb, seq, r, terminal)
            .await
            .expect_err(terminal);
        assert_eq!(
            err.as_database_error().and_then(|e| e.constraint()),
            Some("ledger_events_one_terminal")
        );
    }
    // Non-terminal events are not limited.
    event(&mut conn, mb, 3, r, "message.ingested")
        .await
        .unwrap();
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn migrations_apply_twice_and_concurrently(pool: PgPool) {
    // sqlx::test already applied them once.
    ingest::schema::migrate(&pool).await.expect("second run");
    let (a, b) = tokio::join!(
        ingest::schema::migrate(&pool),
        ingest::schema::migrate(&pool)
    );
    a.expect("concurrent run a");
    b.expect("concurrent run b");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, ingest::schema::MIGRATOR.iter().count());
}

#[sqlx::test(migrations = false)]
async fn fresh_database_migrated_from_two_pools_at_once(pool: PgPool) {
    let options = pool.connect_options().as_ref().clone();
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        ingest::schema::migrate(&pool),
        ingest::schema::migrate(&other)
    );
    a.expect("pool a");
    b.expect("pool b");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name IN
           ('mailboxes', 'mail_threads', 'mail_messages', 'mail_attachments', 'blobs',
            'sync_runs', 'ledger_events')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 7);
}

/// Bodies are stored lz4-compressed wherever the server offers it (14+ with lz4),
/// and read back unchanged.
#[sqlx::test(migrations = "../../migrations/postgres")]
async fn message_bodies_use_lz4_where_the_server_has_it(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let w = Writer::start(&pool).await;
    let mb = w.mailbox_id();
    w.blobs().await;
    let t = w.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    let mut m = message(mb, t[0].id, "m1");
    let body: String = (0..4_000).map(|i| format!("line {i} é\n")).collect();
    m.body_text = Some(body.clone());
    w.upsert_messages(&[m]).await.unwrap();
    let (back, method): (String, Option<String>) = sqlx::query_as(
        "SELECT body_text, pg_column_compression(body_text) FROM mail_messages
         WHERE provider_message_id = 'm1'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(back, body);
    if version >= 140_000 {
        assert_eq!(method.as_deref(), Some("lz4"), "PostgreSQL {version}");
    }
}
