//! Writing a file of any version through one API, so a caller (the daemon's spool) does not
//! branch on versions: a new file is created in the version asked for, an existing one is
//! resumed in the version it was written in (told by its first bytes).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::any::{Version, DETECT_LEN};
use crate::error::{IoAction, WriteError};
use crate::header::Header;
use crate::v2::frame::FOOTER_BYTES;
use crate::v2::{self, RecordRef};
use crate::v3;
use crate::writer::MakWriter as WriterV1;

/// What a new file's header says, in either version.
#[derive(Debug, Clone, Copy)]
pub struct FileStart<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// First offset the file is created for.
    pub start_offset: i64,
    /// Creation time, whole seconds since the epoch: version 1's `start_time` (the original
    /// wrote `time.mktime` floats), versions 2's and 3's `created_ms` in milliseconds.
    pub created_secs: u64,
    /// Versions 2's and 3's informational `writer` (name and version of the program); version 1
    /// has none.
    pub writer: Option<&'a str>,
}

/// What [`AnyWriter::open_append`] found in an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnyRecovered {
    pub version: Version,
    /// The header's start offset.
    pub start_offset: i64,
    /// Records before the write position.
    pub record_count: u64,
    /// Offset of the last record, `None` when there is none.
    pub last_offset: Option<i64>,
    /// Bytes past the write position (a torn tail) that were cut off.
    pub truncated_bytes: u64,
}

/// An open in-progress file of either version, with the protocol both writers share: appends
/// are buffered, [`AnyWriter::sync`] is a durability point, [`AnyWriter::seal`] ends the file
/// for good and [`AnyWriter::suspend`] leaves it resumable.
#[derive(Debug)]
// One per open file, used on every record: a box would add a pointer chase per record to save
// a few hundred bytes per file.
#[allow(clippy::large_enum_variant)]
pub enum AnyWriter {
    V1(WriterV1),
    V2(v2::MakWriter),
    V3(v3::MakWriter),
}

impl AnyWriter {
    /// Creates a new file of `version` (never overwrites one) with a durable header.
    pub fn create(path: &Path, version: Version, start: &FileStart<'_>) -> Result<AnyWriter, WriteError> {
        match version {
            Version::V1 => {
                let header = Header {
                    topic: start.topic.to_owned(),
                    partition: start.partition,
                    start_offset: start.start_offset,
                    start_time: start.created_secs as f64,
                };
                WriterV1::create(path, &header).map(AnyWriter::V1)
            }
            Version::V2 | Version::V3 => {
                let header = v2::Header {
                    topic: start.topic.to_owned(),
                    partition: start.partition,
                    start_offset: start.start_offset,
                    created_ms: i64::try_from(start.created_secs.saturating_mul(1000)).ok(),
                    writer: start.writer.map(str::to_owned),
                };
                if version == Version::V3 {
                    return v3::MakWriter::create(path, &header).map(AnyWriter::V3);
                }
                v2::MakWriter::create(path, &header).map(AnyWriter::V2)
            }
        }
    }

    /// Resumes an existing unsealed file in its own version, told by its first bytes (see each
    /// writer's `open_append`). A file that is no version's is reported by the version 1 writer
    /// (bad magic, or a header cut short); a sealed version 2 or 3 file is
    /// [`WriteError::Sealed`].
    pub fn open_append(path: &Path) -> Result<(AnyWriter, AnyRecovered), WriteError> {
        let recovered = |version, header_start: i64, count, last, truncated| AnyRecovered {
            version,
            start_offset: header_start,
            record_count: count,
            last_offset: last,
            truncated_bytes: truncated,
        };
        match detect_version(path)? {
            Some(Version::V3) => {
                let (writer, found) = v3::MakWriter::open_append(path)?;
                let start = found.header.start_offset;
                let found = recovered(Version::V3, start, found.record_count, found.last_offset, found.truncated_bytes);
                Ok((AnyWriter::V3(writer), found))
            }
            Some(Version::V2) => {
                let (writer, found) = v2::MakWriter::open_append(path)?;
                let start = found.header.start_offset;
                let found = recovered(Version::V2, start, found.record_count, found.last_offset, found.truncated_bytes);
                Ok((AnyWriter::V2(writer), found))
            }
            Some(Version::V1) | None => {
                let (writer, found) = WriterV1::open_append(path)?;
                let start = found.header.start_offset;
                let found = recovered(Version::V1, start, found.record_count, found.last_offset, found.truncated_bytes);
                Ok((AnyWriter::V1(writer), found))
            }
        }
    }

    /// Appends a record to the buffer (no system call unless the buffer fills). Version 1
    /// keeps only the offset, key and value, writing a null key or value as empty.
    pub fn append(&mut self, record: &RecordRef<'_>) -> Result<(), WriteError> {
        match self {
            AnyWriter::V1(writer) => writer.append(record.offset, record.key, record.value),
            AnyWriter::V2(writer) => writer.append(record),
            AnyWriter::V3(writer) => writer.append(record),
        }
    }

    /// Durability point: buffered records written and synced, then the header fields (version
    /// 1) or the progress block (version 2) moved over them. Does nothing when clean.
    pub fn sync(&mut self) -> Result<(), WriteError> {
        match self {
            AnyWriter::V1(writer) => writer.sync(),
            AnyWriter::V2(writer) => writer.sync(),
            AnyWriter::V3(writer) => writer.sync(),
        }
    }

    /// Ends the file for good before it is handed on, and returns its final length: version 2
    /// writes its footer. Version 1 has no seal; the file is synced and `fsync`ed.
    pub fn seal(self) -> Result<u64, WriteError> {
        let len = self.len();
        match self {
            AnyWriter::V1(writer) => writer.close().map(|()| len),
            AnyWriter::V2(writer) => writer.close().map(|()| len + FOOTER_BYTES as u64),
            AnyWriter::V3(writer) => writer.close().map(|()| len + v3::block::FOOTER_BYTES as u64),
        }
    }

    /// Syncs and `fsync`s without sealing, so [`AnyWriter::open_append`] can resume the file.
    pub fn suspend(self) -> Result<(), WriteError> {
        match self {
            AnyWriter::V1(writer) => writer.close(),
            AnyWriter::V2(writer) => writer.suspend(),
            AnyWriter::V3(writer) => writer.suspend(),
        }
    }

    /// The version being written.
    pub fn version(&self) -> Version {
        match self {
            AnyWriter::V1(_) => Version::V1,
            AnyWriter::V2(_) => Version::V2,
            AnyWriter::V3(_) => Version::V3,
        }
    }

    /// The header's start offset.
    pub fn start_offset(&self) -> i64 {
        match self {
            AnyWriter::V1(writer) => writer.header().start_offset,
            AnyWriter::V2(writer) => writer.header().start_offset,
            AnyWriter::V3(writer) => writer.header().start_offset,
        }
    }

    /// The header's creation time in seconds since the epoch, `None` when a version 2 header
    /// has no `created_ms`.
    pub fn created_secs(&self) -> Option<f64> {
        match self {
            AnyWriter::V1(writer) => Some(writer.header().start_time),
            AnyWriter::V2(writer) => writer.header().created_ms.map(|ms| ms as f64 / 1000.0),
            AnyWriter::V3(writer) => writer.header().created_ms.map(|ms| ms as f64 / 1000.0),
        }
    }

    /// Records in the file, including appended but unsynced ones.
    pub fn record_count(&self) -> u64 {
        match self {
            AnyWriter::V1(writer) => writer.record_count(),
            AnyWriter::V2(writer) => writer.record_count(),
            AnyWriter::V3(writer) => writer.record_count(),
        }
    }

    /// Offset of the last appended record, `None` when the file has no record.
    pub fn last_offset(&self) -> Option<i64> {
        match self {
            AnyWriter::V1(writer) => writer.last_offset(),
            AnyWriter::V2(writer) => writer.last_offset(),
            AnyWriter::V3(writer) => writer.last_offset(),
        }
    }

    /// Sets the size of the append buffer from its next allocation on (a larger buffer held now
    /// is written out and released).
    pub fn set_buffer_capacity(&mut self, capacity: usize) -> Result<(), WriteError> {
        match self {
            AnyWriter::V1(writer) => writer.set_buffer_capacity(capacity),
            AnyWriter::V2(writer) => writer.set_buffer_capacity(capacity),
            AnyWriter::V3(writer) => writer.set_buffer_capacity(capacity),
        }
    }

    /// Writes the append buffer out (no sync) and frees it: an idle open file holds no buffer.
    pub fn release_buffer(&mut self) -> Result<(), WriteError> {
        match self {
            AnyWriter::V1(writer) => writer.release_buffer(),
            AnyWriter::V2(writer) => writer.release_buffer(),
            AnyWriter::V3(writer) => writer.release_buffer(),
        }
    }

    /// A durability point, then the append buffer freed and the file descriptor closed; the
    /// next operation that needs the file opens it again by its path, at the same length.
    pub fn close_file(&mut self) -> Result<(), WriteError> {
        self.sync()?;
        self.release_buffer()?;
        let closed = match self {
            AnyWriter::V1(writer) => writer.close_descriptor(),
            AnyWriter::V2(writer) => writer.close_descriptor(),
            AnyWriter::V3(writer) => writer.close_descriptor(),
        };
        debug_assert!(closed, "nothing is buffered after a sync and a release");
        Ok(())
    }

    /// Whether the file descriptor is held.
    pub fn is_file_open(&self) -> bool {
        match self {
            AnyWriter::V1(writer) => writer.is_file_open(),
            AnyWriter::V2(writer) => writer.is_file_open(),
            AnyWriter::V3(writer) => writer.is_file_open(),
        }
    }

    /// Bytes the append buffer holds allocated (0 when released).
    pub fn buffer_bytes(&self) -> usize {
        match self {
            AnyWriter::V1(writer) => writer.buffer_bytes(),
            AnyWriter::V2(writer) => writer.buffer_bytes(),
            AnyWriter::V3(writer) => writer.buffer_bytes(),
        }
    }

    /// File length including buffered bytes.
    pub fn len(&self) -> u64 {
        match self {
            AnyWriter::V1(writer) => writer.len(),
            AnyWriter::V2(writer) => writer.len(),
            AnyWriter::V3(writer) => writer.len(),
        }
    }

    /// Whether the file has no record (appended or synced).
    pub fn is_empty(&self) -> bool {
        self.record_count() == 0
    }

    /// Whether records were appended since the last sync.
    pub fn is_dirty(&self) -> bool {
        match self {
            AnyWriter::V1(writer) => writer.is_dirty(),
            AnyWriter::V2(writer) => writer.is_dirty(),
            AnyWriter::V3(writer) => writer.is_dirty(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        match self {
            AnyWriter::V1(writer) => writer.path(),
            AnyWriter::V2(writer) => writer.path(),
            AnyWriter::V3(writer) => writer.path(),
        }
    }
}

/// The version of the file at `path` by its first bytes; `None` for an empty file or bytes that
/// are no version's.
pub fn detect_version(path: &Path) -> Result<Option<Version>, WriteError> {
    let io_err = |action| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, action, source }
    };
    let file = File::open(path).map_err(io_err(IoAction::Open))?;
    let mut first = Vec::with_capacity(DETECT_LEN);
    file.take(DETECT_LEN as u64).read_to_end(&mut first).map_err(io_err(IoAction::Read))?;
    Ok(Version::detect(&first))
}

/// Length of the fixed part of a header (before its JSON) of the file's version: a file
/// shorter than this was cut while its header was being created, so it never held a record.
pub fn fixed_header_len(version: Option<Version>) -> u64 {
    match version {
        Some(Version::V3) => v3::HEADER_JSON_AT,
        Some(Version::V2) => v2::HEADER_JSON_AT,
        Some(Version::V1) | None => crate::HEADER_JSON_AT,
    }
}

/// Whether the file at `path` is a version 2 or 3 file whose progress block says sealed: a seal
/// that completed before a crash interrupted the rename that hands the file on. `false` for
/// anything else, including a file that cannot be read (resuming it reports why).
pub fn is_sealed(path: &Path) -> bool {
    let Ok(Some(version)) = detect_version(path) else {
        return false;
    };
    let Ok(file) = File::open(path) else {
        return false;
    };
    match version {
        Version::V2 => {
            v2::read_summary(file).is_ok_and(|summary| summary.progress.is_some_and(|p| p.state == v2::State::Sealed))
        }
        Version::V3 => {
            v3::read_summary(file).is_ok_and(|summary| summary.progress.is_some_and(|p| p.state == v3::State::Sealed))
        }
        Version::V1 => false,
    }
}
