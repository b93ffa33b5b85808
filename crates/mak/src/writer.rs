//! Writer for an in-progress MAK file, with the durability protocol of `docs/format.md`:
//! append into a buffer, and at each sync write it, `fdatasync`, then `pwrite` the header.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::append::Appender;
use crate::error::{IoAction, ReadError, WriteError};
use crate::header::Header;
use crate::reader::MakReader;
use crate::{HEADER_JSON_AT, LAST_OFFSET_AT, MAGIC, U64_LEN};

/// What [`MakWriter::open_append`] found in an existing file.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// The file's header.
    pub header: Header,
    /// Records before the write position.
    pub record_count: u64,
    /// Offset of the last record, `None` when there is none.
    pub last_offset: Option<i64>,
    /// Bytes past the write position (a torn tail) that were cut off.
    pub truncated_bytes: u64,
}

/// An open in-progress MAK file. Appends are buffered; [`MakWriter::sync`] makes them durable
/// and only then moves the header's write position over them, so a reader (or a crash)
/// never sees unsynced records. After an I/O error the writer refuses further work
/// ([`WriteError::Poisoned`]); reopen the file with [`MakWriter::open_append`], which cuts
/// off whatever the failed write left past the write position. Dropping a writer without
/// [`MakWriter::close`] discards unsynced records (the file stays valid up to the last sync).
#[derive(Debug)]
pub struct MakWriter {
    out: Appender,
    path: PathBuf,
    header: Header,
    record_count: u64,
    last_offset: Option<i64>,
    /// Appended since the last sync.
    dirty: bool,
    /// The on-disk header fields differ from ours even though nothing was appended.
    header_stale: bool,
    poisoned: bool,
}

impl MakWriter {
    /// Creates a new file (never overwrites one) and makes its header durable: the file
    /// data, then the parent directory entry.
    pub fn create(path: &Path, header: &Header) -> Result<MakWriter, WriteError> {
        header.validate().map_err(|problem| WriteError::InvalidHeader { path: path.to_path_buf(), problem })?;
        let json = header.to_json();
        let header_len = json.len() as u64;
        let data_start = HEADER_JSON_AT + header_len;
        let mut bytes = Vec::with_capacity(json.len() + HEADER_JSON_AT as usize);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&(header.start_offset as u64).to_be_bytes());
        bytes.extend_from_slice(&data_start.to_be_bytes());
        bytes.extend_from_slice(&header_len.to_be_bytes());
        bytes.extend_from_slice(json.as_bytes());

        let io_err = |action| WriteError::io(path, action);
        let mut file = OpenOptions::new().write(true).create_new(true).open(path).map_err(io_err(IoAction::Create))?;
        file.write_all(&bytes).map_err(io_err(IoAction::Write))?;
        file.sync_data().map_err(io_err(IoAction::Sync))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent).and_then(|dir| dir.sync_all()).map_err(io_err(IoAction::SyncDirectory))?;

        Ok(MakWriter {
            out: Appender::new(file, path.to_path_buf(), data_start),
            path: path.to_path_buf(),
            header: header.clone(),
            record_count: 0,
            last_offset: None,
            dirty: false,
            header_stale: false,
            poisoned: false,
        })
    }

    /// Opens an existing file (written by `mak` or by the original) to append to it: scans
    /// all records up to the write position, truncates the torn tail past it, and positions
    /// at the write position. A corrupt record before the write position is an error.
    pub fn open_append(path: &Path) -> Result<(MakWriter, Recovered), WriteError> {
        let io_err = |action| WriteError::io(path, action);
        let corrupt = |source: ReadError| WriteError::scanning(path, source);
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io_err(IoAction::Open))?;
        let file_len = file.metadata().map_err(io_err(IoAction::Read))?.len();

        let mut reader = MakReader::with_size_limit(&file, file_len).map_err(corrupt)?;
        let mut record_count = 0u64;
        let mut last_offset = None;
        while let Some(record) = reader.next_record().map_err(corrupt)? {
            record_count += 1;
            last_offset = Some(record.offset);
        }
        let header = reader.header().clone();
        let write_position = reader.write_position();
        let last_offset_field = reader.last_offset_field();
        drop(reader);

        // The reader checked write_position <= file_len.
        let truncated_bytes = file_len.saturating_sub(write_position);
        if truncated_bytes > 0 {
            file.set_len(write_position).map_err(io_err(IoAction::Truncate))?;
        }
        file.seek(SeekFrom::Start(write_position)).map_err(io_err(IoAction::Seek))?;

        let expected_field = last_offset.unwrap_or(header.start_offset) as u64;
        let writer = MakWriter {
            out: Appender::new(file, path.to_path_buf(), write_position),
            path: path.to_path_buf(),
            header: header.clone(),
            record_count,
            last_offset,
            dirty: false,
            header_stale: last_offset_field != expected_field,
            poisoned: false,
        };
        let recovered = Recovered { header, record_count, last_offset, truncated_bytes };
        Ok((writer, recovered))
    }

    /// Appends a record to the buffer. No system call unless the buffer fills, then one
    /// write; nothing is durable or visible to readers before [`MakWriter::sync`]. A `None`
    /// key or value is written with length 0, like an empty one.
    pub fn append(&mut self, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(), WriteError> {
        self.check_poisoned()?;
        if offset < 0 {
            return Err(WriteError::NegativeOffset { path: self.path.clone(), offset });
        }
        let key = key.unwrap_or_default();
        let value = value.unwrap_or_default();
        let result = self
            .put(&(key.len() as u64).to_be_bytes())
            .and_then(|()| self.put(key))
            .and_then(|()| self.put(&(value.len() as u64).to_be_bytes()))
            .and_then(|()| self.put(value))
            .and_then(|()| self.put(&(offset as u64).to_be_bytes()));
        self.dirty = true;
        self.record_count += 1;
        self.last_offset = Some(offset);
        result.map_err(|source| self.fail(IoAction::Write, source))
    }

    /// Durability point: writes the buffer, `fdatasync`s, then writes the last-offset and
    /// write-position fields at byte 3 in one `pwrite`. Does nothing when clean.
    pub fn sync(&mut self) -> Result<(), WriteError> {
        self.check_poisoned()?;
        if !self.dirty && !self.header_stale {
            return Ok(());
        }
        self.out.flush().map_err(|source| self.fail(IoAction::Write, source))?;
        self.out.file().and_then(|file| file.sync_data()).map_err(|source| self.fail(IoAction::Sync, source))?;
        let last = self.last_offset.unwrap_or(self.header.start_offset) as u64;
        let mut fields = [0u8; 2 * U64_LEN as usize];
        fields[..8].copy_from_slice(&last.to_be_bytes());
        fields[8..].copy_from_slice(&self.out.written().to_be_bytes());
        self.out
            .file()
            .and_then(|file| file.write_all_at(&fields, LAST_OFFSET_AT))
            .map_err(|source| self.fail(IoAction::Write, source))?;
        self.dirty = false;
        self.header_stale = false;
        Ok(())
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Records in the file, including appended but unsynced ones.
    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    /// Offset of the last appended record, `None` when the file has no record.
    pub fn last_offset(&self) -> Option<i64> {
        self.last_offset
    }

    /// Sets the size of the append buffer from its next allocation on (a larger buffer held now
    /// is written out and released). See the `append` module.
    pub fn set_buffer_capacity(&mut self, capacity: usize) -> Result<(), WriteError> {
        self.check_poisoned()?;
        self.out.set_capacity(capacity).map_err(|source| self.fail(IoAction::Write, source))
    }

    /// Writes the append buffer out (no sync) and frees it until the next append.
    pub fn release_buffer(&mut self) -> Result<(), WriteError> {
        self.check_poisoned()?;
        self.out.release().map_err(|source| self.fail(IoAction::Write, source))
    }

    /// Closes the file descriptor if nothing is buffered (after a sync and
    /// [`MakWriter::release_buffer`]); the next operation that needs the file opens it again by
    /// its path, at the same length. True when it is closed.
    pub fn close_descriptor(&mut self) -> bool {
        self.out.close_file()
    }

    /// Whether the file descriptor is held (see [`MakWriter::close_descriptor`]).
    pub fn is_file_open(&self) -> bool {
        self.out.is_file_open()
    }

    /// Bytes the append buffer holds allocated (0 when released).
    pub fn buffer_bytes(&self) -> usize {
        self.out.allocated()
    }

    /// File length including buffered bytes: the write position after the next sync.
    pub fn len(&self) -> u64 {
        self.out.len()
    }

    /// Whether the file has no record (appended or synced).
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// Whether records were appended since the last sync.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs, then `fsync`s (making the last header update durable too) and closes.
    pub fn close(mut self) -> Result<(), WriteError> {
        self.sync()?;
        self.out.file().and_then(|file| file.sync_all()).map_err(|source| self.fail(IoAction::Sync, source))
    }

    /// Appends `bytes` (buffered, see [`Appender::put`]).
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.put(bytes)
    }

    fn check_poisoned(&self) -> Result<(), WriteError> {
        if self.poisoned {
            return Err(WriteError::Poisoned { path: self.path.clone() });
        }
        Ok(())
    }

    fn fail(&mut self, action: IoAction, source: io::Error) -> WriteError {
        self.poisoned = true;
        WriteError::Io { path: self.path.clone(), action, source }
    }
}
