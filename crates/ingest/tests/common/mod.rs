//! Fixtures shared by the repository tests: rows that satisfy the foreign keys.
#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use ingest::mime::Address;
use ingest::repo::{self, AttachmentUpsert, BlobUpsert, Coverage, MessageUpsert, ThreadUpsert};
use sqlx::PgConnection;

pub const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

pub async fn mailbox(conn: &mut PgConnection) -> i64 {
    repo::pg::upsert_mailbox(conn, "org-1", "User@Example.com")
        .await
        .expect("mailbox")
        .0
}

pub async fn blobs(conn: &mut PgConnection) {
    let rows = [SHA_A, SHA_B].map(|sha| BlobUpsert {
        sha256: sha.to_owned(),
        size: 10,
        storage_key: format!("org-1/sha256/{}/{}/{sha}", &sha[..2], &sha[2..4]),
    });
    repo::pg::upsert_blobs(conn, &rows).await.expect("blobs");
}

pub fn thread(mailbox_id: i64, id: &str) -> ThreadUpsert {
    ThreadUpsert {
        mailbox_id,
        provider_thread_id: id.to_owned(),
        history_id: Some(1000),
        coverage: Coverage::WHOLE,
        snippet: Some("hello".into()),
    }
}

pub fn message(mailbox_id: i64, thread_id: i64, id: &str) -> MessageUpsert {
    MessageUpsert {
        mailbox_id,
        thread_id,
        provider_message_id: id.to_owned(),
        provider_thread_id: "t1".into(),
        rfc822_message_id: Some(format!("{id}@example.com")),
        in_reply_to: None,
        references: vec!["a@example.com".into(), "b@example.com".into()],
        subject: Some("Grüße \u{1F600}".into()),
        from_addrs: vec![Address {
            name: Some("Ann".into()),
            address: Some("ann@example.com".into()),
        }],
        to_addrs: vec![],
        cc_addrs: vec![],
        bcc_addrs: vec![],
        reply_to_addrs: vec![],
        sent_at: Some(Utc.timestamp_opt(1_700_000_000, 0).unwrap()),
        internal_date: Utc.timestamp_millis_opt(1_700_000_000_123).unwrap(),
        label_ids: vec!["INBOX".into(), "UNREAD".into()],
        snippet: Some("hello".into()),
        size_estimate: Some(1234),
        history_id: Some(1001),
        body_text: Some("body\0with nul".into()),
        body_html: None,
        raw_sha256: SHA_A.into(),
        raw_size: 10,
    }
}

pub fn attachment(message_id: i64, part_id: &str) -> AttachmentUpsert {
    AttachmentUpsert {
        message_id,
        part_id: part_id.to_owned(),
        filename: Some("../../etc/passwd".into()),
        mime_type: "application/pdf".into(),
        content_id: None,
        disposition: Some("attachment".into()),
        size: 10,
        sha256: SHA_B.into(),
    }
}
