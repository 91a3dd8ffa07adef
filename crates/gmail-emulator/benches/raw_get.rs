//! Benchmark: messages.get format=raw of a ~20 KB message over keep-alive HTTP/1.1
//! connections; prints requests per second. Run: `cargo bench -p gmail-emulator --bench raw_get`
//! (env BENCH_SECS, BENCH_CONNS to tune). Not a test: it asserts nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gmail_emulator::{Emulator, EmulatorConfig};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

fn twenty_kb_message() -> Vec<u8> {
    let mut body = String::new();
    let mut i = 0;
    while body.len() < 20_000 {
        body.push_str(&format!(
            "Line {i} of the benchmark message body, some words here.\r\n"
        ));
        i += 1;
    }
    format!(
        "From: a@example.org\r\nTo: user@example.com\r\nSubject: bench\r\nMessage-ID: <bench@example.org>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    .into_bytes()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let secs = env_or("BENCH_SECS", 5);
    let conns = env_or("BENCH_CONNS", 8);
    let emu = Emulator::start(EmulatorConfig {
        messages: 0,
        ..EmulatorConfig::default()
    })
    .await
    .expect("start");
    let raw = twenty_kb_message();
    let id = emu
        .insert_raw(&emu.default_mailbox(), &raw, &["INBOX"], None)
        .expect("insert");
    let path = format!("/gmail/v1/users/me/messages/{id}?format=raw");
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut response_len = 0usize;
    for _ in 0..conns {
        let addr = emu.addr();
        let path = path.clone();
        let count = count.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut send, conn) =
                hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(conn);
            let mut len = 0;
            while !stop.load(Ordering::Relaxed) {
                let req = http::Request::get(path.as_str())
                    .header("host", "127.0.0.1")
                    .header("authorization", "Bearer bench")
                    .body(Empty::new())
                    .expect("request");
                let resp = send.send_request(req).await.expect("response");
                assert_eq!(resp.status(), 200);
                len = resp
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes()
                    .len();
                count.fetch_add(1, Ordering::Relaxed);
            }
            len
        }));
    }
    // Warm up, then measure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_count = count.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let done = count.load(Ordering::Relaxed) - start_count;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        response_len = t.await.expect("task");
    }
    println!(
        "raw_get: {:.0} requests/s ({done} requests in {elapsed:.2}s, {conns} keep-alive connections, message {} bytes, response {} bytes)",
        done as f64 / elapsed,
        raw.len(),
        response_len
    );
    emu.shutdown().await;
}
