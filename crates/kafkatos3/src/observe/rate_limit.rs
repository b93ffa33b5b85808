//! Repeated errors (an unreachable broker reports every few milliseconds) are logged once,
//! then at most once per interval with the number of repeats in between: the log says clearly
//! what is wrong without drowning everything else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LogRateLimit {
    interval: Duration,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl LogRateLimit {
    pub fn new(interval: Duration) -> Self {
        LogRateLimit { interval, seen: Mutex::new(HashMap::new()) }
    }

    /// `Some(repeats since the last report)` when this occurrence should be logged.
    pub fn admit(&self, key: &str) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match seen.get_mut(key) {
            Some((last, suppressed)) if now.duration_since(*last) < self.interval => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                let repeats = *suppressed;
                *last = now;
                *suppressed = 0;
                Some(repeats)
            }
            None => {
                seen.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_interval_are_counted_not_logged() {
        let limit = LogRateLimit::new(Duration::from_millis(50));
        assert_eq!(limit.admit("down"), Some(0));
        assert_eq!(limit.admit("down"), None);
        assert_eq!(limit.admit("down"), None);
        assert_eq!(limit.admit("other"), Some(0), "distinct errors are not suppressed");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limit.admit("down"), Some(2));
    }
}
