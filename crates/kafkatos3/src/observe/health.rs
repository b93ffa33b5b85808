//! What `/healthz` and `/readyz` answer: liveness is "every thread of the daemon still runs"
//! (a consumer, writer or compressor that died stops the daemon, but an orchestrator should
//! know before the logs are read); readiness is "connected to the brokers, and the archive takes
//! uploads" (the last upload attempt succeeded, or nothing waits for one).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
    /// Set once shutdown was requested: threads ending then is expected.
    stopping: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// Thread name -> why it is not running (None while it runs).
    threads: BTreeMap<String, Option<&'static str>>,
    /// Consumer id -> connected to at least one broker, per librdkafka's last statistics.
    consumers: BTreeMap<usize, bool>,
    /// The last upload attempt's error, None when it succeeded (or none was made).
    last_upload_error: Option<String>,
    failed: bool,
}

/// Marks its thread as ended when dropped (see [`Health::thread`]).
#[must_use = "the thread counts as running only while the guard lives"]
#[derive(Debug)]
pub struct ThreadGuard<'a> {
    health: &'a Health,
    name: String,
}

impl ThreadGuard<'_> {
    /// The thread's work is done (a snapshot's consumer past its partitions' ends): its ending is
    /// no failure.
    pub fn done(mut self) {
        self.health.lock().threads.remove(&self.name);
        self.name.clear();
    }
}

impl Drop for ThreadGuard<'_> {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let why = if std::thread::panicking() { "panicked" } else { "ended" };
        self.health.lock().threads.insert(std::mem::take(&mut self.name), Some(why));
    }
}

/// An answer of a health endpoint: healthy or not, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub body: String,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the thread `name` as running until the guard is dropped.
    pub fn thread(&self, name: impl Into<String>) -> ThreadGuard<'_> {
        let name = name.into();
        self.lock().threads.insert(name.clone(), None);
        ThreadGuard { health: self, name }
    }

    pub fn stopping(&self) {
        self.stopping.store(true, Relaxed);
    }

    /// A fatal error: the daemon is stopping because of it.
    pub fn failed(&self) {
        self.lock().failed = true;
    }

    pub fn broker_connection(&self, consumer: usize, connected: bool) {
        self.lock().consumers.insert(consumer, connected);
    }

    pub fn upload_attempted(&self, error: Option<String>) {
        self.lock().last_upload_error = error;
    }

    /// `/healthz`.
    pub fn liveness(&self) -> Verdict {
        let state = self.lock();
        if state.failed {
            return Verdict { ok: false, body: "stopping after a fatal error (see the log)\n".into() };
        }
        if self.stopping.load(Relaxed) {
            return Verdict { ok: true, body: "ok: shutting down\n".into() };
        }
        let gone: Vec<String> =
            state.threads.iter().filter_map(|(name, why)| why.map(|why| format!("thread {name} {why}"))).collect();
        if gone.is_empty() {
            Verdict { ok: true, body: format!("ok: {} threads running\n", state.threads.len()) }
        } else {
            Verdict { ok: false, body: format!("{}\n", gone.join("; ")) }
        }
    }

    /// `/readyz`; `uploads_waiting` is how many files wait in `tos3/`.
    pub fn readiness(&self, uploads_waiting: u64) -> Verdict {
        let liveness = self.liveness();
        if !liveness.ok {
            return liveness;
        }
        if self.stopping.load(Relaxed) {
            return Verdict { ok: false, body: "shutting down\n".into() };
        }
        let state = self.lock();
        let mut why = Vec::new();
        if state.consumers.is_empty() {
            why.push("no consumer has reported a broker connection yet".to_string());
        }
        for (id, connected) in &state.consumers {
            if !connected {
                why.push(format!("consumer {id} is connected to no broker"));
            }
        }
        if let (Some(error), true) = (&state.last_upload_error, uploads_waiting > 0) {
            why.push(format!("the last upload failed ({uploads_waiting} files waiting): {error}"));
        }
        if why.is_empty() {
            Verdict { ok: true, body: "ok\n".into() }
        } else {
            Verdict { ok: false, body: format!("{}\n", why.join("; ")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_ends_while_not_stopping_makes_the_daemon_unhealthy_and_names_it() {
        let health = Health::default();
        let consumer = health.thread("consumer-0");
        let writer = health.thread("writer-0");
        assert!(health.liveness().ok);
        drop(writer);
        let verdict = health.liveness();
        assert!(!verdict.ok);
        assert!(verdict.body.contains("writer-0 ended"), "{}", verdict.body);
        let done = health.thread("consumer-1");
        done.done();
        assert!(!health.liveness().body.contains("consumer-1"), "a thread whose work is done is no failure");
        health.stopping();
        drop(consumer);
        assert!(health.liveness().ok, "threads end when stopping");
    }

    #[test]
    fn readiness_needs_a_broker_connection_and_an_archive_that_takes_uploads() {
        let health = Health::default();
        assert!(!health.readiness(0).ok, "nothing reported yet");
        health.broker_connection(0, true);
        assert!(health.readiness(0).ok);
        health.upload_attempted(Some("s3://b/k: connection refused".into()));
        assert!(health.readiness(0).ok, "a failed upload with nothing waiting is over");
        let verdict = health.readiness(3);
        assert!(!verdict.ok && verdict.body.contains("connection refused"), "{}", verdict.body);
        health.upload_attempted(None);
        assert!(health.readiness(3).ok);
        health.broker_connection(0, false);
        assert!(health.readiness(0).body.contains("consumer 0 is connected to no broker"));
    }
}
