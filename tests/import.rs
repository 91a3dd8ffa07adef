//! `mailingest import` through the binary, on both backends: a Takeout file
//! the emulator writes of its own mailbox (`/_emulator/mailboxes/{mb}/takeout`)
//! seeds the copy; the backfill after it fetches only what the file lacked;
//! the same file twice inserts nothing; entries that are no message of the
//! mailbox are kept as orphans only when asked (`--keep-unmatched`), and gc
//! never takes their bytes. The same for a Google Vault export the emulator
//! writes (`/_emulator/mailboxes/{mb}/vault/{mbox,metadata}`).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{Backend, TestBed, small_mailbox};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(
    an_import_then_a_backfill_costs_a_few_percent_and_verifies_clean,
    the_same_file_twice_inserts_nothing,
    a_takeout_older_than_the_mailbox_converges_to_what_a_plain_backfill_stores,
    what_changes_after_the_import_listed_the_mailbox_reaches_the_copy_through_history,
    an_import_into_a_mailbox_with_a_cursor_stores_gmails_labels_not_the_files,
    kill_9_mid_import_then_a_rerun_stores_each_message_once,
    an_mbox_export_imports_back,
    verify_sample_finds_imported_bytes_that_are_not_gmails,
    a_malformed_entry_is_named_by_offset_and_the_import_goes_on,
    unmatched_entries_are_kept_as_orphans_only_when_asked,
    a_vault_import_then_a_backfill_costs_only_listing_and_labels_match_a_plain_backfill,
    the_same_vault_export_twice_inserts_nothing_and_an_unlisted_message_is_noted,
    a_vault_metadata_file_that_does_not_parse_is_named_with_its_position,
    a_vault_entry_that_is_not_what_its_metadata_says_is_kept_as_an_orphan_when_asked,
);

/// A bed on Gmail's 2026 quota table (binary and emulator alike).
async fn bed_2026(backend: Backend, messages: usize) -> TestBed {
    let mut config = small_mailbox(messages);
    config.quota.table = "2026".parse().expect("the 2026 table");
    let mut bed = TestBed::on(backend, config).await;
    bed.quota_table = gmail::QuotaTable::Y2026;
    bed
}

/// The emulator's Takeout file of the bed's mailbox, over HTTP.
async fn takeout(bed: &TestBed) -> Vec<u8> {
    emulator_file(bed, "takeout").await
}

/// A file the emulator writes of the bed's mailbox (`/_emulator/mailboxes/{mb}/{what}`).
async fn emulator_file(bed: &TestBed, what: &str) -> Vec<u8> {
    let mut conn = tokio::net::TcpStream::connect(bed.emulator.addr())
        .await
        .expect("connect");
    let request = format!(
        "GET /_emulator/mailboxes/{}/{what} HTTP/1.0\r\nHost: emulator\r\n\r\n",
        bed.mailbox
    );
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.expect("read");
    let at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    assert!(response.starts_with(b"HTTP/1.0 200") || response.starts_with(b"HTTP/1.1 200"));
    response.split_off(at + 4)
}

/// The Takeout file written into the bed's temporary directory.
async fn takeout_file(bed: &TestBed, name: &str) -> PathBuf {
    let path = bed.store_path().with_extension(name);
    tokio::fs::write(&path, takeout(bed).await)
        .await
        .expect("write");
    path
}

fn units(bed: &TestBed) -> u64 {
    bed.emulator
        .stats()
        .mailboxes
        .get(&bed.mailbox)
        .map(|m| m.values().map(|s| s.quota_units).sum())
        .unwrap_or(0)
}

async fn import(bed: &TestBed, file: &std::path::Path) -> (i32, serde_json::Value) {
    let path = file.to_str().expect("utf-8 path");
    bed.run_json(&["import", "--mailbox", bed.mailbox.as_str(), path])
        .await
}

/// The messages.list pages a listing per label takes, SPAM and TRASH included.
async fn label_listing_pages(bed: &TestBed) -> u64 {
    use futures::StreamExt;
    let gmail = bed.gmail().await;
    let mut pages = 0;
    for label in gmail.labels(&bed.mailbox).await.expect("labels.list") {
        let query = gmail::ListQuery {
            include_spam_trash: true,
            label_ids: vec![label.id],
            ..gmail::ListQuery::default()
        };
        let mut listing = gmail.list_messages(&bed.mailbox, query);
        while let Some(page) = listing.next().await {
            page.expect("a page");
            pages += 1;
        }
    }
    pages
}

/// Gmail's labels of every message in the mailbox the copy holds live.
async fn gmail_labels(bed: &TestBed) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let gmail = bed.gmail().await;
    let mut out = BTreeMap::new();
    for id in live(bed).await.into_keys() {
        let meta = gmail
            .message_minimal(&bed.mailbox, &id)
            .await
            .expect("in Gmail");
        out.insert(id, meta.label_ids.into_iter().collect());
    }
    out
}

/// The payload of every `message.ingested` event.
async fn ingested_payloads(bed: &TestBed) -> Vec<serde_json::Value> {
    bed.strings(
        "SELECT CAST(payload AS TEXT) FROM ledger_events WHERE event_type = 'message.ingested'",
    )
    .await
    .iter()
    .map(|payload| serde_json::from_str(payload).expect("json"))
    .collect()
}

/// Every stored message's raw sha256, by Gmail id.
async fn stored_raw(bed: &TestBed) -> BTreeMap<String, String> {
    let ids = bed
        .strings("SELECT provider_message_id || ' ' || raw_sha256 FROM mail_messages")
        .await;
    ids.into_iter()
        .map(|s| {
            let (id, sha) = s.split_once(' ').expect("two words");
            (id.to_owned(), sha.to_owned())
        })
        .collect()
}

async fn an_import_then_a_backfill_costs_a_few_percent_and_verifies_clean(backend: Backend) {
    // What a plain first backfill spends, on a bed of its own.
    let plain = bed_2026(backend, 600).await;
    plain.emulator.reset_stats();
    let (code, _) = plain.backfill(&[]).await;
    assert_eq!(code, 0);
    let plain_units = units(&plain);

    let bed = bed_2026(backend, 600).await;
    let (expected, _) = bed.expected_ids().await;
    let file = takeout_file(&bed, "takeout.mbox").await;
    let sha = hex::encode(Sha256::digest(std::fs::read(&file).expect("read")));
    let label_pages = label_listing_pages(&bed).await;
    bed.emulator.reset_stats();
    let (code, out) = import(&bed, &file).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["run"]["kind"], "import");
    assert_eq!(
        out["run"]["messages"]["inserted"].as_u64(),
        Some(expected.len() as u64)
    );
    assert_eq!(out["import"]["files"][0]["sha256"], sha.as_str());
    // The cursor (getProfile), one labels.list, the mailbox's ids
    // (messages.list, 5 units per 500: two pages for 600) and Gmail's labels
    // (one listing per label, SPAM and TRASH among them, which also says
    // what is out of scope), nothing per message.
    let import_units = units(&bed);
    assert_eq!(bed.calls("users.getProfile"), 1);
    assert_eq!(bed.calls("users.labels.list"), 1);
    assert_eq!(bed.calls("users.messages.get"), 0);
    assert_eq!(bed.calls("users.messages.list"), 2 + label_pages);
    assert_eq!(
        import_units,
        1 + 1 + (2 + label_pages) * 5,
        "{:?}",
        bed.emulator.stats()
    );
    assert!(
        bed.count("SELECT count(*) FROM mailboxes WHERE history_id IS NOT NULL")
            .await
            == 1,
        "the import sets the cursor it took before listing"
    );
    assert_eq!(live(&bed).await, gmail_labels(&bed).await, "Gmail's labels");
    // Stored bytes are Gmail's format=raw bytes, each message by its own id.
    let stored = stored_raw(&bed).await;
    assert_eq!(
        stored
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        expected
    );
    for (id, sha) in &stored {
        let raw = bed
            .emulator
            .raw_message(&bed.mailbox, id)
            .expect("in Gmail");
        assert_eq!(&hex::encode(Sha256::digest(&raw)), sha, "message {id}");
    }
    let sources = ingested_payloads(&bed).await;
    assert!(!sources.is_empty());
    for p in &sources {
        assert_eq!(p["source"], format!("takeout:{sha}"), "{p}");
    }

    // The backfill after it: listing and labels, no messages.get for mail
    // the import brought.
    bed.emulator.reset_stats();
    let (code, out) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["messages"]["inserted"].as_u64(), Some(0), "{out}");
    assert_eq!(
        bed.calls("users.messages.get"),
        0,
        "{:?}",
        bed.emulator.stats()
    );
    let after = units(&bed);
    eprintln!(
        "plain backfill {plain_units} units; import {import_units} + backfill after it {after}"
    );
    assert!(
        (import_units + after) * 50 <= plain_units,
        "import + backfill {} units, more than 2% of a plain backfill's {plain_units}",
        import_units + after
    );
    bed.assert_verify_clean().await;
    let out = bed.run(&["verify", "--full"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

async fn the_same_file_twice_inserts_nothing(backend: Backend) {
    let bed = bed_2026(backend, 60).await;
    let file = takeout_file(&bed, "takeout.mbox").await;
    let (code, first) = import(&bed, &file).await;
    assert_eq!(code, 0, "{first}");
    let events = "SELECT count(*) FROM ledger_events WHERE event_type = 'message.ingested'";
    let before = bed.count(events).await;
    let rows = bed.count("SELECT count(*) FROM mail_messages").await;
    let (code, second) = import(&bed, &file).await;
    assert_eq!(code, 0, "{second}");
    assert_eq!(second["run"]["messages"]["inserted"].as_u64(), Some(0));
    assert_eq!(
        second["import"]["files"][0]["already_stored"].as_u64(),
        first["run"]["messages"]["inserted"].as_u64()
    );
    assert_eq!(bed.count(events).await, before);
    assert_eq!(bed.count("SELECT count(*) FROM mail_messages").await, rows);
}

/// Every live row's Gmail metadata and bytes against what Gmail says of the
/// message now: the thread, the sizeEstimate, the raw bytes' sha256 exactly;
/// the internalDate to the second (Takeout's separator has no more). What a
/// row derives from the bytes (headers, bodies, attachments) follows from
/// the same bytes through the same parser.
async fn assert_rows_are_gmails(bed: &TestBed) {
    let ms = match bed.backend() {
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM internal_date) * 1000 AS BIGINT)",
        Backend::Sqlite => {
            "CAST(ROUND((julianday(internal_date) - 2440587.5) * 86400000.0) AS INTEGER)"
        }
    };
    let rows = bed
        .strings(&format!(
            "SELECT provider_message_id || ' ' || provider_thread_id || ' ' \
             || CAST(size_estimate AS TEXT) || ' ' || CAST({ms} AS TEXT) || ' ' || raw_sha256 \
             FROM mail_messages WHERE deleted_at IS NULL"
        ))
        .await;
    assert!(!rows.is_empty());
    let gmail = bed.gmail().await;
    for row in rows {
        let f: Vec<&str> = row.split(' ').collect();
        let (id, thread, size, date, sha) = (f[0], f[1], f[2], f[3], f[4]);
        let meta = gmail
            .message_minimal(&bed.mailbox, id)
            .await
            .expect("in Gmail");
        assert_eq!(thread, meta.thread_id, "{id}: thread");
        assert_eq!(size, meta.size_estimate.to_string(), "{id}: sizeEstimate");
        let date: i64 = date.parse().expect("ms");
        let want = meta.internal_date_ms;
        assert!(
            date == want || date == want - want.rem_euclid(1000),
            "{id}: internalDate {date} ms, Gmail's {want} ms"
        );
        let raw = bed.emulator.raw_message(&bed.mailbox, id).expect("raw");
        assert_eq!(sha, hex::encode(Sha256::digest(&raw)), "{id}: bytes");
    }
}

/// What changed in the mailbox since its Takeout file was written: mail
/// added, relabelled, trashed and deleted. The same on every bed built from
/// the same seed, so two beds end with the same ids.
fn change_since_the_takeout(bed: &TestBed) -> (String, String, String) {
    let ids = bed.emulator.message_ids(&bed.mailbox);
    let (relabelled, trashed, deleted) = (ids[3].clone(), ids[5].clone(), ids[7].clone());
    bed.emulator
        .modify_labels(
            &bed.mailbox,
            &relabelled,
            &["STARRED", "Later"],
            &["INBOX", "UNREAD"],
        )
        .expect("relabel");
    bed.emulator.trash(&bed.mailbox, &trashed).expect("trash");
    bed.emulator
        .delete_message(&bed.mailbox, &deleted)
        .expect("delete");
    for n in 0..3 {
        let raw = format!(
            "From: new{n}@example.com\r\nTo: ann@example.com\r\nSubject: after the takeout {n}\r\nMessage-ID: <after{n}@example.com>\r\n\r\nnew mail {n}\r\n"
        );
        bed.emulator
            .insert_raw(&bed.mailbox, raw.as_bytes(), &["INBOX", "UNREAD"], None)
            .expect("insert");
    }
    (relabelled, trashed, deleted)
}

/// Live rows (id → labels), as the copy holds them.
async fn live(bed: &TestBed) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    bed.live_labels().await
}

async fn a_takeout_older_than_the_mailbox_converges_to_what_a_plain_backfill_stores(
    backend: Backend,
) {
    let plain = bed_2026(backend, 80).await;
    change_since_the_takeout(&plain);
    let (code, out) = plain.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");

    let bed = bed_2026(backend, 80).await;
    let file = takeout_file(&bed, "old-takeout.mbox").await;
    let (relabelled, trashed, deleted) = change_since_the_takeout(&bed);
    let (code, imported) = import(&bed, &file).await;
    let out = imported.clone();
    // The message deleted since is named, not stored.
    assert_eq!(code, 0, "{out}");
    let skipped = out["import"]["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{out}");
    assert_eq!(skipped[0]["message_id"], deleted.as_str());
    assert!(skipped[0]["offset"].as_u64().is_some());
    let (code, out) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");

    // Everything a plain backfill stores, with the same labels.
    let want = live(&plain).await;
    let got = live(&bed).await;
    assert!(want.contains_key(&relabelled));
    assert!(!want.contains_key(&deleted) && !want.contains_key(&trashed));
    assert_eq!(got.get(&relabelled), want.get(&relabelled));
    // Neither the trashed nor the deleted message was stored.
    // (The generated mailbox holds 2 in SPAM or TRASH already.)
    let out_of_scope = &imported["import"]["files"][0]["out_of_scope"];
    assert_eq!(out_of_scope.as_u64(), Some(3), "{imported}");
    let differ: Vec<_> = got
        .keys()
        .chain(want.keys())
        .filter(|id| got.get(*id) != want.get(*id))
        .map(|id| (id, got.get(id), want.get(id)))
        .collect();
    assert!(
        differ.is_empty(),
        "(id, import + backfill, plain backfill): {differ:?}"
    );
    assert_rows_are_gmails(&bed).await;
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM mail_messages WHERE provider_message_id = '{deleted}'"
        ))
        .await,
        0,
        "the message deleted since the takeout is not stored"
    );
    bed.assert_verify_clean().await;
}

/// Mail deleted, trashed, relabelled and added after the import listed the
/// mailbox: the import set the cursor it took before listing, so history
/// since it holds every one of those changes. The backfill after it fetches
/// the new mail and its labels; the sync after that marks the deletion. The
/// deleted row is marked deleted (as a sync marks one), the trashed one
/// carries TRASH, and every other row is exactly a plain backfill's.
async fn what_changes_after_the_import_listed_the_mailbox_reaches_the_copy_through_history(
    backend: Backend,
) {
    let plain = bed_2026(backend, 80).await;
    change_since_the_takeout(&plain);
    let (code, out) = plain.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");

    let bed = bed_2026(backend, 80).await;
    let file = takeout_file(&bed, "takeout.mbox").await;
    let (code, out) = import(&bed, &file).await;
    assert_eq!(code, 0, "{out}");
    let (relabelled, trashed, deleted) = change_since_the_takeout(&bed);
    bed.emulator.reset_stats();
    let (code, out) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");
    // The 3 new messages raw; labels from history, no threads.get.
    assert_eq!(
        bed.calls("users.messages.get"),
        3,
        "{:?}",
        bed.emulator.stats()
    );
    let (code, out) = bed.sync().await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["messages_deleted"].as_u64(), Some(1), "{out}");
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM mail_messages WHERE provider_message_id = '{deleted}' \
             AND deleted_at IS NOT NULL"
        ))
        .await,
        1,
        "the message deleted after the import is marked deleted"
    );
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM ledger_events WHERE event_type = 'message.deleted' \
             AND subject_key = 'message:{deleted}'"
        ))
        .await,
        1
    );
    let mut got = live(&bed).await;
    let want = live(&plain).await;
    let trashed_labels = got
        .remove(&trashed)
        .expect("the trashed message stays stored");
    assert!(trashed_labels.contains("TRASH"), "{trashed_labels:?}");
    assert!(!want.contains_key(&trashed) && !got.contains_key(&deleted));
    assert_eq!(got.get(&relabelled), want.get(&relabelled));
    let differ: Vec<_> = got
        .keys()
        .chain(want.keys())
        .filter(|id| got.get(*id) != want.get(*id))
        .map(|id| (id, got.get(id), want.get(id)))
        .collect();
    assert!(
        differ.is_empty(),
        "(id, import + backfill, plain backfill): {differ:?}"
    );
    bed.assert_verify_clean().await;
}

/// A mailbox already synced (it has a cursor) trusts its stored labels to be
/// no older than the cursor, so a file's older labels would never be
/// corrected: the import stores Gmail's current labels instead.
async fn an_import_into_a_mailbox_with_a_cursor_stores_gmails_labels_not_the_files(
    backend: Backend,
) {
    let plain = bed_2026(backend, 80).await;
    let (code, out) = plain.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");

    let bed = bed_2026(backend, 80).await;
    let file = takeout_file(&bed, "takeout.mbox").await;
    let (code, out) = bed.backfill(&["--days", "1"]).await;
    assert_eq!(code, 0, "{out}");
    let recent = live(&bed).await;
    // A message of the file older than the backfill's day, relabelled in
    // Gmail after the file was made.
    let relabelled = live(&plain)
        .await
        .into_keys()
        .find(|id| !recent.contains_key(id))
        .expect("a message older than a day");
    for b in [&plain, &bed] {
        b.emulator
            .modify_labels(&b.mailbox, &relabelled, &["STARRED"], &["INBOX", "UNREAD"])
            .expect("relabel");
    }
    let (code, out) = plain.sync().await;
    assert_eq!(code, 0, "{out}");

    bed.emulator.reset_stats();
    let (code, out) = import(&bed, &file).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(bed.calls("users.messages.get"), 0);
    let want = live(&plain).await;
    assert!(want[&relabelled].contains("STARRED"));
    assert_eq!(live(&bed).await, want, "the copy holds Gmail's labels");
    // And a sync from the cursor keeps them.
    let (code, out) = bed.sync().await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(live(&bed).await, want);
    bed.assert_verify_clean().await;
}

async fn kill_9_mid_import_then_a_rerun_stores_each_message_once(backend: Backend) {
    let bed = bed_2026(backend, 1200).await;
    let (expected, _) = bed.expected_ids().await;
    let file = takeout_file(&bed, "takeout.mbox").await;
    let mut child = bed
        .command()
        .args(["import", "--mailbox", bed.mailbox.as_str()])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn import");
    // Right after the first batch is visible.
    bed.wait_for_count(
        "SELECT count(*) FROM mail_messages",
        1,
        std::time::Duration::from_secs(60),
    )
    .await;
    child.start_kill().expect("kill -9");
    let status = child.wait().await.expect("wait");
    assert_eq!(status.code(), None, "killed by the signal, not finished");
    let partial = bed.count("SELECT count(*) FROM mail_messages").await;
    assert!(
        (partial as usize) < expected.len(),
        "the kill must land mid-import ({partial} of {} stored)",
        expected.len()
    );

    let (code, out) = import(&bed, &file).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out["import"]["files"][0]["already_stored"].as_u64(),
        Some(partial as u64),
        "the re-run leaves what the killed run committed alone"
    );
    let stored = stored_raw(&bed).await;
    assert_eq!(
        bed.count("SELECT count(*) FROM mail_messages").await as usize,
        expected.len(),
        "no duplicate"
    );
    assert_eq!(
        stored
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        expected,
        "nothing missing"
    );
    // The killed run is recorded as interrupted; the ledger and the blobs agree.
    assert_eq!(
        bed.count(
            "SELECT count(*) FROM sync_runs WHERE kind = 'import' AND status = 'interrupted'"
        )
        .await,
        1
    );
    bed.assert_verify_clean().await;
}

/// `export --format mbox` writes Takeout's layout: a copy exported from one
/// database imports into another with the same bytes and labels.
async fn an_mbox_export_imports_back(backend: Backend) {
    let source = bed_2026(backend, 60).await;
    let (code, out) = source.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");
    let file = source.store_path().with_extension("export.mbox");
    let out = source
        .run(&[
            "export",
            "--format",
            "mbox",
            "--mailbox",
            source.mailbox.as_str(),
            "--out",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "--out needs a value");
    let out = source
        .command()
        .args([
            "export",
            "--format",
            "mbox",
            "--mailbox",
            source.mailbox.as_str(),
            "--out",
        ])
        .arg(&file)
        .output()
        .await
        .expect("export");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same mailbox (same seed, same ids), another database.
    let target = bed_2026(backend, 60).await;
    let (code, out) = import(&target, &file).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out["import"]["unknown_labels"]
            .as_object()
            .is_some_and(|m| m.is_empty()),
        "{out}"
    );
    assert_eq!(stored_raw(&target).await, stored_raw(&source).await);
    assert_eq!(live(&target).await, live(&source).await);
}

/// The import trusts the file's bytes; `verify --sample N` checks them
/// against Gmail's: a message altered in the file is a finding naming it.
async fn verify_sample_finds_imported_bytes_that_are_not_gmails(backend: Backend) {
    let bed = bed_2026(backend, 40).await;
    let file = takeout_file(&bed, "takeout.mbox").await;
    let (code, out) = import(&bed, &file).await;
    assert_eq!(code, 0, "{out}");
    let n = out["run"]["messages"]["inserted"]
        .as_u64()
        .expect("inserted");
    bed.emulator.reset_stats();
    let (code, report) = bed.run_json(&["verify", "--sample", &n.to_string()]).await;
    assert_eq!(code, 0, "{report}");
    let sample = &report["mailboxes"][0]["sample"];
    assert_eq!(sample["sampled"].as_u64(), Some(n), "{report}");
    assert_eq!(sample["identical"].as_u64(), Some(n), "{report}");
    assert_eq!(bed.calls("users.messages.get"), n);

    // Another bed, whose file has one message altered by a byte.
    let bed = bed_2026(backend, 40).await;
    let victim = bed
        .emulator
        .message_ids(&bed.mailbox)
        .into_iter()
        .find(|id| {
            let raw = bed
                .emulator
                .raw_message(&bed.mailbox, id)
                .unwrap_or_default();
            String::from_utf8_lossy(&raw).contains("Subject:")
        })
        .expect("a message with a subject");
    let decimal = u64::from_str_radix(&victim, 16).expect("hex id");
    let mut text = takeout(&bed).await;
    let at = text
        .windows(format!("From {decimal}@xxx").len())
        .position(|w| w == format!("From {decimal}@xxx").as_bytes())
        .expect("the victim's entry");
    let subject = at
        + text[at..]
            .windows(9)
            .position(|w| w == b"Subject: ")
            .expect("its subject");
    text[subject + 9] ^= 0x20;
    let file = bed.store_path().with_extension("altered.mbox");
    tokio::fs::write(&file, &text).await.expect("write");
    let (code, out) = import(&bed, &file).await;
    assert_eq!(code, 0, "{out}");
    let n = out["run"]["messages"]["inserted"]
        .as_u64()
        .expect("inserted");
    let (code, report) = bed.run_json(&["verify", "--sample", &n.to_string()]).await;
    assert_eq!(code, 4, "{report}");
    let sample = &report["mailboxes"][0]["sample"];
    assert_eq!(sample["differ"].as_u64(), Some(1), "{report}");
    let findings = report["mailboxes"][0]["findings"].to_string();
    assert!(
        findings.contains(&format!("message {victim}")),
        "{findings}"
    );
    // repair puts Gmail's bytes in their place, recorded in the ledger.
    let (code, out) = bed
        .run_json(&[
            "repair",
            "--mailbox",
            bed.mailbox.as_str(),
            "--replace-imported",
            victim.as_str(),
        ])
        .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["messages"]["updated"].as_u64(), Some(1), "{out}");
    let gmail_raw = bed
        .emulator
        .raw_message(&bed.mailbox, &victim)
        .expect("raw");
    assert_eq!(
        stored_raw(&bed).await.get(&victim),
        Some(&hex::encode(Sha256::digest(&gmail_raw)))
    );
    let (code, report) = bed
        .run_json(&["verify", "--deep", "--sample", &n.to_string()])
        .await;
    assert_eq!(code, 0, "{report}");
}

async fn a_malformed_entry_is_named_by_offset_and_the_import_goes_on(backend: Backend) {
    let bed = bed_2026(backend, 30).await;
    let (expected, _) = bed.expected_ids().await;
    let mut text = takeout(&bed).await;
    // The third entry's separator loses its id.
    let separators: Vec<usize> = text
        .windows(6)
        .enumerate()
        .filter(|(i, w)| *w == b"\r\nFrom" && text.get(i + 6) == Some(&b' '))
        .map(|(i, _)| i + 2)
        .collect();
    let bad = separators[1];
    let id_end = bad + text[bad..].iter().position(|b| *b == b'@').expect("@");
    let decimal = String::from_utf8(text[bad + 5..id_end].to_vec()).expect("digits");
    let hex = format!("{:x}", decimal.parse::<u64>().expect("decimal"));
    text.splice(bad + 5..id_end, b"nobody".iter().copied());
    let file = bed.store_path().with_extension("bad.mbox");
    tokio::fs::write(&file, &text).await.expect("write");
    let (code, out) = import(&bed, &file).await;
    assert_eq!(code, 3, "{out}");
    let skipped = out["import"]["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{out}");
    assert_eq!(skipped[0]["offset"].as_u64(), Some(bad as u64), "{out}");
    assert_eq!(skipped[0]["malformed"], true);
    let stored = stored_raw(&bed).await;
    let mut want = expected.clone();
    want.remove(&hex);
    assert_eq!(
        stored
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        want,
        "every other message imported"
    );
    let text_out = bed
        .run(&[
            "import",
            "--mailbox",
            bed.mailbox.as_str(),
            file.to_str().expect("path"),
        ])
        .await;
    let stdout = String::from_utf8_lossy(&text_out.stdout);
    assert!(stdout.contains(&format!("at byte {bad}")), "{stdout}");
}

/// Another account's entry (its id is not in this mailbox), written as
/// Takeout writes one.
const STRANGER_DECIMAL: u64 = 123_456_789_012_345_678;
const STRANGER_MESSAGE: &[u8] = b"From: stranger@other.example\r\nTo: someone@other.example\r\nSubject: another account's mail\r\nMessage-ID: <stranger@other.example>\r\nDate: Tue, 19 Mar 2019 09:13:51 +0000\r\n\r\nnot this mailbox's";

/// The emulator's Takeout file with two entries that are no message of the
/// mailbox: one whose separator lost its id (its bytes are Gmail's message
/// returned, by hex id) and another account's, appended. Returns the file,
/// the damaged message's id and the byte offsets of the two entries.
async fn takeout_with_unmatched(bed: &TestBed) -> (PathBuf, String, u64, u64) {
    let mut text = takeout(bed).await;
    let separators: Vec<usize> = text
        .windows(6)
        .enumerate()
        .filter(|(i, w)| *w == b"\r\nFrom" && text.get(i + 6) == Some(&b' '))
        .map(|(i, _)| i + 2)
        .collect();
    let bad = separators[1];
    let id_end = bad + text[bad..].iter().position(|b| *b == b'@').expect("@");
    let decimal = String::from_utf8(text[bad + 5..id_end].to_vec()).expect("digits");
    let hex = format!("{:x}", decimal.parse::<u64>().expect("decimal"));
    text.splice(bad + 5..id_end, b"nobody".iter().copied());
    // The file ends with a line break, which the appended separator claims.
    assert!(text.ends_with(b"\n"));
    let stranger = text.len() as u64;
    text.extend_from_slice(
        format!(
            "From {STRANGER_DECIMAL}@xxx Tue Mar 19 09:13:51 +0000 2019\r\n\
             X-GM-THRID: {STRANGER_DECIMAL}\r\nX-Gmail-Labels: Inbox,Opened\r\n"
        )
        .as_bytes(),
    );
    text.extend_from_slice(STRANGER_MESSAGE);
    text.extend_from_slice(b"\r\n");
    let file = bed.store_path().with_extension("unmatched.mbox");
    tokio::fs::write(&file, &text).await.expect("write");
    (file, hex, bad as u64, stranger)
}

/// The path of one object of the default org in the bed's fs store.
fn object(bed: &TestBed, sha: &str) -> PathBuf {
    bed.store_path()
        .join("default/sha256")
        .join(&sha[..2])
        .join(&sha[2..4])
        .join(sha)
}

async fn unmatched_entries_are_kept_as_orphans_only_when_asked(backend: Backend) {
    let bed = bed_2026(backend, 30).await;
    let (file, damaged, bad, stranger) = takeout_with_unmatched(&bed).await;
    let path = file.to_str().expect("utf-8 path");
    let file_sha = hex::encode(Sha256::digest(std::fs::read(&file).expect("read")));
    let stranger_id = format!("{STRANGER_DECIMAL:x}");
    let stranger_sha = hex::encode(Sha256::digest(STRANGER_MESSAGE));
    let damaged_sha = hex::encode(Sha256::digest(
        bed.emulator
            .raw_message(&bed.mailbox, &damaged)
            .expect("in Gmail"),
    ));
    let orphans = "SELECT count(*) FROM imported_orphans";
    let kept_events = "SELECT count(*) FROM ledger_events WHERE event_type = 'orphan.kept'";

    // Without the flag: both skipped and named, nothing of theirs stored.
    let (code, out) = import(&bed, &file).await;
    assert_eq!(code, 3, "the entry without an id is not Takeout's: {out}");
    let skipped = out["import"]["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 2, "{out}");
    assert_eq!(skipped[0]["offset"].as_u64(), Some(bad), "{out}");
    assert_eq!(skipped[0]["malformed"], true);
    assert_eq!(skipped[1]["offset"].as_u64(), Some(stranger), "{out}");
    assert_eq!(skipped[1]["message_id"], stranger_id.as_str());
    assert_eq!(skipped[1]["malformed"], false);
    assert_eq!(out["import"]["kept"].as_array().map(Vec::len), Some(0));
    assert_eq!(bed.count(orphans).await, 0);
    assert_eq!(bed.count(kept_events).await, 0);
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM blobs WHERE sha256 = '{stranger_sha}'"
        ))
        .await,
        0
    );
    assert!(!object(&bed, &stranger_sha).exists());

    // With it: both kept as orphans, not skipped; still exit 3.
    let keep = [
        "import",
        "--mailbox",
        bed.mailbox.as_str(),
        "--keep-unmatched",
        path,
    ];
    let (code, out) = bed.run_json(&keep).await;
    assert_eq!(code, 3, "a kept malformed entry still exits 3: {out}");
    assert_eq!(
        out["import"]["skipped"].as_array().map(Vec::len),
        Some(0),
        "{out}"
    );
    let kept = out["import"]["kept"].as_array().expect("kept");
    assert_eq!(kept.len(), 2, "{out}");
    assert_eq!(out["run"]["orphans"]["inserted"].as_u64(), Some(2), "{out}");
    let rows = bed
        .strings(
            "SELECT sha256 || ' ' || reason || ' ' || file_offset || ' ' ||
                    coalesce(provider_message_id, '-') || ' ' || source
             FROM imported_orphans ORDER BY file_offset",
        )
        .await;
    assert_eq!(
        rows,
        vec![
            format!("{damaged_sha} no_id {bad} - takeout:{file_sha}"),
            format!("{stranger_sha} not_in_mailbox {stranger} {stranger_id} takeout:{file_sha}"),
        ]
    );
    let headers = bed
        .strings(&format!(
            "SELECT rfc822_message_id || ' | ' || date_header || ' | ' || subject
             FROM imported_orphans WHERE sha256 = '{stranger_sha}'"
        ))
        .await;
    assert_eq!(
        headers,
        vec![
            "<stranger@other.example> | Tue, 19 Mar 2019 09:13:51 +0000 | another account's mail"
                .to_owned()
        ]
    );
    for sha in [&damaged_sha, &stranger_sha] {
        assert!(object(&bed, sha).exists(), "the orphan's bytes are stored");
        assert_eq!(
            bed.count(&format!(
                "SELECT count(*) FROM blob_copies WHERE sha256 = '{sha}' AND state = 'present'"
            ))
            .await,
            1,
            "the org's copy is recorded"
        );
    }
    assert_eq!(bed.count(kept_events).await, 2);
    // Those it did import are the other messages, as without the flag.
    assert!(!stored_raw(&bed).await.contains_key(&damaged));

    // Again: the same orphans, nothing inserted.
    let (code, again) = bed.run_json(&keep).await;
    assert_eq!(code, 3, "{again}");
    assert_eq!(
        again["run"]["orphans"]["inserted"].as_u64(),
        Some(0),
        "{again}"
    );
    assert_eq!(
        again["run"]["orphans"]["unchanged"].as_u64(),
        Some(2),
        "{again}"
    );
    assert_eq!(bed.count(orphans).await, 2);
    assert_eq!(bed.count(kept_events).await, 2);

    // Listed.
    let (code, listed) = bed
        .run_json(&["orphans", "--mailbox", bed.mailbox.as_str()])
        .await;
    assert_eq!(code, 0, "{listed}");
    assert_eq!(
        listed["orphans"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    let text = bed
        .run(&["orphans", "--mailbox", bed.mailbox.as_str()])
        .await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("another account's mail"), "{text}");

    // gc: their objects are recorded, so old ones stay.
    for sha in [&damaged_sha, &stranger_sha] {
        std::fs::File::options()
            .write(true)
            .open(object(&bed, sha))
            .and_then(|f| {
                f.set_modified(
                    std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86400),
                )
            })
            .expect("age the object");
    }
    let (code, gc) = bed.run_json(&["gc"]).await;
    assert_eq!(code, 0, "{gc}");
    assert!(object(&bed, &damaged_sha).exists() && object(&bed, &stranger_sha).exists());
    bed.assert_verify_clean().await;

    // The damaged entry was message `damaged`: a backfill stores it from
    // Gmail (the same bytes), Gmail deletes it, and a purge of long-deleted
    // mail must still leave the bytes the orphan keeps.
    let (code, out) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(stored_raw(&bed).await.get(&damaged), Some(&damaged_sha));
    bed.emulator
        .delete_message(&bed.mailbox, &damaged)
        .expect("delete");
    let (code, out) = bed.sync().await;
    assert_eq!(code, 0, "{out}");
    let shift = match backend {
        Backend::Postgres => "deleted_at - interval '30 days'",
        Backend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%f+00:00', deleted_at, '-30 days')",
    };
    let moved = bed
        .execute(&format!(
            "UPDATE mail_messages SET deleted_at = {shift}
             WHERE deleted_at IS NOT NULL AND provider_message_id = '{damaged}'"
        ))
        .await;
    assert_eq!(moved, 1);
    let (code, purge) = bed
        .run_json(&["gc", "--purge-deleted-older-than", "7d"])
        .await;
    assert_eq!(code, 0, "{purge}");
    assert!(
        object(&bed, &damaged_sha).exists(),
        "the orphan's bytes survive the purge of the deleted message: {purge}"
    );
    assert_eq!(
        bed.count(&format!(
            "SELECT count(*) FROM blob_copies WHERE sha256 = '{damaged_sha}' AND state = 'present'"
        ))
        .await,
        1,
        "{purge}"
    );
    bed.assert_verify_clean().await;
}

/// The emulator's Vault export of the bed's mailbox, laid out as Vault's zip
/// unpacks: a folder holding `<export>-metadata.xml` and the account's mbox.
/// Returns (folder, mbox, metadata).
async fn vault_export(bed: &TestBed, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let folder = bed.store_path().with_extension(name);
    tokio::fs::create_dir_all(&folder).await.expect("mkdir");
    let mbox = folder.join(format!("{}_0.mbox", bed.mailbox));
    let metadata = folder.join("export-1-metadata.xml");
    tokio::fs::write(&mbox, emulator_file(bed, "vault/mbox").await)
        .await
        .expect("write");
    tokio::fs::write(&metadata, emulator_file(bed, "vault/metadata").await)
        .await
        .expect("write");
    (folder, mbox, metadata)
}

async fn a_vault_import_then_a_backfill_costs_only_listing_and_labels_match_a_plain_backfill(
    backend: Backend,
) {
    let plain = bed_2026(backend, 300).await;
    plain.emulator.reset_stats();
    let (code, out) = plain.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");
    let plain_units = units(&plain);
    let want = live(&plain).await;

    let bed = bed_2026(backend, 300).await;
    let (expected, _) = bed.expected_ids().await;
    // The folder as Vault's zip unpacks: its mbox is found with its metadata.
    let (folder, mbox, _) = vault_export(&bed, "vault").await;
    let sha = hex::encode(Sha256::digest(std::fs::read(&mbox).expect("read")));
    let label_pages = label_listing_pages(&bed).await;
    bed.emulator.reset_stats();
    let (code, out) = import(&bed, &folder).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out["run"]["messages"]["inserted"].as_u64(),
        Some(expected.len() as u64),
        "{out}"
    );
    assert_eq!(out["import"]["files"][0]["sha256"], sha.as_str());
    assert_eq!(
        out["import"]["notes"].as_array().map(Vec::len),
        Some(0),
        "{out}"
    );
    assert!(
        out["import"]["unknown_labels"]
            .as_object()
            .is_some_and(|m| m.is_empty()),
        "{out}"
    );
    assert_eq!(bed.calls("users.messages.get"), 0);
    assert_eq!(bed.calls("users.labels.list"), 1);
    // The cursor, labels.list, the mailbox's ids (one page) and one listing
    // per label: nothing per message.
    let import_units = units(&bed);
    assert_eq!(
        import_units,
        1 + 1 + (1 + label_pages) * 5,
        "{:?}",
        bed.emulator.stats()
    );
    // Every label name of the metadata maps to a label id (unknown_labels
    // above is empty); the rows end with Gmail's labels.
    assert_eq!(
        live(&bed).await,
        want,
        "labels as the Vault metadata gives them"
    );
    let stored = stored_raw(&bed).await;
    for (id, sha) in &stored {
        let raw = bed
            .emulator
            .raw_message(&bed.mailbox, id)
            .expect("in Gmail");
        assert_eq!(&hex::encode(Sha256::digest(&raw)), sha, "message {id}");
    }
    let sources = ingested_payloads(&bed).await;
    assert_eq!(sources.len(), expected.len());
    for p in &sources {
        assert_eq!(p["source"], format!("vault:{sha}"), "{p}");
    }

    // The backfill after it: listing and labels only.
    bed.emulator.reset_stats();
    let (code, out) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["messages"]["inserted"].as_u64(), Some(0), "{out}");
    assert_eq!(
        bed.calls("users.messages.get"),
        0,
        "{:?}",
        bed.emulator.stats()
    );
    assert_eq!(
        live(&bed).await,
        want,
        "the same rows and labels as a plain backfill"
    );
    // On 300 messages the fixed costs (labels, one page per listing) weigh
    // about 2% of a plain backfill; the share is measured at 10,000 messages
    // by scripts/bench-import.sh. Asserted here: nothing per message.
    let after = units(&bed);
    eprintln!(
        "vault: plain backfill {plain_units} units; import {import_units} + backfill after it {after}"
    );
    bed.assert_verify_clean().await;
    let out = bed.run(&["verify", "--full"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

async fn the_same_vault_export_twice_inserts_nothing_and_an_unlisted_message_is_noted(
    backend: Backend,
) {
    let bed = bed_2026(backend, 60).await;
    let (_, mbox, metadata) = vault_export(&bed, "vault").await;
    // One message's Document taken out of the metadata: still imported, with
    // no labels, and named.
    let xml = tokio::fs::read_to_string(&metadata).await.expect("read");
    let start = xml.find("<Document ").expect("a Document");
    let end = start + xml[start..].find("</Document>").expect("its end") + "</Document>".len();
    let file_id = &xml[start..end]
        .split("FileName='")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("its file id")
        .to_owned();
    let unlisted = format!(
        "{:x}",
        file_id
            .split('-')
            .next()
            .and_then(|d| d.parse::<u64>().ok())
            .expect("decimal id")
    );
    let elsewhere = bed.store_path().with_extension("other-metadata.xml");
    tokio::fs::write(&elsewhere, format!("{}{}", &xml[..start], &xml[end..]))
        .await
        .expect("write");
    let args = |m: &std::path::Path| {
        [
            "import".to_owned(),
            "--mailbox".to_owned(),
            bed.mailbox.clone(),
            "--vault-metadata".to_owned(),
            m.to_str().expect("utf-8").to_owned(),
            mbox.to_str().expect("utf-8").to_owned(),
        ]
    };
    let first_args = args(&elsewhere);
    let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let (code, first) = bed.run_json(&first_args).await;
    assert_eq!(code, 0, "{first}");
    let notes = first["import"]["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{first}");
    assert_eq!(notes[0]["message_id"], unlisted.as_str(), "{first}");
    // Imported all the same (unless Gmail has it in SPAM or TRASH now).
    let (in_scope, _) = bed.expected_ids().await;
    assert_eq!(
        stored_raw(&bed).await.contains_key(&unlisted),
        in_scope.contains(&unlisted),
        "{first}"
    );

    let events = "SELECT count(*) FROM ledger_events WHERE event_type = 'message.ingested'";
    let before = bed.count(events).await;
    let rows = bed.count("SELECT count(*) FROM mail_messages").await;
    let second_args = args(&metadata);
    let second_args: Vec<&str> = second_args.iter().map(String::as_str).collect();
    let (code, second) = bed.run_json(&second_args).await;
    assert_eq!(code, 0, "{second}");
    assert_eq!(second["run"]["messages"]["inserted"].as_u64(), Some(0));
    assert_eq!(
        second["import"]["files"][0]["already_stored"].as_u64(),
        first["run"]["messages"]["inserted"].as_u64()
    );
    assert_eq!(bed.count(events).await, before);
    assert_eq!(bed.count("SELECT count(*) FROM mail_messages").await, rows);
}

async fn a_vault_metadata_file_that_does_not_parse_is_named_with_its_position(backend: Backend) {
    let bed = bed_2026(backend, 10).await;
    let (folder, _, metadata) = vault_export(&bed, "vault").await;
    let mut xml = tokio::fs::read_to_string(&metadata).await.expect("read");
    let cut = xml.find("</Tags>").expect("a Tags end");
    xml.replace_range(cut..cut + "</Tags>".len(), "</Tag>");
    tokio::fs::write(&metadata, &xml).await.expect("write");
    let out = bed
        .run(&[
            "import",
            "--mailbox",
            bed.mailbox.as_str(),
            folder.to_str().expect("utf-8"),
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains(metadata.to_str().expect("utf-8")) && lines[0].contains("at byte "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no run, no summary");
}

/// A Vault entry whose bytes are not what the metadata file says (its MD5)
/// is malformed: skipped and named, or kept as an orphan with
/// `--keep-unmatched`, exactly as a Takeout entry is.
async fn a_vault_entry_that_is_not_what_its_metadata_says_is_kept_as_an_orphan_when_asked(
    backend: Backend,
) {
    let bed = bed_2026(backend, 20).await;
    let (_, mbox, metadata) = vault_export(&bed, "vault").await;
    let mut bytes = tokio::fs::read(&mbox).await.expect("read");
    let second = bytes
        .windows(7)
        .enumerate()
        .filter(|(_, w)| w == b"\r\nFrom " || &w[1..] == b"\nFrom ")
        .map(|(i, _)| i)
        .next()
        .expect("a second entry");
    let subject = second
        + bytes[second..]
            .windows(9)
            .position(|w| w == b"Subject: ")
            .expect("a Subject header");
    bytes[subject] = b's';
    let damaged = bed.store_path().with_extension("damaged.mbox");
    tokio::fs::write(&damaged, &bytes).await.expect("write");
    let (metadata, damaged) = (
        metadata.to_str().expect("utf-8"),
        damaged.to_str().expect("utf-8"),
    );
    let mut args = vec![
        "import",
        "--mailbox",
        bed.mailbox.as_str(),
        "--vault-metadata",
        metadata,
        damaged,
    ];
    let (code, out) = bed.run_json(&args).await;
    assert_eq!(code, 3, "{out}");
    let skipped = out["import"]["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{out}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("MD5")),
        "{out}"
    );
    assert_eq!(bed.count("SELECT count(*) FROM imported_orphans").await, 0);

    args.insert(3, "--keep-unmatched");
    let (code, out) = bed.run_json(&args).await;
    assert_eq!(code, 3, "{out}");
    let kept = out["import"]["kept"].as_array().expect("kept");
    assert_eq!(kept.len(), 1, "{out}");
    assert_eq!(kept[0]["reason"], "malformed", "{out}");
    assert_eq!(bed.count("SELECT count(*) FROM imported_orphans").await, 1);
    bed.assert_verify_clean().await;
}
