//! Shared test helpers: start an emulator, a google-gmail1 hub over plain HTTP to
//! loopback, and a bare HTTP client for what google-gmail1 cannot express.
#![allow(dead_code)] // each test binary uses a different subset

use bytes::Bytes;
use google_gmail1::{Gmail, common, hyper_util};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use gmail_emulator::{Emulator, EmulatorConfig, Faults, Quota};

pub type Hub = Gmail<HttpConnector>;

pub async fn start(messages: usize) -> Emulator {
    Emulator::start(EmulatorConfig {
        messages,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts")
}

/// A google-gmail1 hub pointed at the emulator (any bearer token works).
pub fn hub(url: &str) -> Hub {
    let client: Client<HttpConnector, common::Body> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut hub = Gmail::new(client, "test-token".to_string());
    hub.base_url(url.to_string());
    hub.root_url(url.to_string());
    hub
}

/// The HTTP status Gmail's error body carries, if the error is an API error.
pub fn error_code(e: &google_gmail1::Error) -> Option<i64> {
    match e {
        google_gmail1::Error::BadRequest(v) => v["error"]["code"].as_i64(),
        _ => None,
    }
}

pub fn error_reason(e: &google_gmail1::Error) -> Option<String> {
    match e {
        google_gmail1::Error::BadRequest(v) => v["error"]["errors"][0]["reason"]
            .as_str()
            .map(str::to_string),
        _ => None,
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// Plain HTTP request (no Gmail client semantics).
pub async fn request(method: &str, url: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", "Bearer test-token");
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let resp = client.request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str) -> Reply {
    request("GET", url, None, Vec::new()).await
}

/// A multipart message whose every body length is a multiple of 3, so its unpadded
/// base64url also decodes with google-gmail1 (which requires canonical padding).
pub fn mixed_message() -> (Vec<u8>, Vec<u8>) {
    let attachment: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&attachment);
    let raw = format!(
        "From: Alice <alice@example.org>\r\nTo: user@example.com\r\nSubject: =?UTF-8?Q?Caf=C3=A9_plans?=\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <mixed-1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello there.\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello there</p>\r\n--inner--\r\n--outer\r\nContent-Type: application/octet-stream; name=\"blob.bin\"\r\nContent-Disposition: attachment; filename=\"blob.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--outer--\r\n"
    );
    (raw.into_bytes(), attachment)
}
