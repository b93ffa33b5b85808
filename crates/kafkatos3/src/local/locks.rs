//! Per-partition locks between the stages that move a partition's sealed files.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex};

use crate::names::TopicPartition;

/// Per-partition exclusion between the stages that move a partition's sealed files: adoption
/// (which judges and deletes them) and compression (which turns one into another). Without it an
/// adoption could see a file in both `tocompress/` and `tos3/` mid-compression.
#[derive(Debug, Default)]
pub struct PartitionLocks {
    busy: Mutex<HashSet<TopicPartition>>,
    freed: Condvar,
}

/// Held while a partition's files are being moved; released on drop.
#[derive(Debug)]
pub struct PartitionGuard<'a> {
    locks: &'a PartitionLocks,
    tp: TopicPartition,
}

impl PartitionLocks {
    /// The lock if nobody holds it: compressors skip a busy partition and come back later.
    pub fn try_lock(&self, tp: &TopicPartition) -> Option<PartitionGuard<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.insert(tp.clone()).then(|| PartitionGuard { locks: self, tp: tp.clone() })
    }

    /// Waits for the lock: adoption waits for the compression at hand (seconds at most).
    pub fn lock(&self, tp: &TopicPartition) -> PartitionGuard<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        while busy.contains(tp) {
            busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        busy.insert(tp.clone());
        PartitionGuard { locks: self, tp: tp.clone() }
    }
}

impl Drop for PartitionGuard<'_> {
    fn drop(&mut self) {
        self.locks.busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.tp);
        self.locks.freed.notify_all();
    }
}
