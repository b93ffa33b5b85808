//! State shared by the pipeline stages: wake-ups between stages, the shutdown signal, the local
//! backlog counter and the set of files adopted from the Python original.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::durable::{self, FsError};
use crate::layout::{SealedName, TopicPartition, WorkDir};

/// A level-triggered wake-up for a stage that otherwise rescans on a timer.
#[derive(Debug, Default)]
pub struct Wake {
    pending: Mutex<bool>,
    cond: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    /// Waits until notified or `timeout` passed; consumes the notification.
    pub fn wait_timeout(&self, timeout: Duration) {
        let guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let (mut pending, _) =
            self.cond.wait_timeout_while(guard, timeout, |pending| !*pending).unwrap_or_else(|p| p.into_inner());
        *pending = false;
    }
}

/// Shutdown requested by a signal (or a fatal error), with the deadline for finishing work.
#[derive(Debug, Default)]
pub struct Shutdown {
    stopping: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    failed: AtomicBool,
}

impl Shutdown {
    pub fn request(&self, grace: Duration) {
        let mut deadline = self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        if deadline.is_none() {
            *deadline = Some(Instant::now() + grace);
        }
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// A fatal condition: stop now and exit non-zero.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.request(Duration::ZERO);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Bytes of sealed files waiting for compression or upload, in all and per partition (the
/// consumers pause the partitions holding the most, see [`crate::backpressure`]).
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

/// Files found in a working directory last run by the Python original. The original committed
/// offsets before uploading, so these are uploaded unconditionally (whoever owns the partition)
/// and never judged against the committed offset.
#[derive(Debug)]
pub struct Legacy {
    work: WorkDir,
    stems: Mutex<BTreeSet<String>>,
    /// Highest end offset among legacy files per partition: consumption resumes after it.
    ends: HashMap<TopicPartition, i64>,
}

impl Legacy {
    pub fn load(work: &WorkDir) -> Result<Self, FsError> {
        let path = work.legacy_list();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(FsError::new("read", &path, e)),
        };
        let stems: BTreeSet<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
        let mut ends = HashMap::new();
        for name in stems.iter().filter_map(|s| SealedName::parse(&format!("{s}.mak"))) {
            let end = ends.entry(name.tp).or_insert(name.end);
            *end = (*end).max(name.end);
        }
        Ok(Legacy { work: work.clone(), stems: Mutex::new(stems), ends })
    }

    /// Records the files of a working directory adopted from the original, durably.
    pub fn create(work: &WorkDir, names: &[SealedName]) -> Result<Self, FsError> {
        let stems: Vec<String> = names.iter().map(SealedName::stem).collect();
        durable::write_file_durable(&work.legacy_list(), lines(stems.iter().map(String::as_str)).as_bytes())?;
        Self::load(work)
    }

    pub fn contains(&self, name: &SealedName) -> bool {
        self.stems.lock().unwrap_or_else(|p| p.into_inner()).contains(&name.stem())
    }

    pub fn end_for(&self, tp: &TopicPartition) -> Option<i64> {
        self.ends.get(tp).copied()
    }

    /// Forgets an uploaded legacy file (durably, before its local copy is deleted).
    pub fn uploaded(&self, name: &SealedName) -> Result<(), FsError> {
        let mut stems = self.stems.lock().unwrap_or_else(|p| p.into_inner());
        if !stems.remove(&name.stem()) {
            return Ok(());
        }
        durable::write_file_durable(&self.work.legacy_list(), lines(stems.iter().map(String::as_str)).as_bytes())
    }
}

/// The legacy list's file format: one stem per line.
fn lines<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.fold(String::new(), |mut text, item| {
        text.push_str(item);
        text.push('\n');
        text
    })
}

/// Per-partition exclusion between the stages that move a partition's sealed files: adoption
/// (which judges and deletes them) and compression (which turns one into another). Without it an
/// adoption could see a file in both `tocompress/` and `tos3/` mid-compression.
#[derive(Debug, Default)]
pub struct PartitionLocks {
    busy: Mutex<std::collections::HashSet<TopicPartition>>,
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
