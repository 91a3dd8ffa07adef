//! The emulator driven by google-gmail1 itself: lists, formats, history, errors, limits.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::*;
use google_gmail1::common::{Delegate, Response, Retry};

#[tokio::test]
async fn pagination_reaches_the_last_page() {
    let emu = start(230).await;
    let hub = hub(&emu.url());
    let mut token: Option<String> = None;
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let mut call = hub
            .users()
            .messages_list("me")
            .max_results(100)
            .include_spam_trash(true);
        if let Some(t) = &token {
            call = call.page_token(t);
        }
        let (_, list) = call.doit().await.expect("list");
        pages += 1;
        assert_eq!(list.result_size_estimate, Some(230));
        ids.extend(
            list.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.id),
        );
        token = list.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids, emu.message_ids(&emu.default_mailbox()));
    // Without includeSpamTrash the spam/trash messages are left out.
    let (_, default) = hub
        .users()
        .messages_list("me")
        .max_results(500)
        .doit()
        .await
        .expect("list");
    let visible = default.messages.unwrap_or_default();
    assert!(
        visible.len() < 230 && visible.len() > 150,
        "{}",
        visible.len()
    );
    assert!(default.next_page_token.is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn raw_round_trip_of_imported_and_inserted_mail() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml");
    let emu = Emulator::start(EmulatorConfig {
        messages: 0,
        import: Some(dir.clone()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("start");
    let hub = hub(&emu.url());
    let mut originals: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
        .collect();
    let (inserted, _) = mixed_message();
    let id = emu
        .insert_raw(&emu.default_mailbox(), &inserted, &["INBOX"], None)
        .expect("insert");
    originals.push(inserted);
    let mut fetched = Vec::new();
    for id in emu.message_ids(&emu.default_mailbox()) {
        let (_, m) = hub
            .users()
            .messages_get("me", &id)
            .format("raw")
            .doit()
            .await
            .expect("get raw");
        let raw = m.raw.expect("raw field");
        assert_eq!(m.size_estimate, Some(raw.len() as i32));
        fetched.push(raw);
    }
    originals.sort();
    fetched.sort();
    assert_eq!(originals, fetched);
    assert!(emu.message_ids(&emu.default_mailbox()).contains(&id));
    emu.shutdown().await;
}

#[tokio::test]
async fn full_payload_matches_the_mime_and_attachment_ids_rotate() {
    let emu = start(0).await;
    let (raw, attachment) = mixed_message();
    let id = emu
        .insert_raw(&emu.default_mailbox(), &raw, &["INBOX", "UNREAD"], None)
        .expect("insert");
    let hub = hub(&emu.url());
    let (_, m) = hub
        .users()
        .messages_get("me", &id)
        .format("full")
        .doit()
        .await
        .expect("full");
    let p = m.payload.expect("payload");
    assert_eq!(p.part_id.as_deref(), Some(""));
    assert_eq!(p.mime_type.as_deref(), Some("multipart/mixed"));
    let subject = p
        .headers
        .as_ref()
        .and_then(|h| h.iter().find(|h| h.name.as_deref() == Some("Subject")))
        .and_then(|h| h.value.clone());
    assert_eq!(subject.as_deref(), Some("Café plans"));
    let parts = p.parts.expect("children");
    assert_eq!(parts.len(), 2);
    let alt = &parts[0];
    assert_eq!(alt.part_id.as_deref(), Some("0"));
    let alt_parts = alt.parts.as_ref().expect("alternative children");
    assert_eq!(alt_parts[0].part_id.as_deref(), Some("0.0"));
    assert_eq!(alt_parts[0].mime_type.as_deref(), Some("text/plain"));
    assert_eq!(
        alt_parts[0].body.as_ref().and_then(|b| b.data.clone()),
        Some(b"Hello there.".to_vec())
    );
    assert_eq!(alt_parts[1].part_id.as_deref(), Some("0.1"));
    let att = &parts[1];
    assert_eq!(att.part_id.as_deref(), Some("1"));
    assert_eq!(att.filename.as_deref(), Some("blob.bin"));
    let body = att.body.as_ref().expect("body");
    assert_eq!(body.size, Some(300));
    assert!(body.data.is_none(), "attachments go by attachmentId");
    let first = body.attachment_id.clone().expect("attachment id");

    let (_, again) = hub
        .users()
        .messages_get("me", &id)
        .format("full")
        .doit()
        .await
        .expect("full again");
    let second = again.payload.and_then(|p| p.parts).and_then(|p| {
        p.get(1)
            .and_then(|a| a.body.as_ref())
            .and_then(|b| b.attachment_id.clone())
    });
    let second = second.expect("second id");
    assert_ne!(first, second, "attachmentId is fresh on every fetch");
    for aid in [&first, &second] {
        let (_, a) = hub
            .users()
            .messages_attachments_get("me", &id, aid)
            .doit()
            .await
            .expect("attachment");
        assert_eq!(a.data.as_deref(), Some(&attachment[..]));
        assert_eq!(a.size, Some(300));
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn metadata_and_minimal_formats() {
    let emu = start(0).await;
    let (raw, _) = mixed_message();
    let id = emu
        .insert_raw(&emu.default_mailbox(), &raw, &["INBOX", "Projects"], None)
        .expect("insert");
    let hub = hub(&emu.url());
    let (_, m) = hub
        .users()
        .messages_get("me", &id)
        .format("metadata")
        .add_metadata_headers("Subject")
        .add_metadata_headers("from")
        .doit()
        .await
        .expect("metadata");
    let headers = m.payload.and_then(|p| p.headers).expect("headers");
    let names: Vec<_> = headers.iter().filter_map(|h| h.name.clone()).collect();
    assert_eq!(names, vec!["From", "Subject"]);
    let (_, min) = hub
        .users()
        .messages_get("me", &id)
        .format("minimal")
        .doit()
        .await
        .expect("minimal");
    assert!(min.payload.is_none() && min.raw.is_none());
    let labels = min.label_ids.expect("labels");
    assert!(labels.contains(&"INBOX".to_string()));
    assert!(labels.iter().any(|l| l.starts_with("Label_")));
    assert_eq!(min.snippet.as_deref(), Some("Hello there."));
    assert!(min.history_id.is_some() && min.internal_date.is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn threads_list_and_get() {
    let emu = start(120).await;
    let hub = hub(&emu.url());
    let (_, list) = hub
        .users()
        .threads_list("me")
        .max_results(500)
        .include_spam_trash(true)
        .doit()
        .await
        .expect("threads");
    let threads = list.threads.expect("threads");
    let all: HashSet<String> = emu
        .message_ids(&emu.default_mailbox())
        .iter()
        .filter_map(|m| emu.thread_of(&emu.default_mailbox(), m))
        .collect();
    assert_eq!(threads.len(), all.len());
    let multi = {
        let mut found = None;
        for t in &threads {
            let id = t.id.clone().expect("id");
            let (_, full) = hub
                .users()
                .threads_get("me", &id)
                .format("minimal")
                .doit()
                .await
                .expect("thread");
            let msgs = full.messages.expect("messages");
            let max = msgs.iter().filter_map(|m| m.history_id).max();
            assert_eq!(full.history_id, max);
            assert_eq!(t.history_id, max);
            let dates: Vec<i64> = msgs.iter().filter_map(|m| m.internal_date).collect();
            assert!(dates.windows(2).all(|w| w[0] <= w[1]), "oldest first");
            if msgs.len() > 1 {
                found = Some(id);
            }
        }
        found
    };
    assert!(multi.is_some(), "generator makes multi-message threads");
    emu.shutdown().await;
}

#[tokio::test]
async fn history_after_mutations_and_404_when_expired() {
    let emu = start(10).await;
    let mb = emu.default_mailbox();
    let hub = hub(&emu.url());
    let (_, profile) = hub.users().get_profile("me").doit().await.expect("profile");
    let start = profile.history_id.expect("history id");
    assert_eq!(profile.messages_total, Some(10));
    let (raw, _) = mixed_message();
    let id = emu
        .insert_raw(&mb, &raw, &["INBOX", "UNREAD"], None)
        .expect("insert");
    emu.modify_labels(&mb, &id, &["STARRED"], &["UNREAD"])
        .expect("modify");
    emu.trash(&mb, &id).expect("trash");
    let victim = emu.message_ids(&mb).last().cloned().expect("a message");
    emu.delete_message(&mb, &victim).expect("delete");

    let (_, h) = hub
        .users()
        .history_list("me")
        .start_history_id(start)
        .doit()
        .await
        .expect("history");
    let records = h.history.expect("records");
    let ids: Vec<u64> = records.iter().filter_map(|r| r.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > start);
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| {
            if r.messages_added.is_some() {
                "added"
            } else if r.messages_deleted.is_some() {
                "deleted"
            } else if r.labels_added.is_some() {
                "labelsAdded"
            } else {
                "labelsRemoved"
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "added",
            "labelsAdded",
            "labelsRemoved",
            "labelsAdded",
            "labelsRemoved",
            "deleted"
        ]
    );
    let trash = records[3].labels_added.as_ref().expect("trash record");
    assert_eq!(trash[0].label_ids, Some(vec!["TRASH".to_string()]));
    let (_, p2) = hub.users().get_profile("me").doit().await.expect("profile");
    assert_eq!(h.history_id, p2.history_id);
    assert!(p2.history_id > Some(start));

    // Paging: one record per page walks all six.
    let mut token: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut call = hub
            .users()
            .history_list("me")
            .start_history_id(start)
            .max_results(1);
        if let Some(t) = &token {
            call = call.page_token(t);
        }
        let (_, page) = call.doit().await.expect("page");
        seen += page.history.map_or(0, |h| h.len());
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, 6);

    // historyTypes filter.
    let (_, only_deleted) = hub
        .users()
        .history_list("me")
        .start_history_id(start)
        .add_history_types("messageDeleted")
        .doit()
        .await
        .expect("filtered");
    assert_eq!(only_deleted.history.map(|h| h.len()), Some(1));

    emu.expire_history(&mb);
    let err = hub
        .users()
        .history_list("me")
        .start_history_id(start)
        .doit()
        .await
        .expect_err("expired");
    assert_eq!(error_code(&err), Some(404));
    assert_eq!(error_reason(&err).as_deref(), Some("notFound"));
    // The new current id works.
    let (_, p3) = hub.users().get_profile("me").doit().await.expect("profile");
    let (_, fresh) = hub
        .users()
        .history_list("me")
        .start_history_id(p3.history_id.expect("id"))
        .doit()
        .await
        .expect("fresh history");
    assert!(fresh.history.is_none());
    emu.shutdown().await;
}

/// Captures Retry-After of a failed response.
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<Vec<Failure>>>);

/// (status, Retry-After) of one failed response.
type Failure = (u16, Option<String>);

impl Delegate for Capture {
    fn http_failure(&mut self, r: &Response, _: Option<&serde_json::Value>) -> Retry {
        let ra = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.0.lock().expect("lock").push((r.status().as_u16(), ra));
        Retry::Abort
    }
}

#[tokio::test]
async fn quota_exhaustion_is_429_with_retry_after() {
    let emu = start(5).await;
    // A minute window: a slow machine cannot roll it over between the three calls.
    let get = Quota::default().table.cost("users.messages.get");
    emu.set_quota(Quota {
        per_minute: Some(2 * get),
        ..Quota::default()
    });
    let hub = hub(&emu.url());
    let id = emu.message_ids(&emu.default_mailbox())[0].clone();
    let mut capture = Capture::default();
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let r = hub
            .users()
            .messages_get("me", &id)
            .format("minimal")
            .delegate(&mut capture)
            .doit()
            .await;
        outcomes.push(
            r.map(|_| ())
                .map_err(|e| (error_code(&e), error_reason(&e))),
        );
    }
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
    assert_eq!(
        outcomes[2],
        Err((Some(429), Some("rateLimitExceeded".to_string())))
    );
    let seen = capture.0.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, 429);
    let retry: u64 = seen[0]
        .1
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let stats = emu.stats();
    assert_eq!(stats.calls(&emu.default_mailbox(), "users.messages.get"), 3);
    assert_eq!(
        stats.quota_units(&emu.default_mailbox()),
        2 * u64::from(get)
    );

    // 403 flavour.
    emu.set_quota(Quota {
        per_minute: Some(1),
        use_403: true,
        ..Quota::default()
    });
    emu.reset_stats(); // also restarts the quota windows
    let _ = hub.users().get_profile("me").doit().await;
    let err = hub
        .users()
        .get_profile("me")
        .doit()
        .await
        .expect_err("over");
    assert_eq!(error_code(&err), Some(403));
    assert_eq!(error_reason(&err).as_deref(), Some("userRateLimitExceeded"));
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrency_limit_is_429() {
    let emu = start(5).await;
    emu.set_quota(Quota {
        max_concurrent: Some(2),
        ..Quota::default()
    });
    emu.set_faults(Faults {
        latency_ms: 1000,
        ..Faults::default()
    });
    let hub = Arc::new(hub(&emu.url()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let hub = hub.clone();
        tasks.push(tokio::spawn(async move {
            hub.users().get_profile("me").doit().await.map(|_| ())
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(()) => ok += 1,
            Err(e) => {
                assert_eq!(error_code(&e), Some(429));
                if let google_gmail1::Error::BadRequest(v) = &e {
                    assert_eq!(
                        v["error"]["message"],
                        "Too many concurrent requests for user"
                    );
                }
                limited += 1;
            }
        }
    }
    assert_eq!(ok + limited, 8);
    assert!(ok >= 2 && limited >= 1, "ok={ok} limited={limited}");
    let stats = emu.stats();
    assert_eq!(
        stats
            .peak_concurrent_per_mailbox
            .get(&emu.default_mailbox()),
        Some(&2)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn unsupported_query_operator_is_400() {
    let emu = start(20).await;
    let hub = hub(&emu.url());
    for q in ["from:bob@example.com", "is:unread", "hello"] {
        let err = hub
            .users()
            .messages_list("me")
            .q(q)
            .doit()
            .await
            .expect_err("unsupported");
        assert_eq!(error_code(&err), Some(400), "{q}");
        assert_eq!(error_reason(&err).as_deref(), Some("invalidArgument"));
    }
    // Supported operators filter on internalDate.
    let now = chrono::Utc::now().timestamp();
    let (_, future) = hub
        .users()
        .messages_list("me")
        .q(&format!("after:{} in:anywhere", now + 3600))
        .doit()
        .await
        .expect("list");
    assert_eq!(future.result_size_estimate, Some(0));
    let (_, window) = hub
        .users()
        .messages_list("me")
        .q(&format!(
            "after:{} before:{} in:anywhere",
            now - 8 * 86400,
            now + 60
        ))
        .doit()
        .await
        .expect("list");
    assert_eq!(window.result_size_estimate, Some(20));
    let (_, with_att) = hub
        .users()
        .messages_list("me")
        .q("has:attachment in:anywhere")
        .doit()
        .await
        .expect("list");
    assert!(with_att.result_size_estimate < Some(20));
    emu.shutdown().await;
}

#[tokio::test]
async fn labels_list_and_label_filters() {
    let emu = start(0).await;
    let mb = emu.default_mailbox();
    let (raw, _) = mixed_message();
    let a = emu
        .insert_raw(&mb, &raw, &["INBOX", "My Label"], None)
        .expect("a");
    let _b = emu.insert_raw(&mb, &raw, &["INBOX"], None).expect("b");
    let spam = emu.insert_raw(&mb, &raw, &["SPAM"], None).expect("spam");
    let hub = hub(&emu.url());
    let (_, labels) = hub.users().labels_list("me").doit().await.expect("labels");
    let labels = labels.labels.expect("labels");
    let mine = labels
        .iter()
        .find(|l| l.name.as_deref() == Some("My Label"))
        .expect("user label");
    assert_eq!(mine.type_.as_deref(), Some("user"));
    let label_id = mine.id.clone().expect("id");
    let ids = |l: google_gmail1::api::ListMessagesResponse| -> Vec<String> {
        l.messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.id)
            .collect()
    };
    let (_, by_id) = hub
        .users()
        .messages_list("me")
        .add_label_ids(&label_id)
        .doit()
        .await
        .expect("list");
    assert_eq!(ids(by_id), vec![a.clone()]);
    let (_, by_q) = hub
        .users()
        .messages_list("me")
        .q("label:my-label")
        .doit()
        .await
        .expect("list");
    assert_eq!(ids(by_q), vec![a]);
    let (_, spam_list) = hub
        .users()
        .messages_list("me")
        .add_label_ids("SPAM")
        .doit()
        .await
        .expect("list");
    assert_eq!(ids(spam_list), vec![spam]);
    emu.shutdown().await;
}
