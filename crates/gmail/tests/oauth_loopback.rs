//! The OAuth paths against a loopback token endpoint (a tiny HTTP server standing in for
//! https://oauth2.googleapis.com/token):
//!
//! - no credential — client secret, refresh token, access token, service-account private key
//!   or signed assertion — reaches any log output at TRACE, `log` records (yup-oauth2's)
//!   included, through the installed-app refresh and the service-account flow;
//! - the token cache is replaced atomically (new inode, 0600, no temp file left);
//! - a revoked refresh token (400 invalid_grant) fails at once with one line naming
//!   `mailingest auth login`, without starting an interactive flow.
//!
//! One global subscriber for the binary (the `log` bridge is process-wide); every test here
//! logs into it, and the secrets test checks what all of them wrote.

mod common;

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{Canned, Scripted};
use gmail::{AuthSpec, GmailClient, GmailError, READONLY_SCOPE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

const CLIENT_SECRET: &str = "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56789";
const OLD_REFRESH: &str = "1//LOOPBACK-old-refresh-token-abcdef";
const OLD_ACCESS: &str = "ya29.LOOPBACK-expired-access-token";
const NEW_ACCESS: &str = "ya29.LOOPBACK-fresh-access-token-987654";
const NEW_REFRESH: &str = "1//LOOPBACK-rotated-refresh-token-123456";
const SA_ACCESS: &str = "ya29.LOOPBACK-service-account-token-555";

const PROFILE: &str =
    r#"{"emailAddress":"u@example.com","messagesTotal":1,"threadsTotal":1,"historyId":"7"}"#;

// ---------------------------------------------------------------- log capture

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

/// (with the veto, without it): both at TRACE, the `log` bridge installed by `try_init`.
fn captures() -> &'static (Capture, Capture) {
    static C: OnceLock<(Capture, Capture)> = OnceLock::new();
    C.get_or_init(|| {
        let (guarded, raw) = (Capture::default(), Capture::default());
        let (g, r) = (guarded.clone(), raw.clone());
        let safe = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || g.clone())
            .with_filter(LevelFilter::TRACE)
            .with_filter(filter_fn(gmail::log_metadata_is_safe));
        // The control: what the same run logs with no veto (proves the leak is real and the
        // capture sees `log` records).
        let unfiltered = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || r.clone())
            .with_filter(LevelFilter::TRACE);
        tracing_subscriber::registry()
            .with(safe)
            .with(unfiltered)
            .try_init()
            .expect("global subscriber");
        (guarded, raw)
    })
}

// ---------------------------------------------------------------- token endpoint

/// A loopback token endpoint answering each POST with the next canned (status, body),
/// recording the request bodies.
struct TokenServer {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    async fn start(answers: Vec<(u16, String)>) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/token", listener.local_addr().expect("addr"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let queue = Arc::new(Mutex::new(VecDeque::from(answers)));
        let b2 = bodies.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve_token(sock, b2.clone(), queue.clone()));
            }
        });
        TokenServer { url, bodies }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("lock").clone()
    }
}

async fn serve_token(
    mut sock: tokio::net::TcpStream,
    bodies: Arc<Mutex<Vec<String>>>,
    queue: Arc<Mutex<VecDeque<(u16, String)>>>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        buf.drain(..head_end);
        while buf.len() < len {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..len).collect();
        bodies
            .lock()
            .expect("lock")
            .push(String::from_utf8_lossy(&body).into_owned());
        let (status, answer) = queue.lock().expect("lock").pop_front().unwrap_or((
            500,
            r#"{"error":"server_error","error_description":"script exhausted"}"#.to_string(),
        ));
        let out = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if sock.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- fixtures

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gmail-oauth-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// A Desktop-app client secret whose token endpoint is `token_uri`.
fn client_secret(dir: &Path, token_uri: &str) -> PathBuf {
    let p = dir.join("client_secret.json");
    let v = serde_json::json!({"installed": {
        "client_id": "1234-loopback.apps.googleusercontent.com",
        "client_secret": CLIENT_SECRET,
        "auth_uri": "http://127.0.0.1:9/auth",
        "token_uri": token_uri,
        "redirect_uris": ["http://localhost"],
    }});
    std::fs::write(&p, v.to_string()).expect("write secret");
    p
}

/// A token cache (yup-oauth2's format) holding an access token that expired in 2020 and a
/// refresh token, mode 0644 on purpose.
fn expired_cache(dir: &Path) -> PathBuf {
    let p = dir.join("gmail-token.json");
    let v = serde_json::json!([{
        "scopes": [READONLY_SCOPE],
        "token": {
            "access_token": OLD_ACCESS,
            "refresh_token": OLD_REFRESH,
            "expires_at": [2020, 1, 0, 0, 0, 0, 0, 0, 0],
            "id_token": null,
        }
    }]);
    std::fs::write(&p, v.to_string()).expect("write cache");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    p
}

fn installed(dir: &Path, token_uri: &str) -> AuthSpec {
    AuthSpec::Installed {
        credentials: client_secret(dir, token_uri),
        token_cache: expired_cache(dir),
    }
}

/// A fresh 2048-bit RSA key as PKCS#8 PEM (the form Google's key files use).
fn rsa_pem() -> String {
    use aws_lc_rs::encoding::AsDer as _;
    use base64::Engine as _;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
    let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = key.as_der().expect("der");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

fn token_answer(access: &str, refresh: Option<&str>) -> (u16, String) {
    let mut v = serde_json::json!({
        "access_token": access, "expires_in": 3599, "token_type": "Bearer",
        "scope": READONLY_SCOPE,
    });
    if let Some(r) = refresh {
        v["refresh_token"] = serde_json::Value::String(r.to_string());
    }
    (200, v.to_string())
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn refresh_secrets_never_reach_logs() {
    let (guarded, raw) = captures();
    let mut secrets: Vec<String> = [CLIENT_SECRET, OLD_REFRESH, OLD_ACCESS, NEW_ACCESS]
        .into_iter()
        .chain([NEW_REFRESH, SA_ACCESS])
        .map(str::to_string)
        .collect();

    // Installed app: the cached access token has expired; the refresh runs before the call.
    let tokens = TokenServer::start(vec![token_answer(NEW_ACCESS, Some(NEW_REFRESH))]).await;
    let api = Scripted::start(vec![Canned::json(200, PROFILE)]).await;
    let dir = scratch("secrets-installed");
    let c = GmailClient::new(common::config(&api.url, installed(&dir, &tokens.url)))
        .await
        .expect("client");
    c.profile("me").await.expect("profile after refresh");
    assert_eq!(
        api.requests()[0].authorization.as_deref(),
        Some(format!("Bearer {NEW_ACCESS}").as_str()),
        "the refreshed token was not used"
    );
    let sent = tokens.bodies();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("grant_type=refresh_token"), "{}", sent[0]);

    // Service account with domain-wide delegation: a signed JWT assertion for the subject.
    let pem = rsa_pem();
    let key_lines: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    secrets.extend(key_lines.iter().map(|l| l.to_string()));
    let tokens = TokenServer::start(vec![token_answer(SA_ACCESS, None)]).await;
    let api = Scripted::start(vec![Canned::json(200, PROFILE)]).await;
    let dir = scratch("secrets-sa");
    let key = dir.join("sa.json");
    let v = serde_json::json!({
        "type": "service_account",
        "project_id": "loopback",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "ingest@loopback.iam.gserviceaccount.com",
        "client_id": "42",
        "auth_uri": "http://127.0.0.1:9/auth",
        "token_uri": tokens.url,
    });
    std::fs::write(&key, v.to_string()).expect("write key");
    let c = GmailClient::new(common::config(
        &api.url,
        AuthSpec::ServiceAccount { key: key.clone() },
    ))
    .await
    .expect("client");
    c.profile("u@example.com")
        .await
        .expect("profile as subject");
    assert_eq!(
        api.requests()[0].authorization.as_deref(),
        Some(format!("Bearer {SA_ACCESS}").as_str())
    );
    let sent = tokens.bodies();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let assertion = sent[0]
        .split('&')
        .find_map(|kv| kv.strip_prefix("assertion="))
        .expect("a JWT assertion")
        .to_string();
    // The signature part of the JWT.
    secrets.push(assertion.rsplit('.').next().expect("sig").to_string());

    let safe = guarded.text();
    let unsafe_ = raw.text();
    // The control shows the capture sees yup-oauth2's `log` records and that they do carry
    // the credentials: the veto is what keeps them out.
    assert!(
        unsafe_.contains(NEW_ACCESS) && unsafe_.contains(CLIENT_SECRET),
        "control capture does not see yup-oauth2's records:\n{unsafe_}"
    );
    assert!(
        safe.contains("TRACE") || safe.contains("DEBUG"),
        "capture broken:\n{safe}"
    );
    for s in &secrets {
        assert!(!safe.contains(s.as_str()), "secret {s:?} in logs:\n{safe}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn refreshed_token_cache_is_replaced_atomically_and_0600() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let _ = captures();
    let tokens = TokenServer::start(vec![token_answer(NEW_ACCESS, Some(NEW_REFRESH))]).await;
    let api = Scripted::start(vec![Canned::json(200, PROFILE)]).await;
    let dir = scratch("cache-atomic");
    let spec = installed(&dir, &tokens.url);
    let AuthSpec::Installed { token_cache, .. } = &spec else {
        unreachable!()
    };
    let before = std::fs::metadata(token_cache).expect("cache").ino();
    let c = GmailClient::new(common::config(&api.url, spec.clone()))
        .await
        .expect("client");
    c.profile("me").await.expect("profile after refresh");

    let meta = std::fs::metadata(token_cache).expect("cache");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // Written to a new file and renamed over, not truncated and rewritten in place.
    assert_ne!(meta.ino(), before, "the cache was rewritten in place");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut expected = vec![
        "client_secret.json".to_string(),
        "gmail-token.json".to_string(),
    ];
    expected.sort();
    let mut got = names.clone();
    got.sort();
    assert_eq!(got, expected, "a temporary file was left behind");
    // yup-oauth2's format, with the new tokens: a later run (or older build) reads it back.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(token_cache).expect("read")).expect("json");
    assert_eq!(v[0]["scopes"][0], READONLY_SCOPE);
    assert_eq!(v[0]["token"]["access_token"], NEW_ACCESS);
    assert_eq!(v[0]["token"]["refresh_token"], NEW_REFRESH);

    // A second client reads the cache back: valid token, no call to the token endpoint.
    let api2 = Scripted::start(vec![Canned::json(200, PROFILE)]).await;
    let c2 = GmailClient::new(common::config(&api2.url, spec))
        .await
        .expect("client");
    c2.profile("me").await.expect("profile from cache");
    assert_eq!(
        api2.requests()[0].authorization.as_deref(),
        Some(format!("Bearer {NEW_ACCESS}").as_str())
    );
    assert_eq!(tokens.bodies().len(), 1);
}

#[tokio::test]
async fn revoked_refresh_token_fails_at_once_pointing_at_auth_login() {
    let _ = captures();
    let revoked = (
        400,
        r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#
            .to_string(),
    );
    let tokens = TokenServer::start(vec![revoked.clone(), revoked]).await;
    let api = Scripted::start(vec![Canned::json(200, PROFILE)]).await;
    let dir = scratch("revoked");
    let c = GmailClient::new(common::config(&api.url, installed(&dir, &tokens.url)))
        .await
        .expect("client");
    let t0 = std::time::Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(10), c.profile("me")).await;
    let e = out
        .expect("still waiting after 10 s: an interactive flow was started")
        .expect_err("a revoked token cannot work");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let text = e.to_string();
    assert!(matches!(e, GmailError::Auth(_)), "{e:?}");
    assert!(text.contains("mailingest auth login"), "{text}");
    assert!(!text.contains('\n'), "not one line: {text}");
    assert!(
        !text.contains(CLIENT_SECRET) && !text.contains(OLD_REFRESH),
        "{text}"
    );
    assert!(
        !text.contains("http://127.0.0.1:9/auth"),
        "a consent URL: {text}"
    );
    assert!(api.requests().is_empty(), "Gmail called without a token");
    assert_eq!(tokens.bodies().len(), 1, "one refresh attempt");
    let _ = std::io::stderr().flush();
}
