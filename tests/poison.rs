//! One poison message never blocks a mailbox: a message whose content reaches
//! a ledger payload with a NUL character (a MIME type parameter, say) is
//! stored like any other (the NUL dropped from the convenience copies, the raw
//! bytes archived as they are), and the rest of the batch commits.

mod common;

use common::{TestBed, small_mailbox};

fn poison() -> Vec<u8> {
    b"From: Sender <sender@example.org>\r\nTo: ann@example.com\r\nSubject: poison\r\n\
Message-ID: <poison@example.org>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b\r\nContent-Type: application/x-\0evil; name=\"a\0b.bin\"\r\n\
Content-Disposition: attachment; filename=\"a\0b.bin\"\r\n\r\nbytes\r\n--b--\r\n"
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_a_mime_parameter_does_not_block_the_mailbox() {
    let bed = TestBed::new(small_mailbox(6)).await;
    let (code, run) = bed.backfill(&[]).await;
    assert_eq!(code, 0, "{run}");
    let id = bed
        .emulator
        .insert_raw(&bed.mailbox, &poison(), &["INBOX"], None)
        .unwrap();
    let after = bed
        .emulator
        .insert_raw(
            &bed.mailbox,
            b"From: a@example.org\r\nSubject: after\r\n\r\nafter\r\n",
            &["INBOX"],
            None,
        )
        .unwrap();
    let (code, run) = bed.sync().await;
    assert_eq!(code, 0, "{run}");
    for m in [&id, &after] {
        let n = bed
            .count(&format!(
                "SELECT count(*) FROM mail_messages WHERE provider_message_id = '{m}'"
            ))
            .await;
        assert_eq!(n, 1, "{m} stored: {run}");
    }
    bed.assert_verify_clean().await;
}
