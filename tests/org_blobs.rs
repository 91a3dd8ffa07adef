//! Issue 26, finding 3, through the binary on both backends: two orgs in one
//! database and one store, each under its own prefix, holding the same bytes.
//! A blob's state (present, purging, purged) is each org's own: after org A
//! purges X, org B storing the same bytes must not make A's verify expect X
//! under A's prefix (before the fix, A's `verify --deep` then reported a loss
//! that no repair could mend); and org B purging its copy leaves A's alone.

mod common;

use common::{Backend, TestBed};
use gmail_emulator::EmulatorConfig;

on_both_backends!(one_orgs_put_never_changes_what_anothers_verify_sees);

const ANN: &str = "ann@example.com";
const BOB: &str = "bob@example.com";

fn raw_x() -> Vec<u8> {
    b"From: Sender <sender@example.com>\r\nTo: both@example.com\r\n\
      Subject: the same bytes in two orgs\r\nMessage-ID: <same-bytes@example.com>\r\n\
      Date: Mon, 07 Dec 2026 09:00:00 +0000\r\n\r\nidentical in both orgs\r\n"
        .to_vec()
}

async fn in_org(bed: &TestBed, org: &str, args: &[&str]) -> (i32, String) {
    let out = bed
        .command()
        .args(["--org", org])
        .args(args)
        .output()
        .await
        .expect("run mailingest");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

async fn one_orgs_put_never_changes_what_anothers_verify_sees(backend: Backend) {
    let config = EmulatorConfig {
        seed: 11,
        messages: 3,
        days: 6,
        mailboxes: vec![ANN.into(), BOB.into()],
        ..EmulatorConfig::default()
    };
    let bed = TestBed::on(backend, config).await;
    let x_at_ann = bed
        .emulator
        .insert_raw(ANN, &raw_x(), &["INBOX"], None)
        .expect("insert");
    let (code, said) = in_org(&bed, "a", &["backfill", "--mailbox", ANN]).await;
    assert_eq!(code, 0, "{said}");

    // Gmail deletes X from ann's mailbox long ago; org a purges its bytes.
    bed.emulator.delete_message(ANN, &x_at_ann).expect("delete");
    let (code, said) = in_org(&bed, "a", &["sync", "--mailbox", ANN]).await;
    assert_eq!(code, 0, "{said}");
    let shift = match bed.backend() {
        Backend::Postgres => "deleted_at - interval '10 days'",
        Backend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%f+00:00', deleted_at, '-10 days')",
    };
    let moved = bed
        .execute(&format!(
            "UPDATE mail_messages SET deleted_at = {shift}
             WHERE provider_message_id = '{x_at_ann}'"
        ))
        .await;
    assert_eq!(moved, 1);
    let (code, said) = in_org(
        &bed,
        "a",
        &["gc", "--purge-deleted-older-than", "1d", "--mailbox", ANN],
    )
    .await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("purge"), "{said}");

    // Org b stores the same bytes under its own prefix.
    bed.emulator
        .insert_raw(BOB, &raw_x(), &["INBOX"], None)
        .expect("insert");
    let (code, said) = in_org(&bed, "b", &["backfill", "--mailbox", BOB]).await;
    assert_eq!(code, 0, "{said}");

    // Neither org's verify sees the other's put or purge.
    let (code, said) = in_org(&bed, "a", &["verify", "--deep", "--mailbox", ANN]).await;
    assert_eq!(code, 0, "org a's verify is clean: {said}");
    let (code, said) = in_org(&bed, "b", &["verify", "--deep", "--mailbox", BOB]).await;
    assert_eq!(code, 0, "org b's verify is clean: {said}");
    // And org a's repair has nothing to mend (nor fetches from Gmail).
    let (code, said) = in_org(&bed, "a", &["repair", "--mailbox", ANN]).await;
    assert_eq!(code, 0, "{said}");

    // The other way round: X arrives at ann again (org a stores it anew),
    // then org b purges its own copy. Org a's copy and verify are untouched.
    let x_again = bed
        .emulator
        .insert_raw(ANN, &raw_x(), &["INBOX"], None)
        .expect("insert");
    let (code, said) = in_org(&bed, "a", &["sync", "--mailbox", ANN]).await;
    assert_eq!(code, 0, "{said}");
    let x_at_bob = bed
        .strings(&format!(
            "SELECT m.provider_message_id FROM mail_messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
             WHERE mb.org_id = 'b' AND m.raw_sha256 =
                   (SELECT raw_sha256 FROM mail_messages WHERE provider_message_id = '{x_again}')"
        ))
        .await
        .remove(0);
    bed.emulator.delete_message(BOB, &x_at_bob).expect("delete");
    let (code, said) = in_org(&bed, "b", &["sync", "--mailbox", BOB]).await;
    assert_eq!(code, 0, "{said}");
    let moved = bed
        .execute(&format!(
            "UPDATE mail_messages SET deleted_at = {shift}
             WHERE provider_message_id = '{x_at_bob}'"
        ))
        .await;
    assert_eq!(moved, 1);
    let (code, said) = in_org(
        &bed,
        "b",
        &["gc", "--purge-deleted-older-than", "1d", "--mailbox", BOB],
    )
    .await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("purge (run"), "{said}");
    let states = bed
        .strings(&format!(
            "SELECT c.org_id || ':' || c.state FROM blob_copies c
             WHERE c.sha256 = (SELECT raw_sha256 FROM mail_messages WHERE provider_message_id = '{x_again}')
             ORDER BY c.org_id"
        ))
        .await;
    assert_eq!(states, vec!["a:present", "b:purged"]);
    let (code, said) = in_org(&bed, "a", &["verify", "--deep", "--mailbox", ANN]).await;
    assert_eq!(code, 0, "org a's verify is clean: {said}");
    let (code, said) = in_org(&bed, "b", &["verify", "--deep", "--mailbox", BOB]).await;
    assert_eq!(code, 0, "org b's verify is clean: {said}");
}
