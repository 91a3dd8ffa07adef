//! Wire shapes the emulator does not produce, served by a scripted HTTP server: unpadded
//! base64url `raw` (google-gmail1 7 rejects it), Retry-After as an HTTP-date, Gmail's
//! "Retry after <RFC3339>" in a 403, non-JSON 5xx bodies, timeouts, the retry budget, a
//! plain 403, the Authorization header each auth mode sends, and list endpoints whose
//! nextPageToken never moves on.

mod common;

use std::time::Duration;

use common::{Canned, Scripted};
use futures::StreamExt;
use gmail::{AuthSpec, GmailClient, GmailError, ListQuery, RetryPolicy};

const MSG_UNPADDED: &str = r#"{"id":"m1","threadId":"t1","labelIds":["INBOX"],"historyId":"77",
    "internalDate":"1700000000123","sizeEstimate":7,"raw":"aGVsbG8hIQ"}"#;
const MSG_PADDED: &str = r#"{"id":"m1","threadId":"t1","labelIds":["INBOX"],"historyId":"77",
    "internalDate":"1700000000123","sizeEstimate":7,"raw":"aGVsbG8hIQ=="}"#;

async fn client_for(s: &Scripted) -> GmailClient {
    common::client(&s.url).await
}

fn gap(s: &Scripted, i: usize) -> Duration {
    let r = s.requests();
    r[i + 1].at.duration_since(r[i].at)
}

#[tokio::test]
async fn unpadded_raw_is_decoded_despite_google_gmail1() {
    let s = Scripted::start(vec![
        Canned::json(200, MSG_UNPADDED),
        Canned::json(200, MSG_PADDED),
    ])
    .await;
    let c = client_for(&s).await;
    for _ in 0..2 {
        let m = c.message_raw("u@example.com", "m1").await.expect("raw");
        assert_eq!(&m.raw[..], b"hello!!");
        assert_eq!(
            (m.meta.history_id, m.meta.internal_date_ms),
            (77, 1_700_000_000_123)
        );
    }
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2, "decoding must not cost a retry");
    assert!(
        reqs[0].request_line.contains("format=raw"),
        "{}",
        reqs[0].request_line
    );
    let line = &reqs[0].request_line;
    assert!(line.starts_with("GET /gmail/v1/users/u"), "{line}");
    assert!(line.contains("example.com/messages/m1?"), "{line}");
}

#[tokio::test]
async fn retry_after_http_date_is_a_floor() {
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let s = Scripted::start(vec![
        Canned::json(429, r#"{"error":{"code":429,"message":"slow down","errors":[{"reason":"rateLimitExceeded"}]}}"#)
            .header("retry-after", &date),
        Canned::json(200, MSG_PADDED),
    ])
    .await;
    let c = client_for(&s).await;
    c.message_raw("u@example.com", "m1")
        .await
        .expect("after the wait");
    // The date has one-second resolution: at least one full second must have passed.
    assert!(gap(&s, 0) >= Duration::from_secs(1), "{:?}", gap(&s, 0));
}

#[tokio::test]
async fn gmail_retry_after_message_on_403_is_honoured() {
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let body = format!(
        r#"{{"error":{{"code":403,"message":"User-rate limit exceeded.  Retry after {}","errors":[{{"reason":"userRateLimitExceeded","domain":"usageLimits"}}]}}}}"#,
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let s = Scripted::start(vec![
        Canned::json(403, &body),
        Canned::json(200, MSG_PADDED),
    ])
    .await;
    let c = client_for(&s).await;
    c.message_raw("u@example.com", "m1")
        .await
        .expect("after the wait");
    assert!(
        gap(&s, 0) >= Duration::from_millis(1400),
        "{:?}",
        gap(&s, 0)
    );
    let m = c.metrics().method("messages.get");
    assert_eq!((m.retries, m.rate_limited), (1, 1));
}

#[tokio::test]
async fn plain_403_and_non_json_5xx() {
    let s = Scripted::start(vec![
        Canned::json(502, "<html>bad gateway</html>"),
        Canned::json(200, MSG_PADDED),
        Canned::json(403, r#"{"error":{"code":403,"message":"Delegation denied","errors":[{"reason":"forbidden"}]}}"#),
    ])
    .await;
    let c = client_for(&s).await;
    c.message_raw("u@example.com", "m1")
        .await
        .expect("502 retried");
    match c.message_raw("u@example.com", "m1").await {
        Err(GmailError::Api {
            method,
            status,
            message,
        }) => {
            assert_eq!((method, status), ("messages.get", 403));
            assert!(message.contains("Delegation denied"));
        }
        other => panic!("expected Api 403, got {other:?}"),
    }
    assert_eq!(s.requests().len(), 3, "the 403 must not be retried");
}

#[tokio::test]
async fn timeouts_are_retried_and_the_budget_ends_in_retries_exhausted() {
    let s = Scripted::start(vec![
        Canned::json(200, MSG_PADDED).delayed(Duration::from_secs(3)),
        Canned::json(200, MSG_PADDED),
        Canned::json(503, r#"{"error":{"code":503,"message":"unavailable"}}"#),
        Canned::json(503, r#"{"error":{"code":503,"message":"unavailable"}}"#),
        Canned::json(
            503,
            r#"{"error":{"code":503,"message":"still unavailable"}}"#,
        ),
    ])
    .await;
    let mut cfg = common::config(&s.url, AuthSpec::None);
    cfg.request_timeout = Duration::from_millis(300);
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        ..common::fast_retry()
    };
    let c = GmailClient::new(cfg).await.expect("client");
    c.message_raw("u@example.com", "m1")
        .await
        .expect("timeout retried");
    match c.message_raw("u@example.com", "m1").await {
        Err(GmailError::RetriesExhausted {
            method,
            attempts,
            last,
        }) => {
            assert_eq!((method, attempts), ("messages.get", 3));
            assert!(
                last.contains("503") && last.contains("still unavailable"),
                "{last}"
            );
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert_eq!(s.requests().len(), 5);
}

#[tokio::test]
async fn authorization_header_per_auth_mode() {
    let s = Scripted::start(vec![
        Canned::json(200, MSG_PADDED),
        Canned::json(200, MSG_PADDED),
    ])
    .await;
    let none = client_for(&s).await;
    none.message_raw("me", "m1").await.expect("none");
    // SAFETY: this variable is used by this test only.
    unsafe { std::env::set_var("GMAIL_SCRIPTED_TEST_TOKEN", "scripted-bearer-123456") };
    let env = GmailClient::new(common::config(
        &s.url,
        "token-env:GMAIL_SCRIPTED_TEST_TOKEN".parse().expect("spec"),
    ))
    .await
    .expect("client");
    env.message_raw("me", "m1").await.expect("env");
    let r = s.requests();
    assert_eq!(r[0].authorization, None);
    assert_eq!(
        r[1].authorization.as_deref(),
        Some("Bearer scripted-bearer-123456")
    );
}

#[tokio::test]
async fn endpoint_rules_are_enforced_at_construction() {
    for bad in [
        "http://example.com/",
        "http://192.168.1.10:8080/",
        "ftp://127.0.0.1/",
    ] {
        match GmailClient::new(common::config(bad, AuthSpec::None)).await {
            Err(GmailError::Config(m)) => assert!(!m.is_empty()),
            other => panic!("{bad}: expected Config error, got {other:?}"),
        }
    }
    assert!(
        GmailClient::new(common::config("http://localhost:9/", AuthSpec::None))
            .await
            .is_ok()
    );
    assert!(
        GmailClient::new(common::config(
            "https://gmail.googleapis.com/",
            AuthSpec::None
        ))
        .await
        .is_ok()
    );
}

/// Pull a list stream to its end (bounded, so a paginator that loops fails the test instead
/// of hanging it).
async fn drain<T: std::fmt::Debug>(
    mut s: futures::stream::BoxStream<'static, Result<T, GmailError>>,
) -> Vec<Result<T, GmailError>> {
    let mut out = Vec::new();
    while let Some(item) = s.next().await {
        out.push(item);
        assert!(out.len() <= 1_000, "the stream does not end");
    }
    out
}

fn ends_in_cycle<T: std::fmt::Debug>(out: &[Result<T, GmailError>], expected: &str) {
    match out.last() {
        Some(Err(e @ GmailError::PageTokenCycle { method })) => {
            assert_eq!(*method, expected);
            assert!(e.to_string().starts_with(expected), "{e}");
        }
        other => panic!("expected PageTokenCycle, got {other:?}"),
    }
    let (ok, err) = out.split_at(out.len() - 1);
    assert!(ok.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(err.len(), 1);
}

#[tokio::test]
async fn threads_list_repeating_its_token_ends_with_a_cycle_error() {
    let page = r#"{"threads":[{"id":"t1","snippet":"hi","historyId":"5"}],
        "nextPageToken":"loop","resultSizeEstimate":1}"#;
    // More answers than the paginator may use: it must stop on its own, not run dry.
    let s = Scripted::start(vec![Canned::json(200, page); 10]).await;
    let c = client_for(&s).await;
    let out = drain(c.list_threads("u@example.com", ListQuery::default())).await;
    // Page 1 (no token) → "loop"; the page at "loop" points at "loop" again: stop.
    assert_eq!(out.len(), 2, "{out:?}");
    ends_in_cycle(&out, "threads.list");
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    assert!(!reqs[0].request_line.contains("pageToken"), "{reqs:?}");
    assert!(
        reqs[1].request_line.contains("pageToken=loop"),
        "{}",
        reqs[1].request_line
    );
}

#[tokio::test]
async fn history_list_repeating_its_token_ends_with_a_cycle_error() {
    let with_records = r#"{"historyId":"9","nextPageToken":"same","history":[
        {"id":"8","messagesDeleted":[{"message":{"id":"m1","threadId":"t1"}}]}]}"#;
    let s = Scripted::start(vec![Canned::json(200, with_records); 10]).await;
    let c = client_for(&s).await;
    let out = drain(c.history("u@example.com", 7)).await;
    assert_eq!(out.len(), 2, "{out:?}");
    ends_in_cycle(&out, "history.list");
    assert_eq!(s.requests().len(), 2);
}

#[tokio::test]
async fn history_list_stuck_on_empty_pages_ends_after_a_bounded_number_of_calls() {
    // An empty page answering with its own token is Gmail's "ask again"; the client follows
    // it, but only MAX_STALLED_PAGES (100) times in a row: 1 + 1 + 100 calls, then the error.
    const STALLS: usize = 100;
    let empty = r#"{"historyId":"9","nextPageToken":"same"}"#;
    let s = Scripted::start(vec![Canned::json(200, empty); STALLS + 50]).await;
    let c = client_for(&s).await;
    let out = drain(c.history("u@example.com", 7)).await;
    assert_eq!(s.requests().len(), STALLS + 2);
    assert_eq!(
        out.len(),
        STALLS + 2,
        "every page up to the cycle is yielded"
    );
    ends_in_cycle(&out, "history.list");
    assert_eq!(c.metrics().method("history.list").calls, STALLS as u64 + 2);
}

#[tokio::test]
async fn huge_retry_after_is_clamped_and_counted_not_slept_on() {
    // Each value once: seconds past u64 (and at u64::MAX, whose jitter sum overflowed a
    // Duration), an absurd float, and an HTTP-date in the year 9999.
    let hints = [
        "99999999999",
        "18446744073709551615",
        "1e30",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ];
    let limited =
        r#"{"error":{"code":429,"message":"slow down","errors":[{"reason":"rateLimitExceeded"}]}}"#;
    let script = hints
        .iter()
        .map(|h| Canned::json(429, limited).header("retry-after", h))
        .collect();
    let s = Scripted::start(script).await;
    let c = client_for(&s).await;
    for (i, h) in hints.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let call = tokio::time::timeout(
            Duration::from_secs(10),
            c.message_raw("u@example.com", "m1"),
        )
        .await;
        let e = call.unwrap_or_else(|_| panic!("Retry-After {h}: still waiting after 10 s"));
        // The capped wait (15 min) is past this test's retry budget (60 s): give up now
        // rather than sleep on it.
        match e {
            Err(GmailError::RetriesExhausted {
                attempts: 1, last, ..
            }) => {
                assert!(last.contains("429"), "{last}")
            }
            other => panic!("Retry-After {h}: expected RetriesExhausted, got {other:?}"),
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{h}: {:?}",
            t0.elapsed()
        );
        assert_eq!(c.retry_after_clamped(), i as u64 + 1, "{h} not counted");
    }
    assert_eq!(s.requests().len(), hints.len());
    assert_eq!(gmail::MAX_RETRY_AFTER, Duration::from_secs(900));
}
