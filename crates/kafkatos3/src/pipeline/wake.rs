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
