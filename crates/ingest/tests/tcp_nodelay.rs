//! Our database connections disable Nagle's algorithm (TCP_NODELAY).
//!
//! sqlx-core 0.9.0 stopped setting it, and every batch statement then waited
//! ~40 ms for the server's delayed ACK (the ledger appended 8,300 events/s
//! instead of 28,000). The workspace patches sqlx-core (vendor/sqlx-core); this
//! test fails if the patch is dropped, or a sqlx upgrade loses the option again,
//! before anyone has to rediscover it in a benchmark.

use std::os::fd::{BorrowedFd, RawFd};

use sqlx::PgPool;

/// The fd of this process's TCP socket whose local port is `port`.
fn socket_with_local_port(port: u16) -> Option<RawFd> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: `fd` is open for the duration of this call: the pool keeps the
        // connection that owns it alive, and nothing here closes it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let local = socket2::SockRef::from(&borrowed).local_addr().ok();
        if local.and_then(|a| a.as_socket()).map(|a| a.port()) == Some(port) {
            return Some(fd);
        }
    }
    None
}

#[sqlx::test(migrations = "../../migrations/postgres")]
async fn database_connections_set_tcp_nodelay(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let port: Option<i32> = sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let port = port.expect("the test bed connects over TCP (DATABASE_URL on 127.0.0.1)");
    let port = u16::try_from(port).unwrap();
    let fd = socket_with_local_port(port)
        .unwrap_or_else(|| panic!("no socket of this process has local port {port}"));
    // SAFETY: as above; `conn` is still held.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    assert!(
        socket2::SockRef::from(&borrowed).tcp_nodelay().unwrap(),
        "TCP_NODELAY is off on the database connection: see vendor/sqlx-core/PATCHED.md"
    );
}
