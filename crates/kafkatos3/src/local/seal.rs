//! Sealing an in-progress file: its writer seals it in its own version (versions 2 and 3 write their
//! footer), then it is renamed into `tocompress/` under the name its offsets give it. The spool
//! seals its open files this way; recovery, adoption, the leftovers sweep and `kafkatos3_rotate`
//! seal the files they find on disk.

use std::path::PathBuf;

use mak::AnyWriter;

use crate::local::durable::{self, FsError};
use crate::local::layout::WorkDir;
use crate::names::{today_yymmdd, SealedName, TopicPartition};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("partition {tp}: {source}")]
    Write { tp: TopicPartition, source: mak::WriteError },
    #[error("partition {tp}: {source}")]
    Fs { tp: TopicPartition, source: FsError },
    #[error("partition {tp}: {}: {source}", path.display())]
    Read { tp: TopicPartition, path: PathBuf, source: mak::ReadError },
}

impl SealError {
    /// Disk full or quota exceeded.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            SealError::Fs { source, .. } => source.is_out_of_space(),
            SealError::Write { source, .. } => durable::is_out_of_space(source),
            SealError::Read { .. } => false,
        }
    }
}

/// Seals the partition's in-progress file, open in `writer` and holding records, and moves it
/// into `tocompress/`. Returns its name and size.
pub fn seal_writer(work: &WorkDir, tp: &TopicPartition, writer: AnyWriter) -> Result<(SealedName, u64), SealError> {
    let start = writer.start_offset();
    let end = writer.last_offset().expect("a file with records has a last offset");
    let size = writer.seal().map_err(|source| SealError::Write { tp: tp.clone(), source })?;
    let name = SealedName { tp: tp.clone(), start, end, date: today_yymmdd() };
    let sealed = work.tocompress_path(&name);
    if let Err(source) = durable::rename_durable(&work.inprogress_file(tp), &sealed) {
        if !sealed.exists() {
            return Err(SealError::Fs { tp: tp.clone(), source });
        }
        // The rename happened, only a directory sync failed: the file is sealed (the next
        // directory sync makes it durable); reporting a failure would lose track of it.
        tracing::warn!(topic = %tp.topic, partition = tp.partition, error = %source, "sealed, but syncing the directory failed");
    }
    Ok((name, size))
}

/// Seals an in-progress file found on disk in its own version. Returns None when the file holds
/// no records (it is left in place). A version 2 or 3 file already sealed (a crash between sealing it
/// and moving it on) is only moved on.
pub fn seal_existing(work: &WorkDir, tp: &TopicPartition) -> Result<Option<(SealedName, u64)>, SealError> {
    let path = work.inprogress_file(tp);
    let writer = match AnyWriter::open_append(&path) {
        Ok((writer, _recovered)) => writer,
        Err(mak::WriteError::Sealed { .. }) => return finish_seal(work, tp),
        Err(source) => return Err(SealError::Write { tp: tp.clone(), source }),
    };
    if writer.record_count() == 0 {
        return Ok(None);
    }
    seal_writer(work, tp, writer).map(Some)
}

/// Moves a sealed version 2 or 3 in-progress file on into `tocompress/`, named by the offsets its
/// footer states (read in full, so the footer is checked against the records).
fn finish_seal(work: &WorkDir, tp: &TopicPartition) -> Result<Option<(SealedName, u64)>, SealError> {
    let path = work.inprogress_file(tp);
    let read_error = |source| SealError::Read { tp: tp.clone(), path: path.clone(), source };
    let io_error = |source| read_error(mak::ReadError::Io { position: 0, source });
    let file = std::fs::File::open(&path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    let mut reader = mak::AnyReader::with_size_limit(file, size).map_err(read_error)?;
    while reader.next_record().map_err(read_error)?.is_some() {}
    let start = reader.start_offset();
    let Some((_, end)) = reader.sealed_counts().filter(|(records, _)| *records > 0) else {
        return Ok(None);
    };
    let name = SealedName { tp: tp.clone(), start, end, date: today_yymmdd() };
    durable::rename_durable(&path, &work.tocompress_path(&name))
        .map_err(|source| SealError::Fs { tp: tp.clone(), source })?;
    tracing::info!(topic = %name.tp.topic, partition = name.tp.partition, file = %name.stem(), "moved on an in-progress file sealed before a crash");
    Ok(Some((name, size)))
}
