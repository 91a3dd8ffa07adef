//! A token set in the environment never appears in captured logs (TRACE level), error text,
//! or Debug output — through successes, retries, 404, 400, 401 and exhausted retries. Also:
//! a 401 triggers exactly one token refresh. One test function: it mutates the environment.
//! (This capture is thread-local and does not see `log` records; yup-oauth2's token
//! requests and responses, which go through `log`, are covered by oauth_loopback.rs.)

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use gmail::{GmailClient, GmailError, ListQuery, RetryPolicy};
use gmail_emulator::{Emulator, EmulatorConfig, Faults};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOKEN: &str = "ya29.SECRET-env-token-0123456789abcdef";
const WRONG: &str = "ya29.WRONG-env-token-fedcba9876543210";

#[tokio::test]
async fn env_token_never_leaks_and_401_refreshes_once() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // current_thread runtime: every task (client, hyper, emulator) logs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let mb = "user@example.com";
    let emu = Emulator::start(EmulatorConfig {
        messages: 20,
        tokens: HashMap::from([(TOKEN.to_string(), mb.to_string())]),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    // SAFETY: single test in this binary; no other thread touches the environment.
    unsafe {
        std::env::set_var("GMAIL_LEAK_TEST_TOKEN", TOKEN);
        std::env::set_var("GMAIL_LEAK_TEST_ROTATING", WRONG);
        std::env::set_var("GMAIL_LEAK_TEST_WRONG", WRONG);
    }
    let mut texts: Vec<String> = Vec::new();

    let mut cfg = common::config(
        &emu.url(),
        "token-env:GMAIL_LEAK_TEST_TOKEN".parse().expect("spec"),
    );
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        ..common::fast_retry()
    };
    let c = GmailClient::new(cfg.clone()).await.expect("client");
    texts.push(format!("{c:?} {cfg:?}"));
    // "me" makes the emulator check the bearer token.
    let p = c.profile("me").await.expect("profile with the env token");
    assert_eq!(p.email_address, mb);
    let id = emu.message_ids(mb).into_iter().next().expect("a message");
    let m = c.message_raw("me", &id).await.expect("raw");
    texts.push(format!("{m:?}"));
    for e in [
        c.message_raw("me", "missing").await.map(|_| ()),
        c.messages_page("me", &ListQuery::default(), Some("bogus"))
            .await
            .map(|_| ()),
    ] {
        let e = e.expect_err("must fail");
        texts.push(format!("{e} {e:?}"));
    }
    emu.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let e = c.message_raw("me", &id).await.expect_err("exhausted");
    assert!(
        matches!(e, GmailError::RetriesExhausted { attempts: 3, .. }),
        "{e:?}"
    );
    texts.push(format!("{e} {e:?}"));
    emu.set_faults(Faults::default());

    // A wrong token: one refresh (re-reading the variable), then a clear auth error.
    let wrong = GmailClient::new(common::config(
        &emu.url(),
        "token-env:GMAIL_LEAK_TEST_WRONG".parse().expect("spec"),
    ))
    .await
    .expect("client");
    let e = wrong.profile("me").await.expect_err("401");
    assert!(matches!(e, GmailError::Auth(_)), "{e:?}");
    texts.push(format!("{e} {e:?}"));

    // A token rotated in the environment after start-up is picked up by the 401 refresh.
    let rotating = GmailClient::new(common::config(
        &emu.url(),
        "token-env:GMAIL_LEAK_TEST_ROTATING".parse().expect("spec"),
    ))
    .await
    .expect("client");
    unsafe { std::env::set_var("GMAIL_LEAK_TEST_ROTATING", TOKEN) };
    rotating.profile("me").await.expect("refreshed token works");
    assert_eq!(rotating.metrics().method("users.getProfile").calls, 2);
    assert_eq!(
        wrong.metrics().method("users.getProfile").calls,
        2,
        "one refresh, not more"
    );

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
    assert!(
        logs.contains("retrying"),
        "log capture is not working:\n{logs}"
    );
    for secret in [TOKEN, WRONG, "SECRET-env-token", "WRONG-env-token"] {
        assert!(!logs.contains(secret), "token in logs");
        for t in &texts {
            assert!(!t.contains(secret), "token in {t}");
        }
    }
}
