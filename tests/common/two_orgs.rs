//! Two orgs in one database and one store: the bed every "an org is a wall"
//! test starts from. Org A serves ann@ and cat@, org B serves bob@ and cat@
//! (one address in both orgs, as two rows), each backed up under its own
//! prefix. What a command run for A must leave alone of B is captured here
//! once: B's rows ([`TwoOrgs::rows_of`]), the files under B's prefix
//! ([`TwoOrgs::files_of`]) and the Gmail requests made for B's own address
//! (the emulator counts requests per `quotaUser`, which our client sets to the
//! mailbox address). The store is a directory, or with [`TwoOrgs::on_s3`] a
//! prefix of the S3 test server's bucket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

use gmail_emulator::EmulatorConfig;

use super::{Backend, TestBed};

pub const ORG_A: &str = "org-a";
pub const ORG_B: &str = "org-b";
/// Only org A's.
pub const ANN: &str = "ann@example.com";
/// Only org B's.
pub const BOB: &str = "bob@example.com";
/// A mailbox of both orgs (two rows, two prefixes).
pub const CAT: &str = "cat@example.com";

pub struct TwoOrgs {
    pub bed: TestBed,
    /// The bucket both orgs share, when the store is S3.
    s3: Option<S3Store>,
}

/// A prefix of the S3 test server's bucket (scripts/s3-server.sh).
struct S3Store {
    url: String,
    bucket: String,
    root: String,
    client: aws_sdk_s3::Client,
}

/// One file of the store: its size and modification time.
pub type FileState = (u64, SystemTime);

/// Org B as it was before a command ran for org A.
pub struct BState {
    pub rows: Vec<String>,
    pub files: BTreeMap<PathBuf, FileState>,
}

impl TwoOrgs {
    /// The bed, with every mailbox of both orgs backed up by its own org.
    pub async fn on(backend: Backend) -> TwoOrgs {
        TwoOrgs::with_store(backend, false).await
    }

    /// [`TwoOrgs::on`], with the store in one bucket of the S3 test server.
    pub async fn on_s3(backend: Backend) -> TwoOrgs {
        TwoOrgs::with_store(backend, true).await
    }

    async fn with_store(backend: Backend, s3: bool) -> TwoOrgs {
        let bed = TestBed::on(
            backend,
            EmulatorConfig {
                seed: 26,
                messages: 6,
                days: 6,
                mailboxes: vec![ANN.into(), BOB.into(), CAT.into()],
                ..EmulatorConfig::default()
            },
        )
        .await;
        let s3 = if s3 {
            Some(S3Store::new(&bed.db_name).await)
        } else {
            None
        };
        let orgs = TwoOrgs { bed, s3 };
        for (org, mailbox) in [(ORG_A, ANN), (ORG_A, CAT), (ORG_B, BOB), (ORG_B, CAT)] {
            orgs.ok(org, &["backfill", "--mailbox", mailbox]).await;
        }
        orgs
    }

    /// The binary with `--org org` before `args`.
    pub async fn run(&self, org: &str, args: &[&str]) -> Output {
        self.command(org)
            .args(args)
            .output()
            .await
            .expect("run mailingest")
    }

    /// The binary for `org`, on the bed's database and the shared store.
    pub fn command(&self, org: &str) -> tokio::process::Command {
        let mut cmd = self.bed.command();
        if let Some(s3) = &self.s3 {
            cmd.env("MAILINGEST_STORE", &s3.url);
        }
        cmd.args(["--org", org]);
        cmd
    }

    /// [`TwoOrgs::run`], which must exit 0; its stdout.
    pub async fn ok(&self, org: &str, args: &[&str]) -> String {
        let out = self.run(org, args).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "--org {org} {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// [`TwoOrgs::run`] with `--json`: (exit code, stdout parsed).
    pub async fn json(&self, org: &str, args: &[&str]) -> (i32, serde_json::Value) {
        let out = self.command(org).args(args).arg("--json").output().await;
        let out = out.expect("run mailingest");
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "--org {org} {args:?} exit {code}: stdout is not JSON ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, value)
    }

    /// The command, run for `org` naming a mailbox of the other org only,
    /// must be a usage error: exit 2, one line naming the mailbox and the org.
    pub async fn assert_foreign_mailbox_refused(&self, org: &str, args: &[&str]) {
        let out = self.run(org, args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--org {org} {args:?}:\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        let foreign = if org == ORG_A { BOB } else { ANN };
        assert!(
            lines[0].contains(foreign) && lines[0].contains(org),
            "names the mailbox and the org: {stderr}"
        );
    }

    /// The directory of an org's prefix in a directory store.
    pub fn prefix(&self, org: &str) -> PathBuf {
        assert!(self.s3.is_none(), "a directory store");
        self.bed.store_path().join(org)
    }

    /// Every object under the org's prefix (trash and unfinished writes
    /// included), with size and modification time.
    pub async fn files_of(&self, org: &str) -> BTreeMap<PathBuf, FileState> {
        match &self.s3 {
            Some(s3) => s3.objects(org).await,
            None => {
                let mut files = BTreeMap::new();
                walk(&self.prefix(org), &mut files);
                files
            }
        }
    }

    /// A picture of the org's rows: its mailbox rows with their cursor and
    /// schedule, and per table the rows that belong to its mailboxes.
    pub async fn rows_of(&self, org: &str) -> Vec<String> {
        let mut rows = self
            .bed
            .strings(&format!(
                "SELECT provider_email || ' enabled=' || CAST(enabled AS TEXT)
                    || ' cursor=' || coalesce(CAST(history_id AS TEXT), '-')
                    || ' next=' || CAST(next_sync_at AS TEXT)
                    || ' verify=' || coalesce(CAST(next_verify_at AS TEXT), '-')
                    || ' failures=' || CAST(consecutive_failures AS TEXT)
                 FROM mailboxes WHERE org_id = '{org}' ORDER BY provider_email"
            ))
            .await;
        for table in [
            "mail_threads",
            "mail_messages",
            "sync_runs",
            "ledger_events",
            "quarantined_messages",
            "verify_runs",
        ] {
            let n = self
                .bed
                .count(&format!(
                    "SELECT count(*) FROM {table}
                     WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE org_id = '{org}')"
                ))
                .await;
            rows.push(format!("{table}: {n}"));
        }
        rows.extend(
            self.bed
                .strings(&format!(
                    "SELECT CAST(r.id AS TEXT) || ' ' || r.status || ' ' || coalesce(CAST(r.finished_at AS TEXT), '-')
                     FROM sync_runs r JOIN mailboxes m ON m.id = r.mailbox_id
                     WHERE m.org_id = '{org}' ORDER BY r.id"
                ))
                .await,
        );
        rows
    }

    /// Gmail requests made for this address since the emulator's statistics
    /// were last reset (by `quotaUser`, which our client sets to the address).
    pub fn requests_for(&self, address: &str) -> u64 {
        self.bed
            .emulator
            .stats()
            .quota_users
            .get(address)
            .copied()
            .unwrap_or(0)
    }

    /// What a command run for org A must leave as it is: org B's rows and
    /// store objects. Also resets the emulator's statistics, so
    /// [`TwoOrgs::assert_b_untouched`] sees only the requests made since.
    pub async fn b_before(&self) -> BState {
        let state = BState {
            rows: self.rows_of(ORG_B).await,
            files: self.files_of(ORG_B).await,
        };
        assert!(!state.files.is_empty(), "org B has objects to leave alone");
        self.bed.emulator.reset_stats();
        state
    }

    /// Org B's rows and store objects are as they were, and no Gmail request
    /// was made for B's own mailbox.
    pub async fn assert_b_untouched(&self, before: &BState) {
        assert_eq!(
            self.rows_of(ORG_B).await,
            before.rows,
            "org B's rows changed"
        );
        assert_eq!(
            self.files_of(ORG_B).await,
            before.files,
            "org B's store objects changed"
        );
        assert_eq!(
            self.requests_for(BOB),
            0,
            "Gmail requests for org B's mailbox {BOB}"
        );
    }

    /// The id of an org's mailbox row.
    pub async fn mailbox_id(&self, org: &str, address: &str) -> i64 {
        self.bed
            .count(&format!(
                "SELECT id FROM mailboxes WHERE org_id = '{org}' AND provider_email = '{address}'"
            ))
            .await
    }
}

fn walk(dir: &Path, files: &mut BTreeMap<PathBuf, FileState>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.expect("read the store");
        let meta = entry.metadata().expect("stat a store file");
        if meta.is_dir() {
            walk(&entry.path(), files);
        } else {
            files.insert(entry.path(), (meta.len(), meta.modified().expect("mtime")));
        }
    }
}

impl S3Store {
    /// A prefix of its own in the test bucket.
    async fn new(name: &str) -> S3Store {
        let Ok(bucket) = std::env::var("MAILINGEST_TEST_S3_BUCKET") else {
            panic!("needs the S3 test server: run through scripts/test.sh");
        };
        let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .load()
            .await;
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        let root = format!("orgs-{name}");
        S3Store {
            url: format!("s3://{bucket}/{root}"),
            bucket,
            root,
            client,
        }
    }

    /// Every object under `<root>/<org>/`, with size and LastModified.
    async fn objects(&self, org: &str) -> BTreeMap<PathBuf, FileState> {
        let mut objects = BTreeMap::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}/{org}/", self.root))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for o in page.expect("list the bucket").contents() {
                let modified = o.last_modified().expect("LastModified");
                let at = SystemTime::UNIX_EPOCH
                    + std::time::Duration::from_millis(
                        u64::try_from(modified.to_millis().expect("a time")).expect("after 1970"),
                    );
                objects.insert(
                    PathBuf::from(o.key().expect("a key")),
                    (u64::try_from(o.size().unwrap_or(0)).expect("a size"), at),
                );
            }
        }
        objects
    }
}
