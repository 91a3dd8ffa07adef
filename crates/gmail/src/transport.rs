//! The HTTP transport: endpoint validation (https, or plain http only to loopback) and the
//! hyper-util client over a hyper-rustls connector with the aws-lc-rs provider passed
//! explicitly, so nothing depends on a process-wide rustls default.

use std::net::IpAddr;
use std::time::Duration;

use hyper_rustls::{ConfigBuilderExt as _, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::GmailError;

/// The connector type every client in this crate uses.
pub(crate) type Connector = HttpsConnector<HttpConnector>;

/// A validated API root, always ending in '/' (google-gmail1 appends `gmail/v1/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub base: String,
    pub plain_http: bool,
}

/// Accept `https://any` or `http://loopback`; anything else is a config error.
pub(crate) fn parse_endpoint(raw: &str) -> Result<Endpoint, GmailError> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| GmailError::Config(format!("gmail endpoint {raw:?}: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| GmailError::Config(format!("gmail endpoint {raw:?}: no host")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GmailError::Config(
            "gmail endpoint: credentials in the URL are not accepted".into(),
        ));
    }
    let plain_http = match url.scheme() {
        "https" => false,
        "http" if is_loopback_host(host) => true,
        "http" => {
            return Err(GmailError::Config(format!(
                "gmail endpoint {raw:?}: plain http is only allowed for loopback hosts \
                 (127.0.0.0/8, ::1, localhost); use https"
            )));
        }
        other => {
            return Err(GmailError::Config(format!(
                "gmail endpoint {raw:?}: unsupported scheme {other:?}"
            )));
        }
    };
    let mut base = url.to_string();
    if let Some(q) = base.find(['?', '#']) {
        base.truncate(q);
    }
    if !base.ends_with('/') {
        base.push('/');
    }
    Ok(Endpoint { base, plain_http })
}

/// 127.0.0.0/8, ::1 (also IPv4-mapped), or the name `localhost` (and `*.localhost`).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") || h.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

fn tls_config() -> Result<rustls::ClientConfig, GmailError> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GmailError::Config(format!("tls: {e}")))?;
    // Operators behind TLS-inspecting proxies install their CA in the system store; fall
    // back to the bundled webpki roots where the system has none (minimal containers).
    let config = match builder.clone().with_native_roots() {
        Ok(b) => b.with_no_client_auth(),
        Err(_) => builder.with_webpki_roots().with_no_client_auth(),
    };
    Ok(config)
}

/// Build the connector: https always; plain http additionally when `allow_http` (loopback).
pub(crate) fn connector(
    allow_http: bool,
    connect_timeout: Duration,
) -> Result<Connector, GmailError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let b = HttpsConnectorBuilder::new().with_tls_config(tls_config()?);
    let b = if allow_http {
        b.https_or_http()
    } else {
        b.https_only()
    };
    Ok(b.enable_http1().enable_http2().wrap_connector(http))
}

/// The connector type, for other HTTP clients of this workspace (the change
/// feed's webhook sink).
pub type TlsConnector = Connector;

/// The same TLS setup (aws-lc-rs, system roots, else webpki's) for another
/// HTTP client: https always, plain http as well when `allow_http`.
pub fn https_connector(
    allow_http: bool,
    connect_timeout: Duration,
) -> Result<TlsConnector, GmailError> {
    connector(allow_http, connect_timeout)
}

/// The API client (google-gmail1's body type).
pub(crate) fn api_client(connector: Connector) -> Client<Connector, google_gmail1::common::Body> {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// The OAuth client (yup-oauth2's body type) for the token endpoint `token_uri` (from the
/// client secret or service-account key): https, or plain http only when that endpoint is
/// loopback (a local token server in tests), like the API endpoint rule.
pub(crate) fn oauth_client(
    connect_timeout: Duration,
    token_uri: &str,
) -> Result<Client<Connector, String>, GmailError> {
    let allow_http = parse_endpoint(token_uri).is_ok_and(|e| e.plain_http);
    Ok(Client::builder(TokioExecutor::new()).build(connector(allow_http, connect_timeout)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
            "a.localhost",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "10.0.0.1",
            "128.0.0.1",
            "gmail.googleapis.com",
            "localhost.evil.com",
            "::2",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn endpoint_rules() {
        let e = parse_endpoint("http://127.0.0.1:4000").expect("loopback http");
        assert_eq!(e.base, "http://127.0.0.1:4000/");
        assert!(e.plain_http);
        let e = parse_endpoint("https://gmail.googleapis.com/").expect("https");
        assert!(!e.plain_http);
        assert_eq!(e.base, "https://gmail.googleapis.com/");
        assert!(parse_endpoint("http://[::1]:9/x").is_ok());
        for bad in [
            "http://gmail.googleapis.com/",
            "http://10.1.2.3/",
            "ftp://127.0.0.1/",
            "nonsense",
            "https://u:p@host/",
        ] {
            assert!(
                matches!(parse_endpoint(bad), Err(GmailError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn builds_clients_with_explicit_provider() {
        assert!(connector(true, Duration::from_secs(1)).is_ok());
        assert!(
            oauth_client(
                Duration::from_secs(1),
                "https://oauth2.googleapis.com/token"
            )
            .is_ok()
        );
        assert!(oauth_client(Duration::from_secs(1), "http://127.0.0.1:9/token").is_ok());
    }
}
