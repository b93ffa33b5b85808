//! Writer for an in-progress version 2 file, with version 1's durability protocol: append
//! frames into a buffer; at each sync write it, `fdatasync`, then `pwrite` the progress block;
//! close seals the file with a footer frame.

use std::fs::OpenOptions;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::append::Appender;
use crate::error::{IoAction, ReadError, WriteError};
use crate::preamble;
use crate::v2::frame::FOOTER_BYTES;
use crate::v2::reader::MakReader;
use crate::v2::{Footer, Header, Progress, RecordRef, State, FRAME_LEN_LEN, HEADER_LEN_AT, PROGRESS_AT, VERSION};

/// What [`MakWriter::open_append`] found in an existing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub header: Header,
    /// Records before the write position.
    pub record_count: u64,
    /// Offset of the last record, `None` when there is none.
    pub last_offset: Option<i64>,
    /// Bytes past the write position (a torn tail) that were cut off.
    pub truncated_bytes: u64,
    /// The progress block was torn, so the write position was found by scanning frames.
    pub scanned: bool,
}

/// The running summary of the records in the file, as the progress block and footer state it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Totals {
    pub(crate) count: u64,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) first_timestamp: i64,
    pub(crate) last_timestamp: i64,
}

impl Totals {
    pub(crate) const EMPTY: Totals =
        Totals { count: 0, first_offset: -1, last_offset: -1, first_timestamp: -1, last_timestamp: -1 };

    pub(crate) fn add(&mut self, offset: i64, timestamp: i64) {
        if self.count == 0 {
            self.first_offset = offset;
            self.first_timestamp = timestamp;
        }
        self.count += 1;
        self.last_offset = offset;
        self.last_timestamp = timestamp;
    }
}

/// An open in-progress version 2 file. Appends are buffered; [`MakWriter::sync`] makes them
/// durable and only then moves the progress block over them, so a reader (or a crash) never
/// sees unsynced records. After an I/O error the writer refuses further work
/// ([`WriteError::Poisoned`]); reopen the file with [`MakWriter::open_append`]. Dropping a
/// writer without closing it discards unsynced records (the file stays valid up to the last
/// sync).
#[derive(Debug)]
pub struct MakWriter {
    out: Appender,
    path: PathBuf,
    header: Header,
    totals: Totals,
    /// Appended since the last sync.
    dirty: bool,
    /// The on-disk progress block differs from ours even though nothing was appended.
    progress_stale: bool,
    poisoned: bool,
}

impl MakWriter {
    /// Creates a new file (never overwrites one) and makes its header durable: the file
    /// data, then the parent directory entry.
    pub fn create(path: &Path, header: &Header) -> Result<MakWriter, WriteError> {
        let progress = |data_start| {
            let progress = Progress {
                write_position: data_start,
                record_count: 0,
                last_offset: -1,
                first_timestamp: -1,
                last_timestamp: -1,
                state: State::Open,
            };
            progress.encode().to_vec()
        };
        let (file, data_start, body_crc) = preamble::create(path, VERSION, HEADER_LEN_AT, header, progress)?;
        Ok(MakWriter {
            out: Appender::with_crc(file, path.to_path_buf(), data_start, body_crc),
            path: path.to_path_buf(),
            header: header.clone(),
            totals: Totals::EMPTY,
            dirty: false,
            progress_stale: false,
            poisoned: false,
        })
    }

    /// Opens an existing open (unsealed) file to append to it: reads every frame up to the
    /// write position (found by scanning when the progress block is torn), truncates the torn
    /// tail past it and recomputes the body CRC. A corrupt frame before the write position is
    /// an error; so is a sealed file.
    pub fn open_append(path: &Path) -> Result<(MakWriter, Recovered), WriteError> {
        let io_err = |action| WriteError::io(path, action);
        let corrupt = |source: ReadError| WriteError::scanning(path, source);
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io_err(IoAction::Open))?;
        let file_len = file.metadata().map_err(io_err(IoAction::Read))?.len();

        let mut reader = MakReader::with_size_limit(&file, file_len).map_err(corrupt)?;
        while reader.next_record().map_err(corrupt)?.is_some() {}
        if reader.footer().is_some() {
            return Err(WriteError::Sealed { path: path.to_path_buf() });
        }
        let header = reader.header().clone();
        let write_position = reader.position();
        let scanned = reader.progress().is_none();
        let totals = reader.totals();
        let body_crc = reader.body_crc();
        drop(reader);

        // The reader never reads past file_len.
        let truncated_bytes = file_len.saturating_sub(write_position);
        if truncated_bytes > 0 {
            file.set_len(write_position).map_err(io_err(IoAction::Truncate))?;
        }
        file.seek(SeekFrom::Start(write_position)).map_err(io_err(IoAction::Seek))?;

        let last_offset = (totals.count > 0).then_some(totals.last_offset);
        let writer = MakWriter {
            out: Appender::with_crc(file, path.to_path_buf(), write_position, body_crc),
            path: path.to_path_buf(),
            header: header.clone(),
            totals,
            dirty: false,
            // A torn block is rewritten at the next sync even if nothing is appended.
            progress_stale: scanned,
            poisoned: false,
        };
        let recovered = Recovered { header, record_count: totals.count, last_offset, truncated_bytes, scanned };
        Ok((writer, recovered))
    }

    /// Appends a record frame to the buffer. No system call unless the buffer fills, then
    /// one write; nothing is durable or visible to readers before [`MakWriter::sync`].
    pub fn append(&mut self, record: &RecordRef<'_>) -> Result<(), WriteError> {
        self.check_poisoned()?;
        let offset = record.offset;
        if offset < 0 {
            return Err(WriteError::NegativeOffset { path: self.path.clone(), offset });
        }
        if self.totals.count > 0 && offset <= self.totals.last_offset {
            let previous = self.totals.last_offset;
            return Err(WriteError::OffsetNotIncreasing { path: self.path.clone(), offset, previous });
        }
        // ok_or_else: the error holds a PathBuf, which must not be allocated per record.
        let frame_len =
            record.frame_len().ok_or_else(|| WriteError::RecordTooLarge { path: self.path.clone(), offset })?;
        let result = self.put_frame(record, frame_len);
        self.dirty = true;
        self.totals.add(offset, record.timestamp);
        result.map_err(|source| self.fail(IoAction::Write, source))
    }

    /// Durability point: writes the buffer, `fdatasync`s, then writes the progress block at
    /// byte 12 in one `pwrite`. Does nothing when clean.
    pub fn sync(&mut self) -> Result<(), WriteError> {
        self.check_poisoned()?;
        if !self.dirty && !self.progress_stale {
            return Ok(());
        }
        self.make_durable(State::Open)
    }

    /// Seals the file: appends the footer frame, syncs with state = sealed, then `fsync`s.
    /// A sealed file cannot be resumed.
    pub fn close(mut self) -> Result<(), WriteError> {
        self.check_poisoned()?;
        let totals = self.totals;
        let footer = Footer {
            record_count: totals.count,
            first_offset: totals.first_offset,
            last_offset: totals.last_offset,
            first_timestamp: totals.first_timestamp,
            last_timestamp: totals.last_timestamp,
            body_crc: self.out.crc().expect("a version 2 appender keeps the body crc"),
        };
        let bytes: [u8; FOOTER_BYTES] = footer.encode();
        self.put(&bytes).map_err(|source| self.fail(IoAction::Write, source))?;
        self.make_durable(State::Sealed)?;
        self.out.file().and_then(|file| file.sync_all()).map_err(|source| self.fail(IoAction::Sync, source))
    }

    /// Syncs and `fsync`s without sealing, so the file can be resumed with
    /// [`MakWriter::open_append`] (giving up a partition, shutting down).
    pub fn suspend(mut self) -> Result<(), WriteError> {
        self.sync()?;
        self.out.file().and_then(|file| file.sync_all()).map_err(|source| self.fail(IoAction::Sync, source))
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Records in the file, including appended but unsynced ones.
    pub fn record_count(&self) -> u64 {
        self.totals.count
    }

    /// Offset of the last appended record, `None` when the file has no record.
    pub fn last_offset(&self) -> Option<i64> {
        (self.totals.count > 0).then_some(self.totals.last_offset)
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
        self.totals.count == 0
    }

    /// Whether records were appended since the last sync.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn make_durable(&mut self, state: State) -> Result<(), WriteError> {
        self.out.flush().map_err(|source| self.fail(IoAction::Write, source))?;
        self.out.file().and_then(|file| file.sync_data()).map_err(|source| self.fail(IoAction::Sync, source))?;
        let totals = self.totals;
        let progress = Progress {
            write_position: self.out.written(),
            record_count: totals.count,
            last_offset: totals.last_offset,
            first_timestamp: totals.first_timestamp,
            last_timestamp: totals.last_timestamp,
            state,
        };
        self.out
            .file()
            .and_then(|file| file.write_all_at(&progress.encode(), PROGRESS_AT))
            .map_err(|source| self.fail(IoAction::Write, source))?;
        self.dirty = false;
        self.progress_stale = false;
        Ok(())
    }

    /// Appends a record frame and its CRC. A frame that fits the buffer is encoded into it in
    /// one piece and checksummed in one pass rather than field by field: CRC calls on a few
    /// bytes each cost more than the copying. (The body CRC is the appender's, per buffer.)
    fn put_frame(&mut self, record: &RecordRef<'_>, frame_len: u32) -> io::Result<()> {
        let total = FRAME_LEN_LEN as usize + frame_len as usize;
        if let Some(buf) = self.out.room(total)? {
            let start = buf.len();
            let Ok(()) = record.encode(frame_len, |bytes| {
                buf.extend_from_slice(bytes);
                Ok::<(), std::convert::Infallible>(())
            });
            let frame_crc = crc32c::crc32c(&buf[start..]);
            buf.extend_from_slice(&frame_crc.to_be_bytes());
            debug_assert_eq!(buf.len() - start, total);
            return Ok(());
        }
        // Larger than the whole buffer: streamed through it piece by piece.
        let mut frame_crc = 0u32;
        record.encode(frame_len, |bytes| {
            frame_crc = crc32c::crc32c_append(frame_crc, bytes);
            self.put(bytes)
        })?;
        self.put(&frame_crc.to_be_bytes())
    }

    /// Appends `bytes` (buffered, see [`Appender::put`]; the appender adds them to the body CRC).
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
