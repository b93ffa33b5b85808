//! The local backlog: bytes of sealed files in `tocompress/` and `tos3/`, counted in all and per
//! partition, so the consumers can pause the partitions furthest ahead of their archive.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use crate::local::durable::{self, FsError};
use crate::names::TopicPartition;

/// Bytes of sealed files waiting for compression or upload, in all and per partition (the
/// consumers pause the partitions holding the most, see [`crate::pipeline::consume::pauses`]).
///
/// Counts are signed, so the order of an add and a sub of the same file does not matter (a
/// compressor can finish a file before its seal has added it) and the total is always the sum.
#[derive(Debug, Default)]
pub struct Backlog {
    total: AtomicI64,
    partitions: Mutex<HashMap<TopicPartition, i64>>,
}

impl Backlog {
    pub fn add(&self, tp: &TopicPartition, bytes: u64) {
        self.change(tp, bytes as i64);
    }

    pub fn sub(&self, tp: &TopicPartition, bytes: u64) {
        self.change(tp, -(bytes as i64));
    }

    fn change(&self, tp: &TopicPartition, delta: i64) {
        self.total.fetch_add(delta, Ordering::Relaxed);
        let mut partitions = self.lock();
        let held = partitions.entry(tp.clone()).or_default();
        *held += delta;
        // Partitions with nothing waiting cost no entry.
        if *held == 0 {
            partitions.remove(tp);
        }
    }

    /// Deletes a sealed file of the partition durably and takes its bytes off the backlog. Only
    /// the remover that deleted it takes it off (the uploader and the leftovers sweep can race to
    /// remove the same released file).
    pub fn remove_file(&self, tp: &TopicPartition, path: &Path) -> Result<(), FsError> {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if durable::remove_durable(path)? {
            self.sub(tp, bytes);
        }
        Ok(())
    }

    /// A file of the partition changed size (compressed).
    pub fn resize(&self, tp: &TopicPartition, before: u64, after: u64) {
        self.sub(tp, before);
        self.add(tp, after);
    }

    pub fn bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed).max(0) as u64
    }

    /// Bytes waiting for each of `tps`, under one lock.
    pub fn of_each<'a>(&self, tps: impl Iterator<Item = &'a TopicPartition>) -> Vec<(TopicPartition, u64)> {
        let partitions = self.lock();
        tps.map(|tp| (tp.clone(), partitions.get(tp).copied().unwrap_or(0).max(0) as u64)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, i64>> {
        self.partitions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_sub_before_its_add_leaves_the_partition_and_the_total_agreeing() {
        let backlog = Backlog::default();
        let (a, b) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        let backlog_of = |tp: &TopicPartition| backlog.of_each(std::iter::once(tp))[0].1;
        // A compressor finished the file (1000 -> 400 bytes) before its seal added the 1000.
        backlog.resize(&a, 1000, 400);
        backlog.add(&a, 1000);
        backlog.add(&b, 50);
        assert_eq!((backlog_of(&a), backlog_of(&b), backlog.bytes()), (400, 50, 450));
        backlog.sub(&a, 400);
        assert_eq!((backlog_of(&a), backlog.bytes()), (0, 50));
        assert_eq!(backlog.lock().len(), 1, "a partition with nothing waiting has no entry");
    }
}
