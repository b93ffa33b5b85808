//! The spool stage: one open MAK file per partition under `inprogress/`, appended in memory and
//! made durable at flush points, then sealed into `tocompress/` by age or on hand-over.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mak::{Header, MakWriter};

use crate::durable::{self, FsError};
use crate::layout::{today_yymmdd, SealedName, Stage, TopicPartition, WorkDir};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("partition {tp}: {source}")]
    Write {
        tp: TopicPartition,
        source: mak::WriteError,
    },
    #[error("partition {tp}: {source}")]
    Fs { tp: TopicPartition, source: FsError },
}

impl SpoolError {
    pub fn is_out_of_space(&self) -> bool {
        match self {
            SpoolError::Fs { source, .. } => source.is_out_of_space(),
            SpoolError::Write { source, .. } => write_error_is_out_of_space(source),
        }
    }
}

fn write_error_is_out_of_space(error: &mak::WriteError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error());
        }
        source = err.source();
    }
    false
}

/// The in-progress file of a partition and where the partition stands.
#[derive(Debug)]
pub struct PartitionSpool {
    pub tp: TopicPartition,
    path: PathBuf,
    open: Option<OpenFile>,
    /// Offset expected next: one past the last record written, or the resume position.
    next_offset: Option<i64>,
}

#[derive(Debug)]
struct OpenFile {
    writer: MakWriter,
}

/// What happened to a record handed to [`PartitionSpool::append`].
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    Written,
    /// Below the offset already held (a re-delivery after a seek): skipped, as the original did.
    AlreadyHeld,
}

impl PartitionSpool {
    /// A partition with no open file, resuming at `next_offset` (None: wherever Kafka starts us).
    pub fn new(work: &WorkDir, tp: TopicPartition, next_offset: Option<i64>) -> Self {
        let path = work.inprogress_file(&tp);
        PartitionSpool {
            tp,
            path,
            open: None,
            next_offset,
        }
    }

    /// Continues an existing in-progress file (torn tail already cut by the writer).
    pub fn resume(work: &WorkDir, tp: TopicPartition, writer: MakWriter) -> Self {
        let path = work.inprogress_file(&tp);
        let next_offset = writer.last_offset().map(|last| last + 1);
        PartitionSpool {
            tp,
            path,
            open: Some(OpenFile { writer }),
            next_offset,
        }
    }

    pub fn next_offset(&self) -> Option<i64> {
        self.next_offset
    }

    /// Start offset of the open file when it holds records.
    pub fn open_start(&self) -> Option<i64> {
        self.open
            .as_ref()
            .filter(|f| f.writer.record_count() > 0)
            .map(|f| f.writer.header().start_offset)
    }

    pub fn open_len(&self) -> u64 {
        self.open.as_ref().map_or(0, |f| f.writer.len())
    }

    /// Appends one record; the hot path: no syscall unless the writer's buffer is full.
    pub fn append(
        &mut self,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        now_secs: f64,
    ) -> Result<Appended, SpoolError> {
        if self.next_offset.is_some_and(|next| offset < next) {
            return Ok(Appended::AlreadyHeld);
        }
        if self.open.is_none() {
            let start = self.next_offset.unwrap_or(offset);
            let header = Header {
                topic: self.tp.topic.clone(),
                partition: self.tp.partition,
                start_offset: start,
                start_time: now_secs,
            };
            let dir = self.path.parent().expect("inprogress file has a directory");
            durable::create_dir_all_durable(dir).map_err(|source| SpoolError::Fs {
                tp: self.tp.clone(),
                source,
            })?;
            let writer = MakWriter::create(&self.path, &header).map_err(|source| SpoolError::Write {
                tp: self.tp.clone(),
                source,
            })?;
            self.open = Some(OpenFile { writer });
        }
        let open = self.open.as_mut().expect("opened above");
        open.writer
            .append(offset, key, value)
            .map_err(|source| SpoolError::Write {
                tp: self.tp.clone(),
                source,
            })?;
        self.next_offset = Some(offset + 1);
        Ok(Appended::Written)
    }

    /// A durability point: buffered records are written and synced, then the header updated.
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        match self.open.as_mut() {
            Some(open) if open.writer.is_dirty() => open.writer.sync().map_err(|source| SpoolError::Write {
                tp: self.tp.clone(),
                source,
            }),
            _ => Ok(()),
        }
    }

    /// True when the open file holds records and was started more than `max_age` ago. Age
    /// counts from the header's start time, so it survives a restart as the original's did.
    pub fn is_due(&self, max_age: Duration, now_secs: f64) -> bool {
        self.open.as_ref().is_some_and(|f| {
            f.writer.record_count() > 0 && now_secs - f.writer.header().start_time >= max_age.as_secs_f64()
        })
    }

    /// Seals the open file into `tocompress/`, returning its name and size, or None when there
    /// was nothing to seal.
    pub fn seal(&mut self, work: &WorkDir) -> Result<Option<(SealedName, u64)>, SpoolError> {
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        if open.writer.record_count() == 0 {
            self.open = Some(open);
            return Ok(None);
        }
        let tp = self.tp.clone();
        let start = open.writer.header().start_offset;
        let end = open
            .writer
            .last_offset()
            .expect("a file with records has a last offset");
        let size = open.writer.len();
        open.writer
            .close()
            .map_err(|source| SpoolError::Write { tp: tp.clone(), source })?;
        let name = SealedName {
            tp: tp.clone(),
            start,
            end,
            date: today_yymmdd(),
        };
        durable::rename_durable(&self.path, &work.sealed_path(Stage::ToCompress, &name))
            .map_err(|source| SpoolError::Fs { tp, source })?;
        Ok(Some((name, size)))
    }

    /// Gives up the open file without sealing it (a hand-over): it stays durable up to its last
    /// flush point and is resumed, or judged, by whoever adopts the partition next on this disk.
    pub fn close(mut self) -> Result<(), SpoolError> {
        match self.open.take() {
            Some(open) => open.writer.close().map_err(|source| SpoolError::Write {
                tp: self.tp.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Drops unsynced records after a write failure and reopens the file at its last durable
    /// point, so the records after it can be fetched again.
    pub fn reset_to_durable(&mut self) -> Result<(), SpoolError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        drop(open);
        if !Path::new(&self.path).exists() {
            return Ok(());
        }
        let (writer, recovered) = MakWriter::open_append(&self.path).map_err(|source| SpoolError::Write {
            tp: self.tp.clone(),
            source,
        })?;
        self.next_offset = recovered
            .last_offset
            .map(|l| l + 1)
            .or(Some(recovered.header.start_offset));
        self.open = Some(OpenFile { writer });
        Ok(())
    }
}

/// Wall-clock seconds since the epoch, the unit of a MAK header's start time.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs() as f64)
}

/// Seals an in-progress file found on disk (recovery, the rotate tool). Returns None when the
/// file holds no records (it is left in place).
pub fn seal_existing(work: &WorkDir, tp: &TopicPartition) -> Result<Option<(SealedName, u64)>, SpoolError> {
    let path = work.inprogress_file(tp);
    let (writer, _recovered) =
        MakWriter::open_append(&path).map_err(|source| SpoolError::Write { tp: tp.clone(), source })?;
    let mut spool = PartitionSpool::resume(work, tp.clone(), writer);
    spool.seal(work)
}
