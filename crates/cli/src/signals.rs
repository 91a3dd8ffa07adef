//! SIGINT / SIGTERM → a cancellation token: the engine stops fetching, commits
//! what is in flight and marks the run interrupted. A second signal exits at once.

use tokio_util::sync::CancellationToken;
use tracing::warn;

pub fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let child = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        warn!("signal received: finishing in-flight work, then stopping (signal again to abort)");
        child.cancel();
        wait_for_signal().await;
        eprintln!(
            "error: aborted by a second signal; the run will be marked interrupted by the next one"
        );
        std::process::exit(i32::from(crate::exit::Exit::Interrupted.code()));
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
