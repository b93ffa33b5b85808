//! The spool stage: one open MAK file per partition under `inprogress/`, appended in memory and
//! made durable at flush points, then sealed into `tocompress/` by age or on hand-over.
//!
//! New files are written in the configured MAK version; a file found on disk is finished in the
//! version it was started in (`mak::AnyWriter` hides the difference).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mak::v2::RecordRef;
use mak::{AnyWriter, FileStart, Version};

use crate::local::durable::{self, FsError};
use crate::local::layout::WorkDir;
use crate::local::seal::{self, SealError};
use crate::names::{SealedName, TopicPartition};
use crate::observe::metrics::PartitionMetrics;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    #[error("partition {tp}: {source}")]
    Write { tp: TopicPartition, source: mak::WriteError },
    #[error("partition {tp}: {source}")]
    Fs { tp: TopicPartition, source: FsError },
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl SpoolError {
    /// The process (EMFILE) or the system (ENFILE) has no file descriptor left.
    pub fn is_too_many_open_files(&self) -> bool {
        durable::first_io_error(self).is_some_and(crate::local::open_files::is_too_many_open_files)
    }

    pub fn is_out_of_space(&self) -> bool {
        match self {
            SpoolError::Fs { source, .. } => source.is_out_of_space(),
            SpoolError::Write { source, .. } => durable::is_out_of_space(source),
            SpoolError::Seal(source) => source.is_out_of_space(),
        }
    }
}

/// The in-progress file of a partition and where the partition stands.
#[derive(Debug)]
pub struct PartitionSpool {
    pub tp: TopicPartition,
    work: WorkDir,
    path: PathBuf,
    writer: Option<AnyWriter>,
    /// The version new files are created in (`mak_format_version`); a resumed file keeps its own.
    version: Version,
    /// Offset expected next: one past the last record written, or the resume position.
    next_offset: Option<i64>,
    /// Set when a write failed and unsynced records were dropped: the consumer must fetch again
    /// from this offset.
    rewind: Option<i64>,
    /// The pending rewind follows a failed write (not a resync or a failed seek).
    rewind_after_failure: bool,
    /// File length at the last durability point.
    synced_len: u64,
    /// The size of the open file's append buffer, set from the memory budget.
    buffer_capacity: usize,
    /// A snapshot's end: records from this offset on are not taken.
    end: Option<i64>,
    /// How far every record is taken ([`PartitionSpool::read_to_log_end`]): the offsets between
    /// `next_offset` and this hold no record to take (transaction markers, aborted records).
    /// Forgotten when records are to be fetched again.
    read_through: Option<i64>,
    /// A file was sealed for its size since the partition last reached its log end: it is
    /// catching up a backlog, and its next log end seals whatever is open.
    pub catching_up: bool,
    /// The partition's figures (see [`crate::observe::metrics`]).
    pub metrics: Arc<PartitionMetrics>,
    /// Records and key/value bytes written since the last [`PartitionSpool::publish_consumed`]:
    /// plain fields on the hot path, published once per run of records.
    consumed: (u64, u64),
    /// The consumer's batch this partition was last written in: the least recently written
    /// files are closed first when the consumer holds too many open.
    pub used_at: u64,
}

/// Version 2's informational `writer` header field.
const WRITER: &str = concat!("kafkatos3 ", env!("CARGO_PKG_VERSION"));

/// Unsynced bytes that trigger a durability point on append.
const FLUSH_BYTES: u64 = 1024 * 1024;

/// What happened to a record handed to [`PartitionSpool::append`].
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    Written,
    /// Below the offset already held (a re-delivery after a seek): skipped, as the original did.
    AlreadyHeld,
    /// After a failed write, before the consumer has seeked back: dropped, fetched again.
    AwaitingRewind,
    /// At or past the snapshot's end ([`PartitionSpool::end_at`]): not taken.
    PastEnd,
}

impl PartitionSpool {
    /// A partition with no open file, resuming at `next_offset` (None: wherever Kafka starts us);
    /// its files are created in `version`.
    pub fn new(work: &WorkDir, tp: TopicPartition, next_offset: Option<i64>, version: Version) -> Self {
        let path = work.inprogress_file(&tp);
        let metrics = crate::observe::metrics::global().partitions.assigned(&tp);
        PartitionSpool {
            tp,
            work: work.clone(),
            path,
            writer: None,
            version,
            next_offset,
            rewind: None,
            rewind_after_failure: false,
            synced_len: 0,
            buffer_capacity: mak::DEFAULT_BUFFER_CAPACITY,
            end: None,
            read_through: None,
            catching_up: false,
            metrics,
            consumed: (0, 0),
            used_at: 0,
        }
    }

    /// Continues an existing in-progress file (torn tail already cut by the writer) in its own
    /// version; the files after it are created in `version`.
    /// Its descriptor is closed at once (the next record opens it again): adopting ten thousand
    /// partitions does not hold ten thousand files open.
    pub fn resume(work: &WorkDir, tp: TopicPartition, mut writer: AnyWriter, version: Version) -> Self {
        let path = work.inprogress_file(&tp);
        if let Err(error) = writer.close_file() {
            // The writer refuses further work now; the next append or seal reopens the file at
            // its durable point and the partition is fetched again from there.
            tracing::error!(topic = %tp.topic, partition = tp.partition, %error, "closing the resumed in-progress file failed");
        }
        let next_offset = writer.last_offset().map(|last| last + 1);
        let synced_len = writer.len();
        let metrics = crate::observe::metrics::global().partitions.assigned(&tp);
        // The file's creation time stands in for its first record's timestamp, not read again.
        let created_ms = writer.created_secs().map_or_else(crate::observe::metrics::now_ms, |s| (s * 1000.0) as i64);
        metrics.file_started(writer.start_offset(), created_ms);
        PartitionSpool {
            tp,
            work: work.clone(),
            path,
            writer: Some(writer),
            version,
            next_offset,
            rewind: None,
            rewind_after_failure: false,
            synced_len,
            buffer_capacity: mak::DEFAULT_BUFFER_CAPACITY,
            end: None,
            read_through: None,
            catching_up: false,
            metrics,
            consumed: (0, 0),
            used_at: 0,
        }
    }

    /// A snapshot: the partition takes no record at or after `end`.
    pub fn end_at(&mut self, end: i64) {
        self.end = Some(end);
    }

    /// True when a snapshot's partition holds every record before its end: written up to it, or
    /// read to a log end at or past it (the offsets left are transaction markers or aborted
    /// records). Not librdkafka's position: the take moves it for transaction markers fetched
    /// before a seek too (see [`crate::pipeline::consume::hold`]).
    pub fn reached_end(&self) -> bool {
        self.end.is_some_and(|end| self.read_offset().is_some_and(|read| read >= end))
    }

    /// Every record before `offset` is taken: librdkafka reported the partition's log end there
    /// (what it has fetched since the partition's last seek), or a record at `offset` past a
    /// snapshot's end came. Ignored while a rewind is pending (records before it are to be
    /// fetched again).
    pub fn read_to_log_end(&mut self, offset: i64) {
        if self.rewind.is_none() {
            self.read_through = self.read_through.max(Some(offset));
        }
    }

    /// Where the partition's next record is to be fetched from: a pending rewind's offset, else
    /// the offset after the last record written or the resume position (None: wherever
    /// Kafka started the partition, nothing taken yet).
    pub fn resume_offset(&self) -> Option<i64> {
        self.rewind.or(self.next_offset)
    }

    /// How far the partition is read: its next offset, or past the transaction markers after it
    /// ([`PartitionSpool::read_to_log_end`]).
    pub fn read_offset(&self) -> Option<i64> {
        self.next_offset.max(self.read_through)
    }

    pub fn next_offset(&self) -> Option<i64> {
        self.next_offset
    }

    /// True while records are held that no sealed file has: an open file with records, or a
    /// rewind pending (records to fetch again).
    pub fn holds_unsealed(&self) -> bool {
        self.open_start().is_some() || self.rewind.is_some()
    }

    /// Start offset of the open file when it holds records.
    pub fn open_start(&self) -> Option<i64> {
        self.writer.as_ref().filter(|w| w.record_count() > 0).map(AnyWriter::start_offset)
    }

    /// True while records are dropped until the consumer has seeked back (see
    /// [`PartitionSpool::take_rewind`]).
    pub fn awaits_rewind(&self) -> bool {
        self.rewind.is_some()
    }

    /// The offset to fetch again from after a failed write, once.
    pub fn take_rewind(&mut self) -> Option<i64> {
        self.rewind_after_failure = false;
        self.rewind.take()
    }

    /// True while the pending rewind follows a failed write (a full disk, a failing one).
    pub fn rewinds_a_failed_write(&self) -> bool {
        self.rewind.is_some() && self.rewind_after_failure
    }

    /// Drops every record until the consumer has seeked to `offset` (a resync, or a seek that
    /// failed and is tried again): taking a later one would leave a hole in the file.
    pub fn await_position(&mut self, offset: i64) {
        self.rewind = Some(offset);
        self.read_through = None;
    }

    /// Appends one record; the hot path: no syscall unless the writer's buffer is full, and no
    /// allocation (the record, headers included, is copied straight into the writer's buffer).
    pub fn append(&mut self, record: &RecordRef<'_>, now_secs: f64) -> Result<Appended, SpoolError> {
        let offset = record.offset;
        if self.next_offset.is_some_and(|next| offset < next) {
            return Ok(Appended::AlreadyHeld);
        }
        if self.end.is_some_and(|end| offset >= end) {
            // Records come in offset order since the last seek: every one before it was taken.
            self.read_to_log_end(offset);
            return Ok(Appended::PastEnd);
        }
        if self.rewind.is_some() {
            // Records after a failed write until the consumer has seeked back: taking one would
            // leave a hole in the file.
            return Ok(Appended::AwaitingRewind);
        }
        if self.writer.is_none() {
            // Known before the file exists, so a failure to create it still rewinds to this record.
            let start = *self.next_offset.get_or_insert(offset);
            let mut writer = self.open_file(start, now_secs).map_err(|error| self.fail(error))?;
            // Nothing is buffered yet, so this only sizes the buffer the first record allocates.
            writer
                .set_buffer_capacity(self.buffer_capacity)
                .map_err(|source| self.fail(SpoolError::Write { tp: self.tp.clone(), source }))?;
            self.synced_len = writer.len();
            self.writer = Some(writer);
            let first_ms = if record.timestamp >= 0 { record.timestamp } else { (now_secs * 1000.0) as i64 };
            self.metrics.file_started(start, first_ms);
        }
        let writer = self.writer.as_mut().expect("opened above");
        if let Err(source) = writer.append(record) {
            return Err(self.fail(SpoolError::Write { tp: self.tp.clone(), source }));
        }
        self.next_offset = Some(offset + 1);
        self.consumed.0 += 1;
        self.consumed.1 += (record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len)) as u64;
        // A durability point per FLUSH_BYTES as well as per flush interval: a busy partition
        // never has much that a crash or a full disk could make it fetch again.
        if writer.len() - self.synced_len >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(Appended::Written)
    }

    fn open_file(&self, start: i64, now_secs: f64) -> Result<AnyWriter, SpoolError> {
        let tp = &self.tp;
        let dir = self.path.parent().expect("inprogress file has a directory");
        durable::create_dir_all_durable(dir).map_err(|source| SpoolError::Fs { tp: tp.clone(), source })?;
        let start = FileStart {
            topic: &tp.topic,
            partition: tp.partition,
            start_offset: start,
            created_secs: now_secs as u64,
            writer: Some(WRITER),
        };
        AnyWriter::create(&self.path, self.version, &start)
            .map_err(|source| SpoolError::Write { tp: tp.clone(), source })
    }

    /// After a failed write (a full disk): the file is valid up to its last durable point, so
    /// it is reopened there, and the records after it are to be fetched again.
    fn fail(&mut self, error: SpoolError) -> SpoolError {
        let file_start = self.writer.take().map(|w| w.start_offset());
        self.fail_from(error, file_start)
    }

    /// [`PartitionSpool::fail`] for a file whose writer is already gone (a failed seal), which
    /// started at `file_start`: should the file be unreadable (or sealed but not moved), its
    /// records are fetched again from there.
    fn fail_from(&mut self, error: SpoolError, file_start: Option<i64>) -> SpoolError {
        if self.path.exists() {
            match AnyWriter::open_append(&self.path) {
                Ok((writer, recovered)) if recovered.last_offset.is_some() => {
                    self.next_offset = recovered.last_offset.map(|last| last + 1);
                    self.synced_len = writer.len();
                    self.writer = Some(writer);
                }
                Ok((writer, recovered)) => {
                    // Nothing durable in it: start the file again from its start offset.
                    drop(writer);
                    let _ = durable::remove_durable(&self.path);
                    self.next_offset = Some(recovered.start_offset);
                }
                Err(reopen)
                    if durable::first_io_error(&reopen)
                        .is_some_and(crate::local::open_files::is_too_many_open_files) =>
                {
                    // No descriptor to read it with: the file is fine, it stays where it is. The
                    // next record finds it there (a new file cannot be created over it) and this
                    // runs again, until descriptors are free.
                    tracing::error!(topic = %self.tp.topic, partition = self.tp.partition, error = %reopen, "no file descriptor left to reopen the in-progress file; it stays, retried");
                    self.next_offset = file_start.or(self.next_offset);
                }
                Err(reopen) => {
                    // Unreadable (e.g. its header was cut by the full disk): move it out of the
                    // way, where nothing deletes it, and fetch its records again.
                    tracing::error!(topic = %self.tp.topic, partition = self.tp.partition, error = %reopen, "in-progress file unreadable after a failed write; setting it aside");
                    if let Err(error) = self.work.set_aside(&self.tp, &self.path) {
                        tracing::error!(topic = %self.tp.topic, partition = self.tp.partition, %error, "setting the in-progress file aside");
                    }
                    self.next_offset = file_start.or(self.next_offset);
                }
            }
        }
        self.rewind = self.next_offset;
        self.rewind_after_failure = true;
        self.read_through = None;
        error
    }

    /// Adds the records written since the last call to the partition's metrics.
    pub fn publish_consumed(&mut self) {
        if self.consumed.0 > 0 {
            let (records, bytes) = std::mem::take(&mut self.consumed);
            self.metrics.consumed(records, bytes);
        }
    }

    /// A durability point: buffered records are written and synced, then the header updated.
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        let Some(writer) = self.writer.as_mut().filter(|w| w.is_dirty()) else {
            return Ok(());
        };
        if let Err(source) = writer.sync() {
            return Err(self.fail(SpoolError::Write { tp: self.tp.clone(), source }));
        }
        self.synced_len = writer.len();
        Ok(())
    }

    /// A durability point, then the append buffer is freed: an idle partition holds no buffer
    /// between flush intervals, a busy one allocates its buffer again once per interval. A file
    /// that took no record since the last call (its buffer was not allocated again) has its
    /// descriptor closed too: open files follow the busy partitions, not the assigned ones.
    pub fn flush_and_release(&mut self) -> Result<(), SpoolError> {
        let idle = self.buffer_bytes() == 0;
        self.flush()?;
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let released = if idle && writer.is_file_open() { writer.close_file() } else { writer.release_buffer() };
        if let Err(source) = released {
            return Err(self.fail(SpoolError::Write { tp: self.tp.clone(), source }));
        }
        Ok(())
    }

    /// A durability point, then the file's descriptor closed (see [`AnyWriter::close_file`]):
    /// how a consumer over its share of file descriptors makes room.
    pub fn close_file(&mut self) -> Result<(), SpoolError> {
        let Some(writer) = self.writer.as_mut().filter(|w| w.is_file_open() || w.is_dirty()) else {
            return Ok(());
        };
        if let Err(source) = writer.close_file() {
            return Err(self.fail(SpoolError::Write { tp: self.tp.clone(), source }));
        }
        self.synced_len = self.writer.as_ref().map_or(0, AnyWriter::len);
        Ok(())
    }

    /// Whether the partition holds a file descriptor, or will at its next flush: records taken
    /// since the last durability point are written out then, which opens a closed file again.
    /// What the consumer's share of the open-files limit counts.
    pub fn needs_descriptor(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| w.is_file_open() || w.is_dirty())
    }

    /// Sizes the open file's append buffer, and those of the files opened later (see
    /// [`crate::config::budget::MemoryBudget::write_buffer_per_partition`]). A larger buffer held now
    /// is written out and freed.
    pub fn set_buffer_capacity(&mut self, capacity: usize) -> Result<(), SpoolError> {
        self.buffer_capacity = capacity;
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        if let Err(source) = writer.set_buffer_capacity(capacity) {
            return Err(self.fail(SpoolError::Write { tp: self.tp.clone(), source }));
        }
        Ok(())
    }

    /// Bytes the open file's append buffer holds allocated.
    pub fn buffer_bytes(&self) -> usize {
        self.writer.as_ref().map_or(0, AnyWriter::buffer_bytes)
    }

    /// True when the open file holds records and was started more than `max_age` ago. Age
    /// counts from the header's start time, so it survives a restart as the original's did. A
    /// version 2 file without a creation time (not written by us) is due at once.
    pub fn is_due(&self, max_age: Duration, now_secs: f64) -> bool {
        self.writer.as_ref().is_some_and(|w| {
            w.record_count() > 0 && w.created_secs().is_none_or(|created| now_secs - created >= max_age.as_secs_f64())
        })
    }

    /// True when the open file has reached `max_bytes` or `max_records`.
    pub fn is_full(&self, max_bytes: u64, max_records: Option<u64>) -> bool {
        self.writer.as_ref().is_some_and(|w| {
            let records = w.record_count();
            records > 0 && (w.len() >= max_bytes || max_records.is_some_and(|max| records >= max))
        })
    }

    /// Seals the open file into `tocompress/`, returning its name and size, or None when there
    /// was nothing to seal.
    pub fn seal(&mut self) -> Result<Option<(SealedName, u64)>, SpoolError> {
        let Some(writer) = self.writer.take_if(|w| w.record_count() > 0) else {
            return Ok(None);
        };
        let file_start = writer.start_offset();
        let records = writer.record_count();
        match seal::seal_writer(&self.work, &self.tp, writer) {
            Ok(sealed) => {
                self.metrics.file_sealed(file_start, records);
                Ok(Some(sealed))
            }
            Err(error) => Err(self.fail_from(error.into(), Some(file_start))),
        }
    }

    /// Drops the open file and its records (they are fetched again from Kafka).
    pub fn discard(mut self) -> Result<(), FsError> {
        if let Some(writer) = self.writer.take() {
            self.metrics.files_dropped_from(writer.start_offset());
        }
        durable::remove_durable(&self.path).map(|_removed| ())
    }

    /// Gives up the open file without sealing it: it stays durable up to its last flush point
    /// and is resumed, or judged, by whoever adopts the partition next on this disk.
    pub fn close(mut self) -> Result<(), SpoolError> {
        match self.writer.take() {
            Some(writer) => writer.suspend().map_err(|source| SpoolError::Write { tp: self.tp.clone(), source }),
            None => Ok(()),
        }
    }
}

/// Wall-clock seconds since the epoch, the unit of a MAK header's start time.
pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs() as f64)
}

#[cfg(test)]
mod tests;
