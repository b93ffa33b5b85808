//! What one consumer owns: the spools of its assigned partitions, and what it last committed.

use std::collections::{HashMap, HashSet};

use rdkafka::TopicPartitionList;

use crate::names::TopicPartition;
use crate::pipeline::spool::PartitionSpool;

/// What one consumer owns: the spools of its assigned partitions and what it last committed.
#[derive(Debug)]
pub struct ConsumerState {
    /// By topic then partition, so a message is routed without allocating a key.
    pub topics: HashMap<String, HashMap<i32, PartitionSpool>>,
    pub committed: HashMap<TopicPartition, i64>,
    /// Partitions this consumer has paused (see [`crate::pipeline::consume::hold`]).
    pub paused: HashSet<TopicPartition>,
    /// How many partition files this consumer may hold open at once (its share of the
    /// process's open-files limit).
    open_file_share: usize,
    /// Files held open: exact after [`ConsumerState::recount_open_files`], counted up as files
    /// are opened, never down (closes happen in many places), so it only ever overstates.
    open_files: usize,
    /// Batches written: when a partition was last written to, for closing the least recent.
    batches: u64,
}

impl Default for ConsumerState {
    fn default() -> Self {
        ConsumerState::with_open_file_share(usize::MAX)
    }
}

impl ConsumerState {
    pub fn with_open_file_share(open_file_share: usize) -> Self {
        ConsumerState {
            topics: HashMap::new(),
            committed: HashMap::new(),
            paused: HashSet::new(),
            open_file_share,
            open_files: 0,
            batches: 0,
        }
    }

    /// A new batch is being written; the stamp [`ConsumerState::opening`] marks spools with.
    pub fn next_batch(&mut self) -> u64 {
        self.batches += 1;
        self.batches
    }

    /// Called before a record goes to a partition whose file is not open (it opens, or creates,
    /// one): past the consumer's share, the files used least recently are made durable and
    /// closed until half the share is open, so closing is paid once per half a share of opens.
    pub fn opening(&mut self) {
        self.open_files += 1;
        if self.open_files <= self.open_file_share {
            return;
        }
        let keep = self.open_file_share / 2;
        let mut open: Vec<&mut PartitionSpool> = self.spools_mut().filter(|s| s.needs_descriptor()).collect();
        if open.len() > keep {
            open.sort_unstable_by_key(|s| s.used_at);
            let surplus = open.len() - keep;
            for spool in open.iter_mut().take(surplus) {
                // A failure rewinds the partition, as a failed append does; the loop applies it.
                if let Err(error) = spool.close_file() {
                    tracing::error!(%error, "closing a file to stay within the open-files limit failed");
                }
            }
        }
        self.recount_open_files();
        // The file about to be opened.
        self.open_files += 1;
    }

    /// Counts the files held open again (at each flush tick, which closes the idle ones).
    pub fn recount_open_files(&mut self) {
        self.open_files = self.spools().filter(|s| s.needs_descriptor()).count();
    }

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

    pub fn spool(&self, tp: &TopicPartition) -> Option<&PartitionSpool> {
        self.topics.get(&tp.topic)?.get(&tp.partition)
    }

    pub fn spool_mut(&mut self, tp: &TopicPartition) -> Option<&mut PartitionSpool> {
        self.topics.get_mut(&tp.topic)?.get_mut(&tp.partition)
    }

    pub fn remove(&mut self, tp: &TopicPartition) -> Option<PartitionSpool> {
        self.paused.remove(tp);
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

    #[test]
    fn a_consumer_past_its_open_file_share_closes_the_least_recently_written_files_and_keeps_every_record() {
        use crate::local::layout::WorkDir;
        use mak::v2::{RecordRef, TimestampType, NO_HEADERS};

        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let share = 16;
        let mut state = ConsumerState::with_open_file_share(share);
        for partition in 0..100 {
            let spool = PartitionSpool::new(&work, TopicPartition::new("t", partition), Some(0), mak::Version::V3);
            state.topics.entry("t".to_string()).or_default().insert(partition, spool);
        }
        // Three rounds over 100 partitions, one record each, as the writer thread routes them.
        for offset in 0..3 {
            for partition in 0..100 {
                let stamp = state.next_batch();
                let spool = state.topics["t"].get(&partition).unwrap();
                if !spool.needs_descriptor() {
                    state.opening();
                }
                let spool = state.topics.get_mut("t").unwrap().get_mut(&partition).unwrap();
                spool.used_at = stamp;
                let value = format!("{partition}/{offset}");
                let record = RecordRef {
                    offset,
                    timestamp: 1_700_000_000_000,
                    timestamp_type: TimestampType::CreateTime,
                    key: None,
                    value: Some(value.as_bytes()),
                    headers: NO_HEADERS,
                };
                spool.append(&record, 1.0).unwrap();
                let open = state.spools().filter(|s| s.needs_descriptor()).count();
                assert!(open <= share, "{open} files open or to be opened, share {share}");
            }
            // The flush interval writes out what the appends buffered: it reopens only files
            // counted in the share, and closes the idle ones.
            for spool in state.spools_mut() {
                spool.flush_and_release().unwrap();
            }
            state.recount_open_files();
            let open = state.spools().filter(|s| s.needs_descriptor()).count();
            assert!(open <= share, "after the flush: {open} files open, share {share}");
        }
        let open: Vec<i32> = state.spools().filter(|s| s.needs_descriptor()).map(|s| s.tp.partition).collect();
        assert!(open.contains(&99) && open.contains(&98), "the most recently written stay open: {open:?}");
        assert!(!open.contains(&0), "the least recently written were closed: {open:?}");
        for spool in state.spools_mut() {
            spool.seal().unwrap().expect("records to seal");
        }
        for partition in 0..100 {
            let sealed = work.list_sealed_for(&TopicPartition::new("t", partition)).unwrap();
            let mut reader = mak::AnyReader::new(std::fs::File::open(&sealed[0].path).unwrap()).unwrap();
            let mut values = Vec::new();
            while let Some(record) = reader.next_record().unwrap() {
                values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
            }
            let expected: Vec<String> = (0..3).map(|offset| format!("{partition}/{offset}")).collect();
            assert_eq!(values, expected, "partition {partition}");
        }
    }
}
