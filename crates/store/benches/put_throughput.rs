//! Store throughput benchmark: 1 GiB as 1 MiB blobs.
//!
//! * hashing alone (`store::Sha256::digest`, the store's code path: sha2 0.10, SHA-NI) vs `openssl speed -evp sha256`
//!   (run here when `openssl` is on PATH; the target is >= 80 % of it);
//! * fs store puts into a temp dir (staging file + fsync + link + dir fsync per blob);
//! * fs store puts of mail-sized (50 KB) blobs, durable one by one (`put`) vs deferred and
//!   flushed by one `sync` per 64 blobs (`put_deferred`, as a backfill writes them);
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

    // Hashing. `openssl speed` hashes one buffer over and over (hot in cache) and divides by
    // CPU user time; the like-for-like figure is the store's digest on one hot 1 MiB buffer,
    // on-CPU time of this thread. The cold figure (1024 distinct blobs, from DRAM) is what a
    // stream of new attachments costs.
    let cold = measure(total_mib, &base, |blobs| {
        for b in blobs {
            std::hint::black_box(Sha256::digest(b));
        }
    });
    report("sha256 (sha2), 1024 distinct 1 MiB blobs", total_mib, cold);
    let (hot, hot_cpu) = timed(|| {
        for _ in 0..total_mib {
            std::hint::black_box(Sha256::digest(std::hint::black_box(&base)));
        }
    });
    report("sha256 (sha2), one hot 1 MiB buffer", total_mib, hot);
    if let Some(cpu) = hot_cpu {
        report("  same, per on-CPU second of this thread", total_mib, cpu);
    }
    if !full {
        println!("smoke run: skipping openssl (pass --bench, as `cargo bench` does)");
    } else {
        let ours_wall = mib_per_sec(total_mib, hot);
        let ours_cpu = hot_cpu.map_or(ours_wall, |c| mib_per_sec(total_mib, c));
        for (label, elapsed, ours) in [
            ("openssl speed -evp sha256 (CPU time)", false, ours_cpu),
            ("openssl speed -elapsed -evp sha256 (wall)", true, ours_wall),
        ] {
            match openssl_sha256_mib_per_sec(elapsed) {
                Some(openssl) => println!(
                    "{label:<44} {openssl:>9.1} MiB/s   (store hashing, hot = {:.0} % of it; target >= 80 %)",
                    100.0 * ours / openssl
                ),
                None => println!("{label}: openssl not available"),
            }
        }
    }

    let (dir, fs_store) = temp_fs_store(&rt);
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

    let mail_blobs = if full { 10_000 } else { 256 };
    for deferred in [false, true] {
        let (_dir, store) = temp_fs_store(&rt);
        let (wall, cpu) = put_small_blobs(&rt, &store, mail_blobs, &base[..50_000], deferred);
        let label = if deferred {
            "fs put_deferred, sync per 64"
        } else {
            "fs put (durable each)"
        };
        println!(
            "{label:<44} {:>9.0} blobs/s ({mail_blobs} x 50 KB in {:.2} s; process CPU {:.0} us/blob)",
            mail_blobs as f64 / wall.as_secs_f64(),
            wall.as_secs_f64(),
            cpu.map_or(f64::NAN, |c| c.as_secs_f64() * 1e6 / mail_blobs as f64),
        );
    }

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

/// An fs store in a fresh temp dir (removed when the returned guard drops).
fn temp_fs_store(rt: &tokio::runtime::Runtime) -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt
        .block_on(BlobStore::from_url(
            dir.path().to_str().expect("utf-8"),
            "bench",
        ))
        .expect("open fs store");
    (dir, store)
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

/// Wall-clock and on-CPU time of `f` on this thread.
fn timed(f: impl FnOnce()) -> (Duration, Option<Duration>) {
    let cpu0 = thread_cpu();
    let start = Instant::now();
    f();
    let wall = start.elapsed();
    (wall, thread_cpu().zip(cpu0).map(|(b, a)| b - a))
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

/// `n` distinct blobs of `base`'s size, 64 at a time with `CONCURRENCY` in flight; deferred
/// puts are followed by one `sync` per 64, which is inside the timed region.
fn put_small_blobs(
    rt: &tokio::runtime::Runtime,
    store: &BlobStore,
    n: usize,
    base: &[u8],
    deferred: bool,
) -> (Duration, Option<Duration>) {
    let mut wall = Duration::ZERO;
    let cpu0 = process_cpu();
    for first in (0..n).step_by(BATCH) {
        let blobs = batch(base, first, BATCH.min(n - first));
        let start = Instant::now();
        rt.block_on(async {
            futures::stream::iter(blobs)
                .map(|b| async move {
                    if deferred {
                        store.put_deferred(b).await
                    } else {
                        store.put(b).await
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .for_each(|r| {
                    r.expect("put");
                    futures::future::ready(())
                })
                .await;
            if deferred {
                store.sync().await.expect("sync");
            }
        });
        wall += start.elapsed();
    }
    (wall, process_cpu().zip(cpu0).map(|(b, a)| b - a))
}

/// User + system CPU of this process (Linux `/proc/self/stat`, clock ticks of 10 ms).
fn process_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
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

/// `openssl speed -evp sha256` on 1 MiB blocks, in MiB/s.
fn openssl_sha256_mib_per_sec(elapsed: bool) -> Option<f64> {
    let mut args = vec!["speed"];
    if elapsed {
        args.push("-elapsed");
    }
    args.extend(["-evp", "sha256", "-bytes", "1048576", "-seconds", "3"]);
    let out = std::process::Command::new("openssl")
        .args(&args)
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
    value.parse::<f64>().ok().map(|k| k * 1000.0 / MIB as f64)
}

/// On-CPU time of the calling thread (Linux `/proc/thread-self/schedstat`, nanoseconds).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}
