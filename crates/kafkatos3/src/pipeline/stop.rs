//! Stopping: the shutdown a signal (or a fatal error) requests, with the deadline for finishing work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shutdown requested by a signal (or a fatal error), with the deadline for finishing work.
#[derive(Debug, Default)]
pub struct Shutdown {
    stopping: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    failed: AtomicBool,
}

impl Shutdown {
    pub fn request(&self, grace: Duration) {
        let mut deadline = self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        if deadline.is_none() {
            *deadline = Some(Instant::now() + grace);
        }
        self.stopping.store(true, Ordering::SeqCst);
        crate::observe::metrics::global().health.stopping();
    }

    /// A fatal condition: stop now and exit non-zero.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        crate::observe::metrics::global().health.failed();
        self.request(Duration::ZERO);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Set once the consumers are gone (or the deadline passed): the later stages finish the file at
/// hand and stop. [`StageStop::stop`] also wakes them, so none waits out its rescan period.
#[derive(Debug)]
pub struct StageStop {
    stopped: super::wake::Latch,
    compress_wake: std::sync::Arc<super::wake::Wake>,
    upload_wake: std::sync::Arc<tokio::sync::Notify>,
}

impl StageStop {
    pub fn new(
        compress_wake: std::sync::Arc<super::wake::Wake>,
        upload_wake: std::sync::Arc<tokio::sync::Notify>,
    ) -> Self {
        StageStop { stopped: super::wake::Latch::default(), compress_wake, upload_wake }
    }

    pub fn stop(&self) {
        self.stopped.set();
        self.compress_wake.notify();
        // notify_one stores a permit, so an uploader busy scanning sees it on its next wait.
        self.upload_wake.notify_one();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.is_set()
    }

    /// Sleeps up to `timeout` between a stage's periodic jobs; true once stopped.
    pub fn sleep(&self, timeout: Duration) -> bool {
        self.stopped.wait_timeout(timeout)
    }
}
