//! Store throughput benchmark: 1 GiB as 1 MiB blobs.
//!
//! * hashing alone (sha2, the same code path the store uses) vs `openssl speed -evp sha256`
//!   (run here when `openssl` is on PATH; the target is >= 80 % of it);
//! * fs store puts into a temp dir (staging file + fsync + link + dir fsync per blob);
//! * S3 store puts to the test S3 server when AWS_ENDPOINT_URL and MAILINGEST_TEST_S3_BUCKET are
//!   set (`source scripts/s3-server.sh && s3_server_start`); BENCH_S3_MIB sets the volume
//!   (default 256: moto keeps objects in its Python process's memory).
//!
//! Run: `cargo bench -p store --bench put_throughput`. Without `--bench` (as under
//! `cargo test --all-targets`) it runs a 16 MiB smoke pass so tests stay fast.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rand::RngCore;
use store::{BlobStore, Sha256};

const MIB: usize = 1 << 20;
/// Blobs generated per batch (outside the timed region), to bound memory at 64 MiB.
const BATCH: usize = 64;
const CONCURRENCY: usize = 4;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let total_mib: usize = if full { 1024 } else { 16 };
    let s3_mib: usize = if full {
        std::env::var("BENCH_S3_MIB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256)
    } else {
        16
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let base = {
        let mut v = vec![0u8; MIB];
        rand::rng().fill_bytes(&mut v);
        v
    };

    let hash = measure(total_mib, &base, |blobs| {
        for b in blobs {
            std::hint::black_box(Sha256::digest(b));
        }
    });
    report("sha256 (sha2 crate, 1 MiB blobs)", total_mib, hash);
    if !full {
        println!("smoke run: skipping openssl (pass --bench, as `cargo bench` does)");
    } else if let Some(openssl) = openssl_sha256_bytes_per_sec() {
        let ours = mib_per_sec(total_mib, hash) * MIB as f64;
        println!(
            "{:<44} {:>9.1} MiB/s   (ours = {:.0} % of openssl; target >= 80 %)",
            "openssl speed -evp sha256 -bytes 1048576",
            openssl / MIB as f64,
            100.0 * ours / openssl
        );
    } else {
        println!("openssl not found: skipping the reference measurement");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let fs_store = rt
        .block_on(BlobStore::from_url(
            dir.path().to_str().expect("utf-8"),
            "bench",
        ))
        .expect("open fs store");
    let fs = measure_async(&rt, &fs_store, total_mib, &base);
    report(
        &format!("fs store put ({CONCURRENCY} concurrent)"),
        total_mib,
        fs,
    );
    let again = measure_async(&rt, &fs_store, total_mib.min(256), &base);
    report(
        "fs store re-put of existing blobs",
        total_mib.min(256),
        again,
    );
    drop(dir);

    match (
        std::env::var("AWS_ENDPOINT_URL"),
        std::env::var("MAILINGEST_TEST_S3_BUCKET"),
    ) {
        (Ok(endpoint), Ok(bucket)) => {
            let prefix = format!("bench-{:08x}", rand::random::<u32>());
            let s3 = rt
                .block_on(BlobStore::from_url(&format!("s3://{bucket}"), &prefix))
                .expect("open s3 store");
            let t = measure_async(&rt, &s3, s3_mib, &base);
            report(&format!("S3 store put ({endpoint})"), s3_mib, t);
        }
        _ => println!("S3: AWS_ENDPOINT_URL / MAILINGEST_TEST_S3_BUCKET not set; skipped"),
    }
}

/// Distinct blobs `first..first+n`: the shared random base with the index in the first bytes.
fn batch(base: &[u8], first: usize, n: usize) -> Vec<Bytes> {
    (first..first + n)
        .map(|i| {
            let mut v = base.to_vec();
            v[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Bytes::from(v)
        })
        .collect()
}

/// Time `f` over `total_mib` blobs, excluding blob generation.
fn measure(total_mib: usize, base: &[u8], mut f: impl FnMut(&[Bytes])) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < total_mib {
        let n = BATCH.min(total_mib - done);
        let blobs = batch(base, done, n);
        let start = Instant::now();
        f(&blobs);
        elapsed += start.elapsed();
        done += n;
    }
    elapsed
}

fn measure_async(
    rt: &tokio::runtime::Runtime,
    store: &BlobStore,
    total_mib: usize,
    base: &[u8],
) -> Duration {
    measure(total_mib, base, |blobs| {
        rt.block_on(async {
            futures::stream::iter(blobs.iter().cloned())
                .map(|b| store.put(b))
                .buffer_unordered(CONCURRENCY)
                .for_each(|r| {
                    r.expect("put");
                    futures::future::ready(())
                })
                .await;
        });
    })
}

fn mib_per_sec(mib: usize, d: Duration) -> f64 {
    mib as f64 / d.as_secs_f64()
}

fn report(what: &str, mib: usize, d: Duration) {
    println!(
        "{what:<44} {:>9.1} MiB/s   ({mib} MiB in {:.2} s)",
        mib_per_sec(mib, d),
        d.as_secs_f64()
    );
}

/// `openssl speed -evp sha256` on 1 MiB blocks, in bytes/s.
fn openssl_sha256_bytes_per_sec() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args([
            "speed", "-evp", "sha256", "-bytes", "1048576", "-seconds", "3",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    // Last line: "sha256  1712345.67k" (thousands of bytes per second).
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("sha256"))?;
    let value = last.split_whitespace().last()?.trim_end_matches('k');
    value.parse::<f64>().ok().map(|k| k * 1000.0)
}
