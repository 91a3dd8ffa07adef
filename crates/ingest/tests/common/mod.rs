//! Fixtures shared by the repository tests: rows that satisfy the foreign keys,
//! and a [`Writer`] that stores them through the repository's traits.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ingest::mime::Address;
use ingest::repo::prelude::*;
use ingest::repo::{
    AttachmentUpsert, BlobUpsert, Coverage, HeldRun, LabelUpdate, MessageUpsert, PgRepository,
    RepoError, RunKind, RunStart, SqliteRepository, ThreadUpsert, UpsertResult,
};
use sqlx::{PgPool, SqlitePool};
use tempfile::TempDir;

pub const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// Registers the test's mailbox, through the repository's traits.
pub async fn mailbox(pool: &PgPool) -> i64 {
    register(&PgRepository::new(pool.clone())).await
}

async fn register(repo: &dyn Repository) -> i64 {
    repo.register_mailbox("org-1", "User@Example.com")
        .await
        .expect("mailbox")
        .0
}

/// The raw pool of a writer's database, for what the traits do not offer
/// (counting rows).
enum Raw {
    Pg(PgPool),
    Sqlite(SqlitePool, TempDir),
}

/// Writes as a run does, through the repository's traits: a run holding the
/// test's mailbox, and each call one fenced transaction, committed.
pub struct Writer {
    repo: Arc<dyn Repository>,
    run: HeldRun,
    raw: Raw,
}

impl Writer {
    /// On the PostgreSQL database of `pool`.
    pub async fn start(pool: &PgPool) -> Writer {
        Writer::on(
            Arc::new(PgRepository::new(pool.clone())),
            Raw::Pg(pool.clone()),
        )
        .await
    }

    /// On a fresh SQLite database in a directory of its own.
    pub async fn start_sqlite() -> Writer {
        let dir = TempDir::new().expect("temp dir");
        let repo = SqliteRepository::open(&dir.path().join("mailingest.db"), 4)
            .await
            .expect("open sqlite");
        repo.migrate().await.expect("migrate sqlite");
        let raw = Raw::Sqlite(repo.pool().clone(), dir);
        Writer::on(Arc::new(repo), raw).await
    }

    async fn on(repo: Arc<dyn Repository>, raw: Raw) -> Writer {
        let mailbox_id = register(repo.as_ref()).await;
        let run = repo
            .start_run(&RunStart {
                mailbox_id,
                kind: RunKind::Backfill,
                window: None,
                start_history_id: None,
                stale_after: Duration::from_secs(600),
            })
            .await
            .expect("run");
        Writer { repo, run, raw }
    }

    pub fn repo(&self) -> &dyn Repository {
        self.repo.as_ref()
    }

    /// Rows in `table`.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match &self.raw {
            Raw::Pg(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap(),
            Raw::Sqlite(pool, _) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    }

    /// The subject of the stored message with row id `id`.
    pub async fn subject(&self, id: i64) -> String {
        let sql = "SELECT subject FROM mail_messages WHERE id = $1";
        match &self.raw {
            Raw::Pg(pool) => sqlx::query_scalar(sql).bind(id).fetch_one(pool).await,
            Raw::Sqlite(pool, _) => sqlx::query_scalar(sql).bind(id).fetch_one(pool).await,
        }
        .unwrap()
    }

    pub fn mailbox_id(&self) -> i64 {
        self.run.fence.mailbox_id
    }

    async fn begin(&self) -> Result<Box<dyn RepoTx>, RepoError> {
        self.repo.begin(self.run.fence).await
    }

    /// Records the two blobs the fixtures reference.
    pub async fn blobs(&self) {
        let rows = [SHA_A, SHA_B].map(|sha| BlobUpsert {
            sha256: sha.to_owned(),
            size: 10,
            storage_key: format!("org-1/sha256/{}/{}/{sha}", &sha[..2], &sha[2..4]),
        });
        let mut tx = self.begin().await.expect("begin");
        tx.upsert_blobs(&rows).await.expect("blobs");
        tx.commit().await.expect("commit");
    }

    pub async fn upsert_threads(
        &self,
        rows: &[ThreadUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError> {
        let mut tx = self.begin().await?;
        let out = tx.upsert_threads(rows).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn upsert_messages(
        &self,
        rows: &[MessageUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError> {
        let mut tx = self.begin().await?;
        let out = tx.upsert_messages(rows).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn upsert_attachments(
        &self,
        rows: &[AttachmentUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError> {
        let mut tx = self.begin().await?;
        let out = tx.upsert_attachments(rows).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn update_labels(&self, updates: &[LabelUpdate]) -> Result<Vec<String>, RepoError> {
        let mut tx = self.begin().await?;
        let out = tx.update_labels(updates).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn soft_delete_messages(
        &self,
        provider_message_ids: &[String],
        deleted_at: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError> {
        let mut tx = self.begin().await?;
        let out = tx
            .soft_delete_messages(provider_message_ids, deleted_at)
            .await?;
        tx.commit().await?;
        Ok(out)
    }
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
