//! An org is a wall: every command run with `--org A` reads and writes only
//! org A's rows, store prefix and Gmail mailboxes, in a database and a store
//! org B shares (`common::two_orgs`). One case per command, on both backends:
//! each shows that B's rows and objects are as they were and no Gmail request
//! was made for B's mailbox; naming B's mailbox is a usage error (exit 2).
//!
//! Found before (issue 26): `--org A verify` walked B's mailboxes and reported
//! their blobs missing (they are under B's prefix), `--org A repair` then
//! fetched B's mail and wrote it under A's prefix, and the worker's metrics
//! had no org, so one address in two orgs was one series.

mod common;

use std::time::Duration;

use common::Backend;
use common::http::{free_port, get};
use common::two_orgs::{ANN, BOB, CAT, ORG_A, ORG_B, TwoOrgs};
use prometheus_parse::{Scrape, Value};
use serde_json::Value as Json;

on_both_backends!(
    verify_reads_only_its_own_org,
    repair_never_copies_another_orgs_mail,
    gc_leaves_another_orgs_prefix_alone,
    export_writes_only_its_own_orgs_mail,
    show_replays_only_its_own_orgs_ledger,
    status_reports_only_its_own_org,
    mailbox_commands_see_only_their_own_org,
    the_worker_and_its_scheduled_check_stay_in_their_org,
    metrics_carry_the_org_and_one_address_is_two_series,
    the_store_commands_stay_in_their_org_on_s3,
);

fn addresses(report: &Json, key: &str) -> Vec<String> {
    report
        .as_array()
        .map_or_else(
            || report["mailboxes"].as_array().cloned().unwrap_or_default(),
            Clone::clone,
        )
        .iter()
        .map(|m| m[key].as_str().expect("an address").to_owned())
        .collect()
}

/// finding 1: A's verify reported B's blobs missing from A's store.
async fn verify_reads_only_its_own_org(backend: Backend) {
    let orgs = TwoOrgs::on(backend).await;
    let before = orgs.b_before().await;
    for extra in [&["--deep"][..], &["--full"], &["--full", "--deep"]] {
        let mut args = vec!["verify"];
        args.extend_from_slice(extra);
        let (code, report) = orgs.json(ORG_A, &args).await;
        assert_eq!(code, 0, "verify {extra:?} for org A is clean: {report}");
        assert_eq!(
            addresses(&report, "mailbox"),
            [ANN, CAT],
            "org A's mailboxes only"
        );
    }
    // The shared address: A's row only.
    let (code, report) = orgs
        .json(ORG_A, &["verify", "--full", "--mailbox", CAT])
        .await;
    assert_eq!(code, 0, "{report}");
    let ids: Vec<i64> = report["mailboxes"]
        .as_array()
        .expect("mailboxes")
        .iter()
        .map(|m| m["mailbox_id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [orgs.mailbox_id(ORG_A, CAT).await]);
    orgs.assert_foreign_mailbox_refused(ORG_A, &["verify", "--mailbox", BOB])
        .await;
    orgs.assert_b_untouched(&before).await;
}

/// finding 1: A's repair copied B's mail (fetched with A's credentials) into A's prefix.
async fn repair_never_copies_another_orgs_mail(backend: Backend) {
    let orgs = TwoOrgs::on(backend).await;
    let a_files = orgs.files_of(ORG_A).await;
    let before = orgs.b_before().await;
    let (code, reports) = orgs.json(ORG_A, &["repair"]).await;
    let written = orgs.files_of(ORG_A).await.len() - a_files.len();
    assert_eq!(
        (written, orgs.requests_for(BOB)),
        (0, 0),
        "objects written under org A's prefix, and Gmail requests for org B's {BOB}: {reports}"
    );
    assert_eq!(
        orgs.files_of(ORG_A).await,
        a_files,
        "org A's objects as they were"
    );
    assert_eq!(code, 0, "{reports}");
    assert_eq!(addresses(&reports, "mailbox"), [ANN, CAT]);
    for r in reports.as_array().expect("reports") {
        assert_eq!(r["repaired"], Json::Array(vec![]), "nothing to repair: {r}");
    }
    orgs.assert_foreign_mailbox_refused(ORG_A, &["repair", "--mailbox", BOB])
        .await;
    orgs.assert_b_untouched(&before).await;
}

/// gc of org A lists and removes under A's prefix only: an old object no row
/// records, under B's prefix, stays (it is B's gc's to judge).
async fn gc_leaves_another_orgs_prefix_alone(backend: Backend) {
    let orgs = TwoOrgs::on(backend).await;
    let bytes = b"an object only org B's store holds".to_vec();
    let sha = hex_sha256(&bytes);
    let path = orgs
        .prefix(ORG_B)
        .join("sha256")
        .join(&sha[..2])
        .join(&sha[2..4]);
    std::fs::create_dir_all(&path).expect("mkdir");
    let path = path.join(&sha);
    std::fs::write(&path, &bytes).expect("plant");
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(old))
        .expect("back-date");
    let before = orgs.b_before().await;
    for args in [
        &["gc", "--grace", "1h", "--dry-run"][..],
        &["gc", "--grace", "1h"],
        &["gc", "--grace", "1h", "--purge-deleted-older-than", "1d"],
    ] {
        let (code, report) = orgs.json(ORG_A, args).await;
        assert_eq!(code, 0, "{args:?}: {report}");
        assert!(
            !report.to_string().contains(&sha),
            "org A's gc saw org B's object: {report}"
        );
        let purged: Vec<&str> = report["purge"]
            .as_array()
            .map(|p| p.iter().filter_map(|m| m["mailbox"].as_str()).collect())
            .unwrap_or_default();
        assert!(!purged.contains(&BOB), "{report}");
    }
    orgs.assert_foreign_mailbox_refused(
        ORG_A,
        &["gc", "--purge-deleted-older-than", "1d", "--mailbox", BOB],
    )
    .await;
    orgs.assert_b_untouched(&before).await;
    assert!(path.exists(), "org B's object is still there");
}

/// export of org A holds A's messages only, and no message of B's mailbox.
async fn export_writes_only_its_own_orgs_mail(backend: Backend) {
    let orgs = TwoOrgs::on(backend).await;
    let out = tempfile::tempdir().expect("out dir");
    let mbox = out.path().join("a.mbox");
    let before = orgs.b_before().await;
    let (code, summary) = orgs
        .json(
            ORG_A,
            &[
                "export",
                "--format",
                "mbox",
                "--out",
                mbox.to_str().expect("utf-8"),
            ],
        )
        .await;
    assert_eq!(code, 0, "{summary}");
    let a_messages = orgs
        .bed
        .count(&format!(
            "SELECT count(*) FROM mail_messages WHERE deleted_at IS NULL
               AND mailbox_id IN (SELECT id FROM mailboxes WHERE org_id = '{ORG_A}')"
        ))
        .await;
    assert_eq!(summary["exported"].as_i64(), Some(a_messages), "{summary}");
    let text = String::from_utf8_lossy(&std::fs::read(&mbox).expect("mbox")).into_owned();
    for id in orgs.bed.emulator.message_ids(BOB) {
        let thrid = orgs.bed.emulator.thread_of(BOB, &id).expect("thread");
        assert!(
            !text.contains(&format!("From {thrid}@")) && !text.contains(&id),
            "org B's message {id} exported by org A"
        );
    }
    let eml = out.path().join("eml");
    orgs.assert_foreign_mailbox_refused(
        ORG_A,
        &[
            "export",
            "--format",
            "eml",
            "--out",
            eml.to_str().expect("utf-8"),
            "--mailbox",
            BOB,
        ],
    )
    .await;
    orgs.assert_b_untouched(&before).await;
}

/// show replays the ledger of org A's row of a shared address, not B's:
/// a message deleted in Gmail and synced by B only is still live for A.
async fn show_replays_only_its_own_orgs_ledger(backend: Backend) {
    let orgs = TwoOrgs::on(backend).await;
    let cat_a = orgs.mailbox_id(ORG_A, CAT).await;
    let gone = orgs
        .bed
        .strings(&format!(
            "SELECT provider_message_id FROM mail_messages WHERE mailbox_id = {cat_a}
             ORDER BY provider_message_id LIMIT 1"
        ))
        .await
        .remove(0);
    orgs.bed
        .emulator
        .delete_message(CAT, &gone)
        .expect("delete in Gmail");
    orgs.ok(ORG_B, &["sync", "--mailbox", CAT]).await;
    let before = orgs.b_before().await;
    let now = chrono::Utc::now().to_rfc3339();
    let listed = |v: &Json| -> Vec<String> {
        v["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let (code, a) = orgs
        .json(ORG_A, &["show", "--mailbox", CAT, "--as-of", &now])
        .await;
    assert_eq!(code, 0, "{a}");
    assert_eq!(a["org"], ORG_A);
    assert!(
        listed(&a).contains(&gone),
        "A never synced the deletion: {a}"
    );
    orgs.assert_foreign_mailbox_refused(ORG_A, &["show", "--mailbox", BOB, "--as-of", &now])
        .await;
    // The orphans an import kept are listed the same way: of the org's mailbox only.
    orgs.assert_foreign_mailbox_refused(ORG_A, &["orphans", "--mailbox", BOB])
        .await;
    orgs.assert_b_untouched(&before).await;
    let (code, b) = orgs
        .json(ORG_B, &["show", "--mailbox", CAT, "--as-of", &now])
        .await;
    assert_eq!(code, 0, "{b}");
    assert!(!listed(&b).contains(&gone), "B synced the deletion: {b}");
}

/// Marks an org's mailbox degraded: its last completeness check found a difference.
async fn degrade(orgs: &TwoOrgs, org: &str, address: &str) {
    let id = orgs.mailbox_id(org, address).await;
    let (ok, findings) = match orgs.bed.backend() {
        Backend::Postgres => ("false", "'{\"a planted difference\"}'"),
        Backend::Sqlite => ("0", "'[\"a planted difference\"]'"),
    };
    orgs.bed
        .execute(&format!(
            "INSERT INTO verify_runs (mailbox_id, started_at, finished_at, ok, missing_here, gone_there, findings)
             VALUES ({id}, '2026-12-01T00:00:00.000+00:00', '2026-12-01T00:00:01.000+00:00', {ok}, 1, 0, {findings})"
        ))
        .await;
}

/// Quarantines a made-up message of an org's mailbox.
async fn quarantine(orgs: &TwoOrgs, org: &str, address: &str) {
    let id = orgs.mailbox_id(org, address).await;
    orgs.bed
        .execute(&format!(
            "INSERT INTO quarantined_messages (mailbox_id, provider_message_id, failure, reason, attempts,
                 first_failed_at, last_failed_at, next_attempt_at, last_run_id)
             VALUES ({id}, 'planted1', 'rejected', 'planted', 1, '2026-12-01T00:00:00.000+00:00',
                 '2026-12-01T00:00:00.000+00:00', '2099-01-01T00:00:00.000+00:00',
                 (SELECT max(id) FROM sync_runs WHERE mailbox_id = {id}))"
        ))
        .await;
}

/// status of org A: A's mailboxes only; B's degraded mailbox neither shows
/// nor turns A's `--check` red; B's quarantine is not listed.
async fn status_reports_only_its_own_org(backend: Backend) {
    let orgs = TwoOrgs::on(backend).await;
    degrade(&orgs, ORG_B, BOB).await;
    degrade(&orgs, ORG_B, CAT).await;
    quarantine(&orgs, ORG_B, BOB).await;
    let before = orgs.b_before().await;
    let (code, rows) = orgs.json(ORG_A, &["status", "--check"]).await;
    assert_eq!(code, 0, "org A is healthy: {rows}");
    let rows = rows.as_array().expect("rows").clone();
    let seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["org_id"].as_str().expect("org").to_owned(),
                r["provider_email"].as_str().expect("email").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (ORG_A.to_owned(), ANN.to_owned()),
            (ORG_A.into(), CAT.into())
        ]
    );
    let out = orgs.run(ORG_A, &["status", "--check"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(BOB) && !text.contains(ORG_B), "{text}");
    let (code, listed) = orgs.json(ORG_A, &["status", "--quarantined"]).await;
    assert_eq!(code, 0);
    assert_eq!(listed, Json::Array(vec![]), "org B's quarantine listed");
    orgs.assert_b_untouched(&before).await;
    let (code, _) = orgs.json(ORG_B, &["status", "--check"]).await;
    assert_eq!(code, 5, "org B's own check is red");
}

/// mailbox list, disable and requeue of org A see A's rows only.
async fn mailbox_commands_see_only_their_own_org(backend: Backend) {
    let orgs = TwoOrgs::on(backend).await;
    quarantine(&orgs, ORG_B, BOB).await;
    let before = orgs.b_before().await;
    let (code, rows) = orgs.json(ORG_A, &["mailbox", "list"]).await;
    assert_eq!(code, 0);
    let seen: Vec<(&str, &str)> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["org_id"].as_str().expect("org"),
                r["provider_email"].as_str().expect("email"),
            )
        })
        .collect();
    assert_eq!(seen, [(ORG_A, ANN), (ORG_A, CAT)]);
    let text = orgs.ok(ORG_A, &["mailbox", "list"]).await;
    assert!(!text.contains(BOB) && !text.contains(ORG_B), "{text}");
    orgs.assert_foreign_mailbox_refused(ORG_A, &["mailbox", "disable", BOB])
        .await;
    orgs.assert_foreign_mailbox_refused(ORG_A, &["mailbox", "requeue", BOB])
        .await;
    // The shared address: A's row only.
    orgs.ok(ORG_A, &["mailbox", "disable", CAT]).await;
    orgs.ok(ORG_A, &["mailbox", "requeue", CAT]).await;
    orgs.assert_b_untouched(&before).await;
}

/// The worker of org A syncs A's mailboxes only, and its scheduled
/// completeness check of the shared address compares A's row with Gmail,
/// once: not B's row too (which it did, with A's credentials and A's store).
async fn the_worker_and_its_scheduled_check_stay_in_their_org(backend: Backend) {
    let orgs = TwoOrgs::on(backend).await;
    orgs.bed
        .execute(
            "UPDATE mailboxes SET next_sync_at = '2000-01-01T00:00:00.000+00:00',
                                  next_verify_at = '2000-01-01T00:00:00.000+00:00'
             WHERE org_id = 'org-a'",
        )
        .await;
    let before = orgs.b_before().await;
    orgs.ok(
        ORG_A,
        &[
            "worker",
            "--poll",
            "1s",
            "--max-rounds",
            "1",
            "--verify-every",
            "1h",
        ],
    )
    .await;
    let checks = orgs
        .bed
        .strings(
            "SELECT m.provider_email || ' ' || CAST(v.missing_here AS TEXT) || ' ' || CAST(v.gone_there AS TEXT)
             FROM verify_runs v JOIN mailboxes m ON m.id = v.mailbox_id
             WHERE m.org_id = 'org-a' ORDER BY m.provider_email",
        )
        .await;
    assert_eq!(
        checks,
        [format!("{ANN} 0 0"), format!("{CAT} 0 0")],
        "one clean check per mailbox of org A"
    );
    let stats = orgs.bed.emulator.stats();
    assert_eq!(
        stats.calls(CAT, "users.messages.list"),
        1,
        "the check of {CAT} listed Gmail once, for org A's row: {:?}",
        stats.mailboxes.get(CAT)
    );
    orgs.assert_b_untouched(&before).await;
}

/// The worker's scrape, once its loop has turned and the mailboxes show.
async fn scrape(port: u16, wanted: &str) -> (Scrape, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Ok((200, body))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::spawn(async move { get(port, "/metrics").await }),
        )
        .await
            && body.contains(wanted)
        {
            let scrape =
                Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("prometheus text");
            return (scrape, body);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scrape with {wanted} on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn gauge(scrape: &Scrape, metric: &str, org: &str, mailbox: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == metric
                && s.labels.get("org") == Some(org)
                && s.labels.get("mailbox") == Some(mailbox)
        })
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(_) | Value::Summary(_) => f64::NAN,
        })
}

/// finding 2: the `mailbox` label had no org, so a worker served every org's
/// addresses and one address in two orgs was one series: B's degraded cat@
/// showed as A's.
async fn metrics_carry_the_org_and_one_address_is_two_series(backend: Backend) {
    let orgs = TwoOrgs::on(backend).await;
    degrade(&orgs, ORG_B, CAT).await;
    let before = orgs.b_before().await;
    let port = free_port();
    let mut worker = orgs
        .command(ORG_A)
        .args([
            "worker",
            "--interval",
            "1h",
            "--poll",
            "1s",
            "--verify-every",
            "off",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .spawn()
        .expect("worker");
    // Once a run of A's has been counted.
    let (a, body) = scrape(port, "mailingest_runs_total{").await;
    worker.kill().await.expect("stop the worker");
    let _ = worker.wait().await;
    // Every labelled series but the commit histogram's buckets carries the org.
    for s in a
        .samples
        .iter()
        .filter(|s| !s.labels.is_empty() && !s.labels.contains_key("le"))
    {
        assert_eq!(
            s.labels.get("org"),
            Some(ORG_A),
            "a series of org A's worker without org A's label: {}\n{body}",
            s.metric
        );
        assert_ne!(s.labels.get("mailbox"), Some(BOB), "{body}");
    }
    assert_eq!(
        gauge(&a, "mailingest_degraded", ORG_A, CAT),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        gauge(&a, "mailingest_degraded", ORG_A, ANN),
        Some(0.0),
        "{body}"
    );
    orgs.assert_b_untouched(&before).await;

    // B's own worker shows B's cat@ degraded, under B's label: the same
    // address, another series.
    let port = free_port();
    let mut worker = orgs
        .command(ORG_B)
        .args([
            "worker",
            "--interval",
            "1h",
            "--poll",
            "1s",
            "--verify-every",
            "off",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .spawn()
        .expect("worker");
    let (b, body) = scrape(port, "mailingest_degraded").await;
    worker.kill().await.expect("stop the worker");
    let _ = worker.wait().await;
    assert_eq!(
        gauge(&b, "mailingest_degraded", ORG_B, CAT),
        Some(1.0),
        "{body}"
    );
    assert_eq!(gauge(&b, "mailingest_degraded", ORG_A, CAT), None, "{body}");
}

/// One bucket for both orgs: verify, repair, gc and export of org A list,
/// read and write under A's prefix only (finding 1 was the same on S3).
async fn the_store_commands_stay_in_their_org_on_s3(backend: Backend) {
    let orgs = TwoOrgs::on_s3(backend).await;
    let a_objects = orgs.files_of(ORG_A).await;
    let before = orgs.b_before().await;
    for args in [
        &["verify", "--deep"][..],
        &["verify", "--full"],
        &["repair"],
        &["gc", "--grace", "1h", "--dry-run"],
        &["gc", "--grace", "1h"],
    ] {
        let (code, report) = orgs.json(ORG_A, args).await;
        assert_eq!(code, 0, "{args:?}: {report}");
        for b_object in before.files.keys() {
            let name = b_object.file_name().expect("a name").to_string_lossy();
            assert!(
                !report.to_string().contains(name.as_ref()),
                "{args:?} for org A reported org B's {name}: {report}"
            );
        }
    }
    let out = tempfile::tempdir().expect("out dir");
    let mbox = out.path().join("a.mbox");
    let (code, summary) = orgs
        .json(
            ORG_A,
            &[
                "export",
                "--format",
                "mbox",
                "--out",
                mbox.to_str().expect("utf-8"),
            ],
        )
        .await;
    assert_eq!(code, 0, "{summary}");
    // The clock probe comes and goes; the objects stay as they were.
    let objects = |all: std::collections::BTreeMap<std::path::PathBuf, _>| {
        all.into_iter()
            .filter(|(k, _)| k.to_string_lossy().contains("/sha256/"))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        objects(orgs.files_of(ORG_A).await),
        objects(a_objects),
        "org A's objects as they were: nothing copied in"
    );
    orgs.assert_b_untouched(&before).await;
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
