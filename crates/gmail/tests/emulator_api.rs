//! The typed API against the in-process emulator over real HTTP: pagination, raw round trip,
//! minimal shapes, history (and its expiry), NotFound, 400 without retry, and resilience:
//! injected 5xx / dropped connections / quota 429s, Retry-After, and the concurrency cap.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use gmail::{AuthSpec, GmailClient, GmailError, ListQuery, QuotaConfig, QuotaTable};
use gmail_emulator::{Emulator, EmulatorConfig, Faults, Quota};
use tokio::time::Instant;

async fn emulator(messages: usize) -> Emulator {
    Emulator::start(EmulatorConfig {
        messages,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator")
}

#[tokio::test]
async fn pagination_covers_every_message_and_thread_across_many_pages() {
    let emu = emulator(230).await;
    let mb = emu.default_mailbox();
    let c = common::client(&emu.url()).await;
    let q = ListQuery {
        include_spam_trash: true,
        page_size: 7,
        ..ListQuery::default()
    };
    let pages: Vec<_> = c
        .list_messages(&mb, q.clone())
        .try_collect()
        .await
        .expect("pages");
    assert!(
        pages.len() >= 30,
        "expected many pages, got {}",
        pages.len()
    );
    assert!(pages.iter().all(|p| p.messages.len() <= 7));
    let listed: Vec<String> = pages
        .iter()
        .flat_map(|p| p.messages.iter().map(|m| m.id.clone()))
        .collect();
    let unique: BTreeSet<_> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), unique.len(), "a message was listed twice");
    let expected: BTreeSet<_> = emu.message_ids(&mb).into_iter().collect();
    assert_eq!(unique, expected);
    assert_eq!(
        c.metrics().method("messages.list").calls,
        pages.len() as u64
    );
    assert_eq!(
        c.metrics().method("messages.list").quota_units,
        5 * pages.len() as u64
    );

    let threads: Vec<_> = c.list_threads(&mb, q).try_collect().await.expect("threads");
    let thread_ids: BTreeSet<String> = threads
        .iter()
        .flat_map(|p| p.threads.iter().map(|t| t.id.clone()))
        .collect();
    let expected_threads: BTreeSet<String> = expected
        .iter()
        .filter_map(|id| emu.thread_of(&mb, id))
        .collect();
    assert_eq!(thread_ids, expected_threads);
    assert!(
        threads
            .iter()
            .flat_map(|p| &p.threads)
            .all(|t| t.history_id > 0)
    );
}

#[tokio::test]
async fn window_query_uses_epoch_seconds() {
    let emu = emulator(120).await;
    let mb = emu.default_mailbox();
    let c = common::client(&emu.url()).await;
    let all: Vec<_> = c
        .list_messages(&mb, ListQuery::default())
        .try_collect()
        .await
        .expect("all");
    let all_ids: Vec<String> = all
        .iter()
        .flat_map(|p| p.messages.iter().map(|m| m.id.clone()))
        .collect();
    let mut dates = Vec::new();
    for id in &all_ids {
        dates.push(
            c.message_minimal(&mb, id)
                .await
                .expect("minimal")
                .internal_date_ms,
        );
    }
    dates.sort_unstable();
    // A window over the middle half of the mail, in epoch seconds.
    let after = dates[dates.len() / 4] / 1000;
    let before = dates[3 * dates.len() / 4] / 1000;
    let q = ListQuery {
        after: Some(after),
        before: Some(before),
        ..ListQuery::default()
    };
    let windowed: Vec<_> = c.list_messages(&mb, q).try_collect().await.expect("window");
    let ids: Vec<String> = windowed
        .iter()
        .flat_map(|p| p.messages.iter().map(|m| m.id.clone()))
        .collect();
    assert!(!ids.is_empty() && ids.len() < all_ids.len());
    for id in &ids {
        let d = c
            .message_minimal(&mb, id)
            .await
            .expect("minimal")
            .internal_date_ms;
        assert!(
            d >= after * 1000 && d < before * 1000,
            "{id} at {d} outside window"
        );
    }
}

#[tokio::test]
async fn raw_round_trip_and_minimal_shapes() {
    let emu = emulator(20).await;
    let mb = emu.default_mailbox();
    let c = common::client(&emu.url()).await;
    // Lengths not divisible by 3 exercise base64 padding either way.
    for extra in ["", "x", "xy"] {
        let raw = format!(
            "From: a@example.com\r\nTo: b@example.com\r\nSubject: round trip{extra}\r\n\
             Message-ID: <rt{extra}@example.com>\r\n\r\nbody \u{e9}\u{1F600}{extra}\r\n"
        );
        let id = emu
            .insert_raw(&mb, raw.as_bytes(), &["INBOX", "UNREAD"], None)
            .expect("insert");
        let m = c.message_raw(&mb, &id).await.expect("raw");
        assert_eq!(&m.raw[..], raw.as_bytes());
        let meta = &m.meta;
        assert_eq!(meta.id, id);
        assert!(
            meta.label_ids.contains(&"INBOX".to_string()),
            "{:?}",
            meta.label_ids
        );
        assert!(meta.history_id > 0 && meta.internal_date_ms > 0 && meta.size_estimate > 0);
        // format=minimal and format=raw describe the message with the same type and values.
        let min = c.message_minimal(&mb, &id).await.expect("minimal");
        assert_eq!(&min, meta);
    }
    // Every generated message comes back byte-identical.
    for id in emu.message_ids(&mb) {
        let m = c.message_raw(&mb, &id).await.expect("raw");
        assert_eq!(Some(m.raw.to_vec()), emu.raw_message(&mb, &id), "{id}");
        let t = c
            .thread_minimal(&mb, &m.meta.thread_id)
            .await
            .expect("thread");
        assert!(t.messages.iter().any(|x| x == &m.meta));
        assert!(t.history_id >= m.meta.history_id);
    }
    let p = c.profile(&mb).await.expect("profile");
    assert_eq!(p.email_address, mb);
    assert!(p.history_id > 0 && p.messages_total > 0);
    let metrics = c.metrics();
    assert_eq!(metrics.method("users.getProfile").quota_units, 1);
    assert!(metrics.method("threads.get").quota_units >= 10);
}

#[tokio::test]
async fn history_reports_changes_then_expires() {
    let emu = emulator(10).await;
    let mb = emu.default_mailbox();
    let c = common::client(&emu.url()).await;
    let start = c.profile(&mb).await.expect("profile").history_id;
    let raw = b"From: a@example.com\r\nSubject: new\r\n\r\nhello\r\n";
    let added = emu.insert_raw(&mb, raw, &["INBOX"], None).expect("insert");
    let victim = emu
        .message_ids(&mb)
        .into_iter()
        .find(|i| *i != added)
        .expect("victim");
    emu.delete_message(&mb, &victim).expect("delete");
    // Gmail may hand out pages with no records but a next page token (here the same token
    // again): keep going. The emulator's fault RNG is seeded, so this run is reproducible.
    emu.set_faults(Faults {
        empty_history_page_rate: 0.9,
        ..Faults::default()
    });
    let pages: Vec<_> = c.history(&mb, start).try_collect().await.expect("history");
    emu.set_faults(Faults::default());
    assert!(
        emu.stats()
            .faults_injected
            .get("emptyHistoryPage")
            .copied()
            .unwrap_or(0)
            > 0
    );
    assert!(
        pages
            .iter()
            .any(|p| p.records.is_empty() && p.next_page_token.is_some())
    );
    let records: Vec<_> = pages.iter().flat_map(|p| p.records.iter()).collect();
    assert!(
        records
            .iter()
            .any(|r| r.messages_added.iter().any(|m| m.id == added))
    );
    assert!(
        records
            .iter()
            .any(|r| r.messages_deleted.iter().any(|m| m.id == victim))
    );
    assert!(pages.last().expect("a page").history_id > start);

    emu.expire_history(&mb);
    let mut s = c.history(&mb, start);
    match s.next().await {
        Some(Err(GmailError::HistoryExpired { start_history_id })) => {
            assert_eq!(start_history_id, start)
        }
        other => panic!("expected HistoryExpired, got {other:?}"),
    }
    assert!(s.next().await.is_none(), "stream ends after the error");
}

#[tokio::test]
async fn missing_message_is_not_found_and_400_is_not_retried() {
    let emu = emulator(5).await;
    let mb = emu.default_mailbox();
    let c = common::client(&emu.url()).await;
    match c.message_raw(&mb, "doesnotexist").await {
        Err(GmailError::NotFound { method, id }) => {
            assert_eq!((method, id.as_str()), ("messages.get", "doesnotexist"))
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        c.thread_minimal(&mb, "nothread").await,
        Err(GmailError::NotFound {
            method: "threads.get",
            ..
        })
    ));
    let before = emu.stats().calls(&mb, "users.messages.list");
    let t0 = Instant::now();
    match c
        .messages_page(&mb, &ListQuery::default(), Some("not-a-token"))
        .await
    {
        Err(GmailError::BadRequest { method, message }) => {
            assert_eq!(method, "messages.list");
            assert!(message.to_lowercase().contains("pagetoken"), "{message}");
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(
        emu.stats().calls(&mb, "users.messages.list") - before,
        1,
        "400 was retried"
    );
    assert_eq!(c.metrics().method("messages.list").retries, 0);
    assert_eq!(c.metrics().method("messages.list").failures, 1);
}

#[tokio::test]
async fn an_id_that_is_not_a_gmail_id_is_never_sent() {
    let emu = emulator(5).await;
    let mb = emu.default_mailbox();
    let c = common::client(&emu.url()).await;
    let real = emu.message_ids(&mb)[0].clone();
    // A path that would climb to another method, and one that would split the request.
    for hostile in [format!("{real}/../../labels"), "a\r\nX-Evil: 1".to_string()] {
        match c.message_raw(&mb, &hostile).await {
            Err(GmailError::InvalidId { method, id }) => {
                assert_eq!(method, "messages.get");
                assert!(!id.contains(['\r', '\n']), "printed escaped: {id}");
            }
            other => panic!("expected InvalidId, got {other:?}"),
        }
        assert!(matches!(
            c.thread_minimal(&mb, &hostile).await,
            Err(GmailError::InvalidId {
                method: "threads.get",
                ..
            })
        ));
    }
    let stats = emu.stats();
    assert_eq!(stats.calls(&mb, "users.messages.get"), 0);
    assert_eq!(stats.calls(&mb, "users.threads.get"), 0);
    assert_eq!(stats.calls(&mb, "users.labels.list"), 0);
    assert!(c.message_raw(&mb, &real).await.is_ok());
}

#[tokio::test]
async fn every_call_succeeds_under_faults_and_quota_429s_and_retries_are_counted() {
    let emu = emulator(120).await;
    let mb = emu.default_mailbox();
    emu.set_faults(Faults {
        error_rate: 0.1,
        unavailable_rate: 0.1,
        drop_rate: 0.03,
        ..Faults::default()
    });
    // The emulator's quota is below what the client is told, so real 429s happen.
    emu.set_quota(Quota {
        per_second: Some(400),
        ..Quota::default()
    });
    let mut cfg = common::config(&emu.url(), AuthSpec::None);
    cfg.quota = QuotaConfig {
        units_per_second: Some(2_000.0),
        burst_units: 100.0,
        ..QuotaConfig::default()
    };
    let c = GmailClient::new(cfg).await.expect("client");
    let ids = emu.message_ids(&mb);
    let results: Vec<_> = futures::stream::iter(ids.clone())
        .map(|id| {
            let c = c.clone();
            let mb = mb.clone();
            async move { c.message_raw(&mb, &id).await.map(|m| (id, m)) }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let mut fetched = HashSet::new();
    for r in results {
        let (id, m) = r.expect("every call eventually succeeds");
        assert_eq!(Some(m.raw.to_vec()), emu.raw_message(&mb, &id));
        fetched.insert(id);
    }
    assert_eq!(fetched.len(), ids.len());
    let stats = emu.stats();
    let injected: u64 = stats.faults_injected.values().sum();
    let quota_429s = stats.faults_injected.get("quota").copied().unwrap_or(0);
    assert!(
        quota_429s > 0,
        "the quota never bit: {:?}",
        stats.faults_injected
    );
    assert!(
        injected > quota_429s,
        "no 5xx injected: {:?}",
        stats.faults_injected
    );
    let m = c.metrics().method("messages.get");
    // Each failed response was retried exactly once; nothing else was.
    assert_eq!(m.retries, injected, "{m:?} vs {:?}", stats.faults_injected);
    assert_eq!(m.calls, ids.len() as u64 + injected);
    assert_eq!(m.failures, 0);
    assert!(m.rate_limited >= quota_429s);
    assert!(m.throttled_ms > 0);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let emu = emulator(4).await;
    let mb = emu.default_mailbox();
    // Room for exactly one messages.get per one-second window (5 units on the 2025 table).
    emu.set_quota(Quota {
        per_second: Some(5),
        table: gmail_emulator::QuotaTable::Y2025,
        ..Quota::default()
    });
    let c = common::client(&emu.url()).await;
    let ids = emu.message_ids(&mb);
    let t0 = Instant::now();
    let (a, b) = tokio::join!(c.message_raw(&mb, &ids[0]), c.message_raw(&mb, &ids[1]));
    a.expect("first");
    b.expect("second");
    // One of them was told "Retry-After: 1"; retrying any earlier would have met a second
    // 429 (the window is still full), so exactly one 429 proves no early request.
    let stats = emu.stats();
    assert_eq!(
        stats.faults_injected.get("quota").copied(),
        Some(1),
        "{stats:?}"
    );
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    let m = c.metrics().method("messages.get");
    assert_eq!((m.retries, m.rate_limited), (1, 1));
    assert!(m.throttled_ms >= 1000, "{m:?}");
}

#[tokio::test]
async fn concurrency_cap_holds() {
    let emu = emulator(80).await;
    let mb = emu.default_mailbox();
    emu.set_faults(Faults {
        latency_ms: 15,
        latency_jitter_ms: 10,
        ..Faults::default()
    });
    emu.set_quota(Quota {
        max_concurrent: Some(10),
        ..Quota::default()
    });
    let c = common::client(&emu.url()).await; // default cap: 10 per mailbox
    let ids = emu.message_ids(&mb);
    let results: Vec<_> = futures::stream::iter(ids.clone())
        .map(|id| {
            let c = c.clone();
            let mb = mb.clone();
            async move { c.message_raw(&mb, &id).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(results.iter().all(Result::is_ok));
    let stats = emu.stats();
    assert_eq!(stats.faults_injected.get("concurrency"), None, "{stats:?}");
    let peak = stats
        .peak_concurrent_per_mailbox
        .get(&mb)
        .copied()
        .unwrap_or(0);
    assert_eq!(peak, 10, "the cap should be reached, never exceeded");
    assert_eq!(c.metrics().method("messages.get").retries, 0);
}

#[tokio::test]
async fn each_mailbox_has_its_own_quota_bucket_and_metrics() {
    let (a, b) = ("a@example.com".to_string(), "b@example.com".to_string());
    let emu = Emulator::start(EmulatorConfig {
        messages: 6,
        mailboxes: vec![a.clone(), b.clone()],
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let mut cfg = common::config(&emu.url(), AuthSpec::None);
    // 50 units/s, no headroom: 6 gets (30 units on the 2025 table) per mailbox take 0.5 s
    // after the first.
    cfg.quota = QuotaConfig {
        table: QuotaTable::Y2025,
        units_per_second: Some(50.0),
        headroom: 0.0,
        burst_units: 5.0,
        ..QuotaConfig::default()
    };
    let c = GmailClient::new(cfg).await.expect("client");
    let fetch_all = |mb: String| {
        let c = c.clone();
        let ids = emu.message_ids(&mb);
        async move {
            for id in ids {
                c.message_raw(&mb, &id).await.expect("raw");
            }
        }
    };
    let t0 = Instant::now();
    tokio::join!(fetch_all(a.clone()), fetch_all(b.clone()));
    let took = t0.elapsed();
    // Paced (≥ 0.45 s) but not shared: one bucket for both would need ≥ 1.1 s.
    assert!(took >= Duration::from_millis(450), "not paced: {took:?}");
    assert!(
        took < Duration::from_millis(1000),
        "buckets shared? {took:?}"
    );
    for mb in [&a, &b] {
        let m = c.mailbox_metrics(mb).method("messages.get");
        assert_eq!((m.calls, m.quota_units), (6, 30), "{mb}");
        // Sequential calls: the waits are the pacing minus each round trip.
        assert!(m.throttled_ms >= 300, "{mb}: {m:?}");
    }
    assert_eq!(c.metrics().method("messages.get").calls, 12);
}

/// Every call names its mailbox as `quotaUser`, so Google attributes per-user
/// quota to it when one server acts for many mailboxes.
#[tokio::test]
async fn every_call_carries_the_mailbox_as_quota_user() {
    let emu = emulator(12).await;
    let mb = emu.default_mailbox();
    let c = common::client(&emu.url()).await;
    c.profile(&mb).await.expect("profile");
    let pages: Vec<_> = c
        .list_messages(&mb, ListQuery::default())
        .try_collect()
        .await
        .expect("list");
    let first = &pages[0].messages[0];
    c.message_raw(&mb, &first.id).await.expect("raw");
    c.thread_minimal(&mb, &first.thread_id)
        .await
        .expect("thread");
    let stats = emu.stats();
    let calls: u64 = stats.mailboxes[&mb].values().map(|m| m.calls).sum();
    assert_eq!(
        stats.quota_users.get(&mb).copied(),
        Some(calls),
        "{stats:?}"
    );
    assert_eq!(stats.quota_users.len(), 1, "{stats:?}");
}

/// The 2026 table's minute at the defaults: a mailbox spends its minute's allowance at once
/// (300 gets of 20 units is 6,000), with no rate-limit answer and no wait for a refill.
#[tokio::test]
async fn a_minutes_allowance_goes_at_once_and_is_never_refused() {
    let emu = emulator(300).await;
    let mb = emu.default_mailbox();
    let table = QuotaTable::Y2026;
    emu.set_quota(Quota {
        per_minute: Some(table.user_units_per_minute()),
        table: gmail_emulator::QuotaTable::Y2026,
        ..Quota::default()
    });
    emu.reset_stats();
    let mut cfg = common::config(&emu.url(), AuthSpec::None);
    cfg.quota = QuotaConfig::for_table(table);
    let c = GmailClient::new(cfg).await.expect("client");
    let ids = emu.message_ids(&mb);
    assert_eq!(ids.len(), 300);
    let t0 = Instant::now();
    let results: Vec<_> = futures::stream::iter(ids)
        .map(|id| {
            let c = c.clone();
            let mb = mb.clone();
            async move { c.message_raw(&mb, &id).await }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let took = t0.elapsed();
    assert!(results.iter().all(Result::is_ok));
    let stats = emu.stats();
    assert_eq!(stats.refusals.values().sum::<u64>(), 0, "{stats:?}");
    assert_eq!(stats.quota_units(&mb), 6_000);
    let m = c.metrics().method("messages.get");
    assert_eq!((m.calls, m.quota_units, m.rate_limited), (300, 6_000, 0));
    // No quota wait at all: a refill-paced client would need a minute for this.
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(c.learned_units_per_minute(&mb), None);
}

/// A client told the 2025 table (15,000 a minute, get 5) against a project on the 2026
/// table (6,000 a minute, get 20: 300 gets, 1,500 units of the client's count) learns the
/// real limit from the first answers and stops sending above it.
#[tokio::test]
async fn a_refusal_teaches_the_client_gmails_real_limit() {
    let emu = emulator(400).await;
    let mb = emu.default_mailbox();
    emu.set_quota(Quota {
        per_minute: Some(QuotaTable::Y2026.user_units_per_minute()),
        table: gmail_emulator::QuotaTable::Y2026,
        ..Quota::default()
    });
    emu.reset_stats();
    let mut cfg = common::config(&emu.url(), AuthSpec::None);
    cfg.quota = QuotaConfig::for_table(QuotaTable::Y2025);
    let c = GmailClient::new(cfg).await.expect("client");
    let ids = emu.message_ids(&mb);
    let fetch = {
        let (c, mb) = (c.clone(), mb.clone());
        tokio::spawn(async move {
            futures::stream::iter(ids)
                .map(|id| {
                    let c = c.clone();
                    let mb = mb.clone();
                    async move { c.message_raw(&mb, &id).await }
                })
                .buffer_unordered(10)
                .collect::<Vec<_>>()
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let learned = loop {
        if let Some(l) = c.learned_units_per_minute(&mb) {
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "never learned: {:?}",
            emu.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // 300 gets went through: 1,500 units as the client counts them; it learns 95% of what
    // it sent in the minute, less the refused call.
    let allowed = 300.0 * f64::from(QuotaTable::Y2025.cost(gmail::Method::MessagesGet));
    assert!(
        learned <= allowed && learned >= 0.85 * allowed,
        "learned {learned}, Gmail allows {allowed}"
    );
    // Calls admitted before the first answer came back may still be refused; nothing after.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let refused: u64 = emu.stats().refusals.values().sum();
    assert!(
        (1..=12).contains(&refused),
        "{refused} refusals: {:?}",
        emu.stats()
    );
    fetch.abort();
}
