//! What the pipeline stages share, each field owned as documented.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Config;
use crate::layout::WorkDir;
use crate::ledger::Ledger;
use crate::shared::{Backlog, Legacy, PartitionLocks, Shutdown, Wake};

#[derive(Debug)]
pub struct Pipeline {
    /// Validated configuration, read-only.
    pub config: Config,
    /// Paths of the working directory this daemon holds the lock of.
    pub work: WorkDir,
    /// Commit rule and upload confirmations; written by consumers (adopt, seal, release) and the
    /// uploader (confirmations).
    pub ledger: Ledger,
    /// Files adopted from the Python original, uploaded unconditionally.
    pub legacy: Legacy,
    /// Bytes waiting in tocompress/ and tos3/; consumers pause fetching above the limit.
    pub backlog: Backlog,
    /// Set by the spool when it seals a file.
    pub compress_wake: Wake,
    /// Set by compressors when a file is ready to upload.
    pub upload_wake: tokio::sync::Notify,
    /// Signal-driven shutdown with its deadline.
    pub shutdown: Shutdown,
    /// Adoption and compression of the same partition exclude each other.
    pub partition_locks: PartitionLocks,
    /// Set by the daemon once the consumers are gone (or the deadline passed): compressors and
    /// uploaders finish the file at hand and stop.
    stages_stop: AtomicBool,
}

impl Pipeline {
    pub fn new(config: Config, work: WorkDir, legacy: Legacy, backlog_bytes: u64) -> Self {
        let backlog = Backlog::default();
        backlog.add(backlog_bytes);
        Pipeline {
            config,
            ledger: Ledger::new(work.clone()),
            work,
            legacy,
            backlog,
            compress_wake: Wake::default(),
            upload_wake: tokio::sync::Notify::new(),
            shutdown: Shutdown::default(),
            partition_locks: PartitionLocks::default(),
            stages_stop: AtomicBool::new(false),
        }
    }

    pub fn stop_stages(&self) {
        self.stages_stop.store(true, Ordering::SeqCst);
        self.compress_wake.notify();
        // notify_one stores a permit, so an uploader busy scanning sees it on its next wait.
        self.upload_wake.notify_one();
    }

    pub fn stages_stopped(&self) -> bool {
        self.stages_stop.load(Ordering::SeqCst)
    }
}
