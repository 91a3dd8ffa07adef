//! Quota-floor benchmark (not a timed test): the emulator enforces 250 units/s; the client,
//! with its default limiter, fetches N messages raw (default 2,000 → floor 2,000 × 5 / 250 =
//! 40 s). Reports wall vs floor, quota units, retries, and 429s after the first second.
//!
//! `cargo bench -p gmail --bench quota_floor [--profile dev] -- [N [HEADROOM [BURST]]]`
//! (HEADROOM and BURST override the client's limiter defaults, to compare settings.)

use std::time::{Duration, Instant};

use futures::StreamExt;
use gmail::{AuthSpec, ClientConfig, GmailClient, QuotaTable};
use gmail_emulator::{Emulator, EmulatorConfig, Quota};

const QUOTA: u32 = 250;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nums: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = nums.first().map_or(2_000, |v| *v as usize);
    let emu = Emulator::start(EmulatorConfig {
        messages: n,
        days: 7,
        ..EmulatorConfig::default()
    })
    .await?;
    let mb = emu.default_mailbox();
    let ids = emu.message_ids(&mb);
    emu.set_quota(Quota {
        per_second: Some(QUOTA),
        ..Quota::default()
    });
    emu.reset_stats();
    let mut cfg = ClientConfig::new(AuthSpec::None).with_endpoint(emu.url());
    // The bench predates the 2026 table and keeps its figures: 5-unit gets, 250 units/s.
    cfg.quota.table = QuotaTable::Y2025;
    cfg.quota.units_per_second = Some(f64::from(QUOTA));
    if let Some(h) = nums.get(1) {
        cfg.quota.headroom = *h;
    }
    if let Some(b) = nums.get(2) {
        cfg.quota.burst_units = *b;
    }
    println!(
        "limiter          : {} units/s, headroom {}, burst {} units, {} in flight",
        f64::from(QUOTA),
        cfg.quota.headroom,
        cfg.quota.burst_units,
        cfg.quota.max_concurrent
    );
    let client = GmailClient::new(cfg).await?;

    // 429s seen by the end of the first second, to tell start-up from steady state.
    let probe = client.clone();
    let at_one_second = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        probe.metrics().total.rate_limited
    });
    let started = Instant::now();
    let mut bytes = 0usize;
    let mut failed = 0usize;
    let mut results = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let c = client.clone();
            let mb = mb.clone();
            async move { c.message_raw(&mb, &id).await }
        })
        .buffer_unordered(32);
    while let Some(r) = results.next().await {
        match r {
            Ok(m) => bytes += m.raw.len(),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let early_429 = at_one_second.await.unwrap_or(0);
    let m = client.metrics();
    let get = m.method("messages.get");
    let floor = (ids.len() as f64) * 5.0 / f64::from(QUOTA);
    let stats = emu.stats();
    let server_429: u64 = stats.faults_injected.get("quota").copied().unwrap_or(0);
    println!(
        "messages fetched : {} ({} failed), {} MiB",
        ids.len() - failed,
        failed,
        bytes / (1 << 20)
    );
    println!("wall             : {wall:.2} s");
    println!(
        "quota floor      : {floor:.2} s  (wall/floor = {:.3}, target ≤ 1.05)",
        wall / floor
    );
    println!(
        "quota units      : client {} / emulator {}",
        get.quota_units,
        stats.quota_units(&mb)
    );
    println!("retries          : {}", get.retries);
    println!(
        "429s             : {} total (emulator {}), {} after the first second",
        get.rate_limited,
        server_429,
        get.rate_limited.saturating_sub(early_429)
    );
    println!(
        "throttled        : {} ms summed over calls",
        get.throttled_ms
    );
    println!("json             : {}", serde_json::to_string(&m)?);
    emu.shutdown().await;
    Ok(())
}
