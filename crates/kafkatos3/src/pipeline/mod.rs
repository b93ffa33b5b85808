//! What the pipeline stages share, each field owned as documented.

pub mod compress;
pub mod consume;
pub mod leftovers;
pub mod nice;
pub mod resync;
pub mod spool;
pub mod stop;
pub mod upload;
pub mod wake;

use std::sync::atomic::{AtomicBool, Ordering};

use std::future::Future;
use std::sync::Arc;

use object_store::ObjectStore;

use crate::archive::Location;
use crate::config::Config;
use crate::local::backlog::Backlog;
use crate::local::layout::WorkDir;
use crate::local::ledger::Ledger;
use crate::local::legacy::Legacy;
use crate::local::locks::PartitionLocks;
use crate::names::TopicPartition;
use crate::pipeline::resync::Resyncs;
use crate::pipeline::stop::Shutdown;
use crate::pipeline::wake::Wake;

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
    /// The archive: read by the consumers (frontier on assignment), written by the uploader.
    pub s3: S3Access,
    /// Partitions whose local files must be dropped from an offset on (a lost upload race or a
    /// full disk); applied by the consumer that owns the partition.
    pub resyncs: Resyncs,
    /// Set by the daemon once the consumers are gone (or the deadline passed): compressors and
    /// uploaders finish the file at hand and stop.
    stages_stop: AtomicBool,
}

impl Pipeline {
    pub fn new(config: Config, work: WorkDir, legacy: Legacy, backlog: Backlog, s3: S3Access) -> Self {
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
            s3,
            resyncs: Resyncs::default(),
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

    /// Deletes a sealed file durably and takes its bytes off the local backlog.
    pub fn remove_sealed(
        &self,
        tp: &TopicPartition,
        path: &std::path::Path,
    ) -> Result<(), crate::local::durable::FsError> {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        // Only the remover that deleted it takes it off (the uploader and the leftovers stage
        // can race to remove the same released file).
        if crate::local::durable::remove_durable(path)? {
            self.backlog.sub(tp, bytes);
        }
        Ok(())
    }
}

/// The S3 client and the runtime its requests run on, for the stages that are plain threads.
#[derive(Debug)]
pub struct S3Access {
    pub store: Arc<dyn ObjectStore>,
    pub at: Location,
    runtime: tokio::runtime::Handle,
}

impl S3Access {
    pub fn new(store: Arc<dyn ObjectStore>, at: Location, runtime: tokio::runtime::Handle) -> Self {
        S3Access { store, at, runtime }
    }

    /// Runs S3 requests from a thread outside the runtime (a consumer), giving up after `limit`.
    pub fn block_on<F: Future>(&self, limit: std::time::Duration, requests: F) -> Option<F::Output> {
        self.runtime.block_on(async { tokio::time::timeout(limit, requests).await.ok() })
    }
}
