//! Shared test helpers: a client pointed at an emulator, fast retry settings, and a tiny
//! scripted HTTP/1.1 server for wire shapes the emulator does not produce.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gmail::{AuthSpec, ClientConfig, GmailClient, QuotaConfig, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Retries fast enough for tests, generous enough to ride out 20% faults.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 12,
        max_elapsed: Duration::from_secs(60),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
    }
}

pub fn config(endpoint: &str, auth: AuthSpec) -> ClientConfig {
    let mut c = ClientConfig::new(auth).with_endpoint(endpoint);
    c.retry = fast_retry();
    // Tests that are not about quota must not be paced by it.
    c.quota = QuotaConfig {
        units_per_second: Some(1_000_000.0),
        burst_units: 1_000_000.0,
        ..QuotaConfig::default()
    };
    c.request_timeout = Duration::from_secs(10);
    c
}

pub async fn client(endpoint: &str) -> GmailClient {
    GmailClient::new(config(endpoint, AuthSpec::None))
        .await
        .expect("client")
}

/// One canned HTTP response.
#[derive(Clone, Debug)]
pub struct Canned {
    pub delay: Duration,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Canned {
    pub fn json(status: u16, body: &str) -> Self {
        Canned {
            delay: Duration::ZERO,
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What the scripted server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub request_line: String,
    pub authorization: Option<String>,
}

/// Serves the queued responses in order, one per request (keep-alive), recording requests.
pub struct Scripted {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    pub async fn start(responses: Vec<Canned>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let queue = Arc::new(Mutex::new(VecDeque::from(responses)));
        let s2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, s2.clone(), queue.clone()));
            }
        });
        Scripted { url, seen }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn serve(
    mut sock: tokio::net::TcpStream,
    seen: Arc<Mutex<Vec<Seen>>>,
    queue: Arc<Mutex<VecDeque<Canned>>>,
) {
    let mut buf = Vec::new();
    loop {
        // Read one request head (our client sends GETs without a body).
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
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let request_line = head.lines().next().unwrap_or_default().to_string();
        let authorization = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            .map(|l| l["authorization:".len()..].trim().to_string());
        seen.lock().expect("lock").push(Seen {
            at: Instant::now(),
            request_line,
            authorization,
        });
        let canned = queue.lock().expect("lock").pop_front().unwrap_or_else(|| {
            Canned::json(
                500,
                r#"{"error":{"code":500,"message":"script exhausted"}}"#,
            )
        });
        if !canned.delay.is_zero() {
            tokio::time::sleep(canned.delay).await;
        }
        let mut out = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            canned.status,
            canned.body.len()
        );
        for (n, v) in &canned.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&canned.body);
        if sock.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}
