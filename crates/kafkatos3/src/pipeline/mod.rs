//! The pipeline: the stages a record goes through, in data-flow order, each receiving from
//! [`crate::daemon`] only what it uses (its handle struct says what that is).
//!
//! - [`consume`]: librdkafka consumers in the group; settle partitions on assignment (resume
//!   point, adoption of local files) and revocation (hand-over), pause the partitions furthest
//!   ahead, commit what the ledger allows. Writes into the [`spool`].
//! - [`spool`]: per-partition open MAK files in `inprogress/`, sealed into `tocompress/`.
//! - [`compress`]: `tocompress/` -> `tos3/`, with the codec and encryption configured.
//! - [`upload`]: `tos3/` -> the archive (the claim is the fence), confirmations to the ledger.
//! - [`leftovers`]: local files of partitions owned elsewhere, resolved after a timeout.
//! - [`groups`] (beside the data flow): snapshots of chosen consumer groups' committed offsets.
//!
//! Between stages: the directories are the queues, a [`wake`] makes the next stage rescan at
//! once, [`resync`] requests go back from the later stages to the consumers, [`stop`] ends them.

pub mod compress;
pub mod consume;
pub mod groups;
pub mod leftovers;
pub mod nice;
pub mod resync;
pub mod spool;
pub mod stop;
#[cfg(test)]
pub(crate) mod testing;
pub mod upload;
pub mod wake;

use std::future::Future;
use std::time::Duration;

use crate::archive::Archive;

/// The archive as the stages that are plain threads reach it: its requests run on the uploader's
/// runtime.
#[derive(Debug, Clone)]
pub struct ArchiveAccess {
    pub archive: Archive,
    runtime: tokio::runtime::Handle,
}

impl ArchiveAccess {
    pub fn new(archive: Archive, runtime: tokio::runtime::Handle) -> Self {
        ArchiveAccess { archive, runtime }
    }

    /// Runs archive requests from a thread outside the runtime (a consumer), giving up after
    /// `limit` (None).
    pub fn block_on<F: Future>(&self, limit: Duration, requests: F) -> Option<F::Output> {
        self.runtime.block_on(async { tokio::time::timeout(limit, requests).await.ok() })
    }
}
