//! Resyncs: a stage that finds a partition's local data must go (a lost upload race, a full disk)
//! asks the partition's consumer to drop it and read it again from Kafka.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::names::TopicPartition;

/// Drop a partition's local files that start at `drop_from` or later (and its open file), and
/// resume at `resume_at`, or where S3's chain continues from `drop_from` when None.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resync {
    pub drop_from: i64,
    pub resume_at: Option<i64>,
}

/// Resyncs requested by the uploader or the compressors, waiting for the owning consumer.
#[derive(Debug, Default)]
pub struct Resyncs(Mutex<HashMap<TopicPartition, Resync>>);

impl Resyncs {
    /// Requests a resync; of two requests for a partition the one that drops more wins.
    pub fn request(&self, tp: &TopicPartition, resync: Resync) {
        let mut pending = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pending.entry(tp.clone()).or_insert(resync);
        if resync.drop_from < entry.drop_from {
            *entry = resync;
        }
    }

    /// Takes the requests for the partitions `owns` accepts.
    pub fn take(&self, owns: impl Fn(&TopicPartition) -> bool) -> Vec<(TopicPartition, Resync)> {
        let mut pending = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() {
            return Vec::new();
        }
        let mine: Vec<TopicPartition> = pending.keys().filter(|tp| owns(tp)).cloned().collect();
        mine.into_iter().filter_map(|tp| pending.remove(&tp).map(|r| (tp, r))).collect()
    }
}
