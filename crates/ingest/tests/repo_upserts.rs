//! The repository's idempotency: one row per natural key, honest Inserted /
//! Updated / Unchanged outcomes, and no writes for unchanged rows. Reached
//! through the repository's traits. What reads stored rows as PostgreSQL
//! stores them (tuple versions, `text[]` and `jsonb` columns) runs on
//! PostgreSQL only; the rest runs on SQLite too (`…_sqlite`).

mod common;

use common::*;
use ingest::repo::prelude::*;
use ingest::repo::{LabelUpdate, Outcome, PgRepository};
use sqlx::{PgConnection, PgPool};

/// The physical version of a row: changes whenever Postgres writes a new tuple.
async fn tuple_version(conn: &mut PgConnection, table: &str, id: i64) -> (String, String) {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT ctid::text, xmin::text FROM {table} WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(conn)
    .await
    .unwrap()
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(conn)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn same_rows_twice_are_unchanged_and_write_nothing(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let w = Writer::start(&pool).await;
    let mb = w.mailbox_id();
    w.blobs().await;

    let t = w.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    assert_eq!(t[0].outcome, Outcome::Inserted);
    let m = w
        .upsert_messages(&[message(mb, t[0].id, "m1")])
        .await
        .unwrap();
    assert_eq!(m[0].outcome, Outcome::Inserted);
    let a = w
        .upsert_attachments(&[attachment(m[0].id, "1")])
        .await
        .unwrap();
    assert_eq!(a[0].outcome, Outcome::Inserted);

    let before = (
        tuple_version(&mut conn, "mail_threads", t[0].id).await,
        tuple_version(&mut conn, "mail_messages", m[0].id).await,
        tuple_version(&mut conn, "mail_attachments", a[0].id).await,
    );

    let t2 = w.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    let m2 = w
        .upsert_messages(&[message(mb, t[0].id, "m1")])
        .await
        .unwrap();
    let a2 = w
        .upsert_attachments(&[attachment(m[0].id, "1")])
        .await
        .unwrap();
    assert_eq!((t2[0].outcome, t2[0].id), (Outcome::Unchanged, t[0].id));
    assert_eq!((m2[0].outcome, m2[0].id), (Outcome::Unchanged, m[0].id));
    assert_eq!((a2[0].outcome, a2[0].id), (Outcome::Unchanged, a[0].id));

    let after = (
        tuple_version(&mut conn, "mail_threads", t[0].id).await,
        tuple_version(&mut conn, "mail_messages", m[0].id).await,
        tuple_version(&mut conn, "mail_attachments", a[0].id).await,
    );
    assert_eq!(
        before, after,
        "an unchanged upsert must not write a new tuple"
    );

    // And the statistics agree: no tuple was updated by the unchanged pass.
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .unwrap();
    let (updated, dead): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(n_tup_upd), 0)::bigint, coalesce(sum(n_dead_tup), 0)::bigint
         FROM pg_stat_user_tables
         WHERE relname IN ('mail_threads', 'mail_messages', 'mail_attachments')",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!((updated, dead), (0, 0));

    for table in [
        "mail_threads",
        "mail_messages",
        "mail_attachments",
        "blobs",
        "mailboxes",
    ] {
        let expected = if table == "blobs" { 2 } else { 1 };
        assert_eq!(count(&mut conn, table).await, expected, "{table}");
    }
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_changed_field_is_updated_in_place(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let w = Writer::start(&pool).await;
    let mb = w.mailbox_id();
    w.blobs().await;
    let t = w.upsert_threads(&[thread(mb, "t1")]).await.unwrap();

    let mut changed_thread = thread(mb, "t1");
    changed_thread.history_id = Some(2000);
    let t2 = w.upsert_threads(&[changed_thread]).await.unwrap();
    assert_eq!((t2[0].outcome, t2[0].id), (Outcome::Updated, t[0].id));

    let m = w
        .upsert_messages(&[message(mb, t[0].id, "m1")])
        .await
        .unwrap();
    let mut relabelled = message(mb, t[0].id, "m1");
    relabelled.label_ids = vec!["INBOX".into()];
    let m2 = w.upsert_messages(&[relabelled]).await.unwrap();
    assert_eq!((m2[0].outcome, m2[0].id), (Outcome::Updated, m[0].id));
    let labels: Vec<String> =
        sqlx::query_scalar("SELECT label_ids FROM mail_messages WHERE id = $1")
            .bind(m[0].id)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(labels, ["INBOX"]);

    let a = w
        .upsert_attachments(&[attachment(m[0].id, "1")])
        .await
        .unwrap();
    let mut renamed = attachment(m[0].id, "1");
    renamed.filename = Some("report.pdf".into());
    let a2 = w.upsert_attachments(&[renamed]).await.unwrap();
    assert_eq!((a2[0].outcome, a2[0].id), (Outcome::Updated, a[0].id));

    assert_eq!(count(&mut conn, "mail_threads").await, 1);
    assert_eq!(count(&mut conn, "mail_messages").await, 1);
    assert_eq!(count(&mut conn, "mail_attachments").await, 1);
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn a_batch_reports_each_row_in_input_order(pool: PgPool) {
    a_batch_reports_each_row_in_input_order_on(Writer::start(&pool).await).await;
}

#[tokio::test]
async fn a_batch_reports_each_row_in_input_order_sqlite() {
    a_batch_reports_each_row_in_input_order_on(Writer::start_sqlite().await).await;
}

async fn a_batch_reports_each_row_in_input_order_on(w: Writer) {
    let mb = w.mailbox_id();
    w.blobs().await;
    let t = w.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    w.upsert_messages(&[message(mb, t[0].id, "m2")])
        .await
        .unwrap();

    let mut m3 = message(mb, t[0].id, "m3");
    m3.subject = Some("first".into());
    let mut m3_again = message(mb, t[0].id, "m3");
    m3_again.subject = Some("second".into());
    let mut changed_m2 = message(mb, t[0].id, "m2");
    changed_m2.snippet = Some("new snippet".into());
    let batch = [message(mb, t[0].id, "m1"), changed_m2, m3, m3_again];
    let out = w.upsert_messages(&batch).await.unwrap();
    let outcomes: Vec<Outcome> = out.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Inserted,
            Outcome::Updated,
            Outcome::Inserted,
            Outcome::Inserted
        ]
    );
    assert_eq!(out[2].id, out[3].id, "a key repeated in a batch is one row");
    let subject: String = w.subject(out[3].id).await;
    assert_eq!(subject, "second", "the last occurrence in a batch wins");
    assert_eq!(w.count("mail_messages").await, 3);

    let again = w.upsert_messages(&batch[..2]).await.unwrap();
    assert!(again.iter().all(|r| r.outcome == Outcome::Unchanged));
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn text_with_nul_and_arrays_round_trip(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let w = Writer::start(&pool).await;
    let mb = w.mailbox_id();
    w.blobs().await;
    let t = w.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    let m = w
        .upsert_messages(&[message(mb, t[0].id, "m1")])
        .await
        .unwrap();
    let (body, refs, subject, from): (String, Vec<String>, String, serde_json::Value) =
        sqlx::query_as(
            r#"SELECT body_text, "references", subject, from_addrs FROM mail_messages WHERE id = $1"#,
        )
        .bind(m[0].id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(body, "bodywith nul");
    assert_eq!(refs, ["a@example.com", "b@example.com"]);
    assert_eq!(subject, "Grüße \u{1F600}");
    assert_eq!(
        from,
        serde_json::json!([{"name": "Ann", "address": "ann@example.com"}])
    );
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn labels_update_and_soft_delete_report_only_real_changes(pool: PgPool) {
    labels_update_and_soft_delete_report_only_real_changes_on(Writer::start(&pool).await).await;
}

#[tokio::test]
async fn labels_update_and_soft_delete_report_only_real_changes_sqlite() {
    labels_update_and_soft_delete_report_only_real_changes_on(Writer::start_sqlite().await).await;
}

async fn labels_update_and_soft_delete_report_only_real_changes_on(w: Writer) {
    let mb = w.mailbox_id();
    w.blobs().await;
    let t = w.upsert_threads(&[thread(mb, "t1")]).await.unwrap();
    w.upsert_messages(&[message(mb, t[0].id, "m1"), message(mb, t[0].id, "m2")])
        .await
        .unwrap();

    let same = LabelUpdate {
        provider_message_id: "m1".into(),
        label_ids: vec!["INBOX".into(), "UNREAD".into()],
        history_id: Some(1001),
    };
    let changed = LabelUpdate {
        provider_message_id: "m2".into(),
        label_ids: vec!["STARRED".into()],
        history_id: Some(1005),
    };
    let unknown = LabelUpdate {
        provider_message_id: "nope".into(),
        label_ids: vec![],
        history_id: None,
    };
    let updated = w.update_labels(&[same, changed, unknown]).await.unwrap();
    assert_eq!(updated, ["m2"]);

    let now = chrono::Utc::now();
    let deleted = w
        .soft_delete_messages(&["m1".into(), "nope".into()], now)
        .await
        .unwrap();
    assert_eq!(deleted, ["m1"]);
    let again = w.soft_delete_messages(&["m1".into()], now).await.unwrap();
    assert!(again.is_empty(), "deleting twice changes nothing");
    assert_eq!(
        w.count("mail_messages").await,
        2,
        "soft delete keeps the row"
    );
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn mailbox_upsert_is_idempotent_and_case_insensitive(pool: PgPool) {
    mailbox_upsert_is_idempotent_and_case_insensitive_on(&PgRepository::new(pool)).await;
}

#[tokio::test]
async fn mailbox_upsert_is_idempotent_and_case_insensitive_sqlite() {
    let w = Writer::start_sqlite().await;
    mailbox_upsert_is_idempotent_and_case_insensitive_on(w.repo()).await;
}

async fn mailbox_upsert_is_idempotent_and_case_insensitive_on(repo: &dyn Repository) {
    let (a, first) = repo
        .register_mailbox("org", "Ann@Example.com")
        .await
        .unwrap();
    let (b, second) = repo
        .register_mailbox("org", "ann@example.com")
        .await
        .unwrap();
    let (c, _) = repo
        .register_mailbox("other-org", "ann@example.com")
        .await
        .unwrap();
    assert_eq!((first, second), (Outcome::Inserted, Outcome::Unchanged));
    assert_eq!(a, b);
    assert_ne!(a, c, "the natural key is (org, email)");
}
