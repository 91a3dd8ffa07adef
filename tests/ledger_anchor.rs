//! The anchored ledger, end to end on both backends: every run summary gives
//! the mailbox's ledger head, `--anchor-to` appends it to a file, and
//! `verify --expect-head SEQ:HASH` proves the chain still extends it. The
//! attack it exists for: someone who can lift the append-only triggers swaps
//! a message's raw bytes and rewrites the whole chain with valid hashes;
//! plain `verify` cannot see it, the anchored head does. And `verify` checks
//! each row against the raw sha256 its `message.ingested` event recorded.

mod common;

use chrono::{DateTime, Utc};
use common::{Backend, TestBed, TestDb, small_mailbox};
use ledger::{GENESIS_HASH, HashInput, canonical::canonical_json, event_hash};
use serde_json::Value;

on_both_backends!(
    runs_anchor_their_head_and_verify_proves_the_chain_extends_it,
    a_row_that_disagrees_with_its_ingest_event_is_a_finding,
);

fn head_of(summary: &Value) -> String {
    let head = &summary["ledger_head"];
    format!(
        "{}:{}",
        head["seq"].as_i64().expect("seq"),
        head["hash"].as_str().expect("hash")
    )
}

async fn verify(bed: &TestBed, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["verify", "--offline", "--mailbox", bed.mailbox.as_str()];
    args.extend_from_slice(extra);
    let out = bed.run(&args).await;
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The mailbox's events as stored: (seq, run_id, type, subject, payload, created_at).
type StoredEvent = (i64, i64, String, String, String, DateTime<Utc>);

async fn events(bed: &TestBed) -> Vec<StoredEvent> {
    match &bed.db {
        TestDb::Postgres(pool) => sqlx::query_as(
            "SELECT seq, run_id, event_type, subject_key, payload::text, created_at
             FROM ledger_events ORDER BY seq",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        TestDb::Sqlite(pool, _) => sqlx::query_as(
            "SELECT seq, run_id, event_type, subject_key, payload, created_at
             FROM ledger_events ORDER BY seq",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

/// What an attacker with the database's keys does: lifts the triggers,
/// points a message at other bytes, and rewrites every event's payload and
/// hashes so the chain verifies. Returns the message swapped.
async fn swap_a_message_and_rewrite_the_chain(bed: &TestBed) -> String {
    let mailbox_id = bed.count("SELECT id FROM mailboxes").await;
    let all = events(bed).await;
    let (victim, other_sha) = {
        let shas = bed
            .strings("SELECT raw_sha256 FROM mail_messages ORDER BY provider_message_id")
            .await;
        let ids = bed
            .strings("SELECT provider_message_id FROM mail_messages ORDER BY provider_message_id")
            .await;
        let other = shas
            .iter()
            .find(|s| **s != shas[0])
            .expect("two blobs")
            .clone();
        (ids[0].clone(), other)
    };
    let subject = format!("message:{victim}");
    bed.execute(&format!(
        "UPDATE mail_messages SET raw_sha256 = '{other_sha}' WHERE provider_message_id = '{victim}'"
    ))
    .await;
    bed.execute(match bed.backend() {
        Backend::Postgres => {
            "ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_update_delete"
        }
        Backend::Sqlite => "DROP TRIGGER ledger_events_no_update",
    })
    .await;
    let mut prev = GENESIS_HASH.to_owned();
    for (seq, run_id, event_type, subject_key, payload, created_at) in all {
        let mut payload: Value = serde_json::from_str(&payload).unwrap();
        if subject_key == subject && event_type == "message.ingested" {
            payload["raw_sha256"] = Value::String(other_sha.clone());
        }
        let canonical = canonical_json(&payload).unwrap();
        let hash = event_hash(
            &prev,
            &HashInput {
                mailbox_id,
                seq,
                run_id,
                event_type: &event_type,
                subject_key: &subject_key,
                payload_canonical: &canonical,
                created_at_micros: created_at.timestamp_micros(),
            },
        )
        .unwrap();
        let cast = if bed.backend() == Backend::Postgres {
            "::jsonb"
        } else {
            ""
        };
        bed.execute(&format!(
            "UPDATE ledger_events SET payload = '{}'{cast}, prev_hash = '{prev}', hash = '{hash}'
             WHERE mailbox_id = {mailbox_id} AND seq = {seq}",
            canonical.replace('\'', "''")
        ))
        .await;
        prev = hash;
    }
    victim
}

async fn runs_anchor_their_head_and_verify_proves_the_chain_extends_it(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(12)).await;
    let anchors = bed.store.path().join("anchors.jsonl");
    let anchor_to = format!("file:{}", anchors.display());

    let (code, first) = bed.backfill(&["--anchor-to", &anchor_to]).await;
    assert_eq!(code, 0, "{first}");
    let first_head = head_of(&first);
    let events_now = bed.count("SELECT count(*) FROM ledger_events").await;
    assert_eq!(
        first["ledger_head"]["seq"], events_now,
        "the head after the run"
    );
    bed.emulator
        .trash(
            &bed.mailbox,
            &bed.strings("SELECT provider_message_id FROM mail_messages")
                .await[0],
        )
        .unwrap();
    let out = bed
        .run(&["--anchor-to", &anchor_to, "sync", "--mailbox", &bed.mailbox])
        .await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let second_head = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ledger head"))
        .expect("the text summary prints the head")
        .trim()
        .to_owned();
    assert_ne!(second_head, first_head);

    // One line per run, in order, naming the mailbox, the run and the head.
    let lines: Vec<Value> = std::fs::read_to_string(&anchors)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["mailbox"], bed.mailbox.as_str());
    assert_eq!(lines[0]["run_id"], first["run_id"]);
    assert_eq!(
        format!("{}:{}", lines[0]["seq"], lines[0]["hash"].as_str().unwrap()),
        first_head
    );
    assert_eq!(
        format!("{}:{}", lines[1]["seq"], lines[1]["hash"].as_str().unwrap()),
        second_head
    );

    // The chain extends both heads.
    for head in [&first_head, &second_head] {
        let (code, out) = verify(&bed, &["--expect-head", head]).await;
        assert_eq!(code, Some(0), "{out}");
    }
    // A head it never had, or one past its end.
    let forged = format!("{}:{}", first["ledger_head"]["seq"], "0".repeat(64));
    let (code, out) = verify(&bed, &["--expect-head", &forged]).await;
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("rewritten"), "{out}");
    let beyond = format!("{}:{}", events_now + 1000, "a".repeat(64));
    let (code, out) = verify(&bed, &["--expect-head", &beyond]).await;
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("truncated"), "{out}");

    // The attack: invisible to the chain walk and the row check, not to the anchor.
    let victim = swap_a_message_and_rewrite_the_chain(&bed).await;
    let (code, out) = verify(&bed, &[]).await;
    assert_eq!(
        code,
        Some(0),
        "a consistent rewrite passes without an anchor: {out}"
    );
    let (code, out) = verify(&bed, &["--expect-head", &first_head]).await;
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("rewritten"), "{out}");
    let _ = victim;

    // Bad input is a usage error.
    for bad in [
        &["--expect-head", "12"][..],
        &["--expect-head", "x:abc"][..],
    ] {
        let (code, out) = verify(&bed, bad).await;
        assert_eq!(code, Some(2), "{out}");
    }
    let out = bed
        .run(&["verify", "--offline", "--expect-head", &first_head])
        .await;
    assert_eq!(out.status.code(), Some(2), "needs --mailbox");
}

async fn a_row_that_disagrees_with_its_ingest_event_is_a_finding(backend: Backend) {
    let bed = TestBed::on(backend, small_mailbox(8)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let ids = bed
        .strings("SELECT provider_message_id FROM mail_messages ORDER BY provider_message_id")
        .await;
    let shas = bed
        .strings("SELECT raw_sha256 FROM mail_messages ORDER BY provider_message_id")
        .await;
    let other = shas.iter().find(|s| **s != shas[0]).unwrap();
    bed.execute(&format!(
        "UPDATE mail_messages SET raw_sha256 = '{other}' WHERE provider_message_id = '{}'",
        ids[0]
    ))
    .await;
    let (code, out) = verify(&bed, &[]).await;
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains(&format!(
            "message {}: its row's raw sha256 is {other}, the ledger recorded {}",
            ids[0], shas[0]
        )),
        "{out}"
    );
}

/// `--anchor-to s3://…`: one write-once object per run, holding the head the
/// summary gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_anchor_their_head_in_s3_once() {
    let Ok(bucket) = std::env::var("MAILINGEST_TEST_S3_BUCKET") else {
        panic!("needs the S3 test server: run through scripts/test.sh");
    };
    let bed = TestBed::on(Backend::Sqlite, small_mailbox(6)).await;
    let anchor_to = format!("s3://{bucket}/anchors-{}", bed.db_name);
    let (code, run) = bed.backfill(&["--anchor-to", &anchor_to]).await;
    assert_eq!(code, 0, "{run}");
    assert!(run.get("anchor_error").is_none(), "{run}");
    let head = &run["ledger_head"];
    let path = format!(
        "anchors/default/{}/{}-{}.json",
        bed.mailbox,
        head["seq"],
        head["hash"].as_str().unwrap()
    );
    let anchors = store::BlobStore::from_url(&anchor_to, "").await.unwrap();
    let record: Value = serde_json::from_slice(
        &anchors
            .get_record(&path)
            .await
            .unwrap()
            .expect("the anchor object"),
    )
    .unwrap();
    assert_eq!(record["seq"], head["seq"]);
    assert_eq!(record["hash"], head["hash"]);
    assert_eq!(record["run_id"], run["run_id"]);
    // Written once: the same record again creates nothing, another is refused.
    let same = anchors.get_record(&path).await.unwrap().unwrap();
    assert!(
        !anchors.put_record(&path, same).await.unwrap(),
        "already there"
    );
    assert!(
        anchors
            .put_record(&path, bytes::Bytes::from_static(b"{}"))
            .await
            .is_err(),
        "never replaced"
    );
    let kept: Value =
        serde_json::from_slice(&anchors.get_record(&path).await.unwrap().unwrap()).unwrap();
    assert_eq!(kept, record);
}
