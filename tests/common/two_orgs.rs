//! Two orgs in one database and one store: the bed every "an org is a wall"
//! test starts from. Org A serves ann@ and cat@, org B serves bob@ and cat@
//! (one address in both orgs, as two rows), each backed up under its own
//! prefix. What a command run for A must leave alone of B is captured here
//! once: B's rows ([`TwoOrgs::rows_of`]), the files under B's prefix
//! ([`TwoOrgs::files_of`]) and the Gmail requests made for B's own address
//! (the emulator counts requests per `quotaUser`, which our client sets to the
//! mailbox address).

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
        let orgs = TwoOrgs { bed };
        for (org, mailbox) in [(ORG_A, ANN), (ORG_A, CAT), (ORG_B, BOB), (ORG_B, CAT)] {
            orgs.ok(org, &["backfill", "--mailbox", mailbox]).await;
        }
        orgs
    }

    /// The binary with `--org org` before `args`.
    pub async fn run(&self, org: &str, args: &[&str]) -> Output {
        let mut all = vec!["--org", org];
        all.extend_from_slice(args);
        self.bed.run(&all).await
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
        let mut all = vec!["--org", org];
        all.extend_from_slice(args);
        self.bed.run_json(&all).await
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

    /// The directory of an org's prefix in the store.
    pub fn prefix(&self, org: &str) -> PathBuf {
        self.bed.store_path().join(org)
    }

    /// Every file under the org's prefix (trash included), with size and mtime.
    pub fn files_of(&self, org: &str) -> BTreeMap<PathBuf, FileState> {
        let mut files = BTreeMap::new();
        walk(&self.prefix(org), &mut files);
        files
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
            files: self.files_of(ORG_B),
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
            self.files_of(ORG_B),
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
