//! A stage hands a file to the next one by renaming it into the next directory, then wakes that
//! stage so it does not wait for its periodic rescan.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A level-triggered wake-up for a stage that otherwise rescans on a timer.
#[derive(Debug, Default)]
pub struct Wake {
    pending: Mutex<bool>,
    cond: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    /// Waits until notified or `timeout` passed; consumes the notification.
    pub fn wait_timeout(&self, timeout: Duration) {
        let guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let (mut pending, _) =
            self.cond.wait_timeout_while(guard, timeout, |pending| !*pending).unwrap_or_else(|p| p.into_inner());
        *pending = false;
    }
}

/// Set once, for good: what a thread sleeping between periodic jobs waits on, so that a stop
/// ends its sleep at once rather than after the next nap (a snapshot's exit waits for them all).
#[derive(Debug, Default)]
pub struct Latch {
    set: Mutex<bool>,
    cond: Condvar,
}

impl Latch {
    pub fn set(&self) {
        *self.set.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    pub fn is_set(&self) -> bool {
        *self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps up to `timeout`; true when the latch is set (at once if it already was).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.set.lock().unwrap_or_else(|p| p.into_inner());
        let (set, _) = self.cond.wait_timeout_while(guard, timeout, |set| !*set).unwrap_or_else(|p| p.into_inner());
        *set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_latch_set_from_another_thread_ends_a_long_wait_at_once_and_stays_set() {
        let latch = Arc::new(Latch::default());
        assert!(!latch.wait_timeout(Duration::from_millis(1)), "not set yet: the wait times out");
        let setter = {
            let latch = latch.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                latch.set();
            })
        };
        let started = Instant::now();
        assert!(latch.wait_timeout(Duration::from_secs(60)));
        // Far below the minute asked for: the set woke the wait (not a timing target).
        assert!(started.elapsed() < Duration::from_secs(30));
        setter.join().unwrap();
        assert!(latch.is_set());
        assert!(latch.wait_timeout(Duration::ZERO), "once set, every later wait returns at once");
    }
}
