//! Shared fixtures for the end-to-end tests: the real `kafkatos3` binary against the real
//! broker and S3 server that `scripts/test.sh` starts (their addresses come from
//! `KAFKATOS3_TEST_*` environment variables). By what they reach: [`kafka`] (topics, records,
//! offsets), [`archive`] (the archive in S3, read as every reader reads it), [`daemon`] (configs
//! and processes of the daemon), [`records`] (records with every field), [`s3`] (a private S3 server a test may stop),
//! [`stores`] (the scenario every store outside S3 is tested with).
#![allow(dead_code)]

mod archive;
mod daemon;
mod kafka;
mod records;
mod s3;
pub mod secure;
mod stores;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use archive::*;
#[allow(unused_imports)]
pub use daemon::*;
#[allow(unused_imports)]
pub use kafka::*;
#[allow(unused_imports)]
pub use records::*;
#[allow(unused_imports)]
pub use s3::*;
#[allow(unused_imports)]
pub use stores::*;

#[derive(Clone, Debug)]
pub struct TestEnv {
    pub bootstrap: String,
    pub s3_endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    /// librdkafka properties every client of the broker needs besides `bootstrap.servers`:
    /// a secured broker's `security.protocol`, `ssl.*` and `sasl.*` (see [`secure`]).
    pub kafka: Vec<(String, String)>,
}

impl TestEnv {
    /// A librdkafka client configuration for the broker: bootstrap and [`TestEnv::kafka`].
    pub fn client(&self) -> rdkafka::ClientConfig {
        let mut client = rdkafka::ClientConfig::new();
        client.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in &self.kafka {
            client.set(key, value);
        }
        client
    }
}

pub fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts the broker and S3 server")
    })
}

pub fn env() -> TestEnv {
    TestEnv {
        bootstrap: required("KAFKATOS3_TEST_BOOTSTRAP"),
        s3_endpoint: required("KAFKATOS3_TEST_S3_ENDPOINT"),
        access_key: required("KAFKATOS3_TEST_S3_ACCESS_KEY"),
        secret_key: required("KAFKATOS3_TEST_S3_SECRET_KEY"),
        bucket: required("KAFKATOS3_TEST_S3_BUCKET"),
        kafka: Vec::new(),
    }
}

/// A GET over a fresh connection to 127.0.0.1:`port`: (status code, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())?;
    Some((status, body))
}

/// A name no other test (or earlier run) uses: the test broker keeps groups and topics.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// Files below a directory, recursively.
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Polls `condition` every `interval` until it holds (true) or `timeout` has passed (false).
pub async fn wait_until(timeout: Duration, interval: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(interval).await;
    }
}

/// Waits until a file is below a directory (a stage's files arrive as the stage before finishes).
pub async fn wait_for_files(dir: &Path, timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(100), || !walk_files(dir).is_empty()).await
}

/// Waits for a line in the daemon's log.
pub async fn wait_for_log(log: &Path, needle: &str, timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(200), || {
        std::fs::read_to_string(log).unwrap_or_default().contains(needle)
    })
    .await
}
