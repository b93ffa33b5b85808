//! Signals: the first SIGINT or SIGTERM asks for a clean shutdown, a later second one exits at once.

use std::time::Duration;

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once (everything on disk is
/// already in a recoverable state).
pub async fn signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tokio::spawn(async move {
        // A signal sent to the whole process group (timeout(1), a terminal) can arrive twice at
        // once; only a later, deliberate second signal means "exit now".
        let first = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if first.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        tracing::warn!("second signal: exiting immediately");
        std::process::exit(130);
    });
}
