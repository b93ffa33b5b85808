//! What one consumer owns: the spools of its assigned partitions, and what it last committed.

use std::collections::HashMap;

use rdkafka::TopicPartitionList;

use crate::names::TopicPartition;
use crate::pipeline::spool::PartitionSpool;

/// What one consumer owns: the spools of its assigned partitions and what it last committed.
#[derive(Debug, Default)]
pub struct ConsumerState {
    /// By topic then partition, so a message is routed without allocating a key.
    pub topics: HashMap<String, HashMap<i32, PartitionSpool>>,
    pub committed: HashMap<TopicPartition, i64>,
}

impl ConsumerState {
    pub fn spools_mut(&mut self) -> impl Iterator<Item = &mut PartitionSpool> {
        self.topics.values_mut().flat_map(|p| p.values_mut())
    }

    pub fn spools(&self) -> impl Iterator<Item = &PartitionSpool> {
        self.topics.values().flat_map(|p| p.values())
    }

    /// Sizes every open file's append buffer for the number of partitions held now, so that
    /// all of them busy at once stay within the budget's write share.
    pub fn size_write_buffers(&mut self, budget: &crate::config::budget::MemoryBudget) {
        let capacity = budget.write_buffer_per_partition(self.spools().count());
        for spool in self.spools_mut() {
            // A failure rewinds the partition, as a failed append does; the loop applies it.
            if let Err(error) = spool.set_buffer_capacity(capacity) {
                tracing::error!(%error, "resizing the append buffer failed");
            }
        }
    }

    pub fn assigned(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for spool in self.spools() {
            tpl.add_partition(&spool.tp.topic, spool.tp.partition);
        }
        tpl
    }

    pub fn remove(&mut self, tp: &TopicPartition) -> Option<PartitionSpool> {
        let partitions = self.topics.get_mut(&tp.topic)?;
        let spool = partitions.remove(&tp.partition);
        if partitions.is_empty() {
            self.topics.remove(&tp.topic);
        }
        spool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_busy_partitions_hold_no_more_than_the_write_share_and_none_once_idle() {
        use crate::config::budget::{MemoryBudget, Workers};
        use crate::local::layout::WorkDir;
        use mak::v2::{RecordRef, TimestampType, NO_HEADERS};

        let gzip = mak::codec::Compression::new(mak::codec::Codec::Gzip, None).unwrap();
        let workers = Workers { consumers: 1, compressors: 1, uploaders: 1, compression: &gzip, encrypted: false };
        // 6.4 MiB of write share for 1000 partitions: 6.5 KiB each, not 1 MiB.
        let budget = MemoryBudget::split(64 << 20, &workers).unwrap();
        for version in [mak::Version::V2, mak::Version::V3] {
            let dir = tempfile::tempdir().unwrap();
            let work = WorkDir::new(dir.path());
            let mut state = ConsumerState::default();
            for partition in 0..1000 {
                let spool = PartitionSpool::new(&work, TopicPartition::new("t", partition), Some(0), version);
                state.topics.entry("t".to_string()).or_default().insert(partition, spool);
            }
            state.size_write_buffers(&budget);
            // 1000 small records each, 14 KB of v3 block: blocks fill and are written, as when busy.
            for offset in 0..1000 {
                let record = RecordRef {
                    offset,
                    timestamp: 1_700_000_000_000 + offset,
                    timestamp_type: TimestampType::CreateTime,
                    key: None,
                    value: Some(b"0123456789"),
                    headers: NO_HEADERS,
                };
                for spool in state.spools_mut() {
                    spool.append(&record, 1.0).unwrap();
                }
            }
            let held: u64 = state.spools().map(|s| s.buffer_bytes() as u64).sum();
            let share = budget.write_buffers;
            assert!(held > 0 && held <= share, "{version:?}: {held} bytes held, share {share}");
            for spool in state.spools_mut() {
                spool.flush_and_release().unwrap();
            }
            let idle: usize = state.spools().map(|s| s.buffer_bytes()).sum();
            assert_eq!(idle, 0, "{version:?}: idle partitions hold no buffer");
        }
    }
}
