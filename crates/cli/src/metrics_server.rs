//! `worker --metrics-addr`: Prometheus text at `/metrics` and a health check
//! at `/healthz` (200 while the worker loop turns and the database answers,
//! 503 with the reason otherwise), on a small axum server beside the worker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gmail::GmailClient;
use ingest::metrics::Metrics;
use ingest::repo::Repository;

#[derive(Clone)]
struct Served {
    metrics: Arc<Metrics>,
    repo: Arc<dyn Repository>,
    gmail: GmailClient,
    /// The loop is stuck when it has not turned for this long.
    stale_after: Duration,
}

/// Binds `addr` (failing at once when it cannot) and serves until the process ends.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    repo: Arc<dyn Repository>,
    gmail: GmailClient,
    poll: Duration,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-addr {addr}"))?;
    let state = Served {
        metrics,
        repo,
        gmail,
        stale_after: (poll * 3).max(Duration::from_secs(30)),
    };
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(health))
        .with_state(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(())
}

async fn scrape(State(s): State<Served>) -> Response {
    match s.metrics.scrape(s.repo.as_ref(), &s.gmail).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn health(State(s): State<Served>) -> Response {
    match s.metrics.since_tick() {
        Some(secs) if secs <= s.stale_after.as_secs() as i64 => {}
        Some(secs) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("worker loop has not turned for {secs}s\n"),
            )
                .into_response();
        }
        None => {
            return (StatusCode::SERVICE_UNAVAILABLE, "worker starting\n").into_response();
        }
    }
    let org = s.metrics.org();
    match tokio::time::timeout(Duration::from_secs(5), s.repo.list_mailboxes(org)).await {
        Ok(Ok(_)) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database: no answer within 5s\n",
        )
            .into_response(),
    }
}
