//! Writer for an in-progress version 3 file, with version 2's durability protocol: records
//! collect in the open block; a block is written out, in one vectored write, when it reaches its
//! size bound and at each sync, which then `fdatasync`s and `pwrite`s the progress block; close
//! seals the file with a footer block.

use std::fs::OpenOptions;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::append::{Appender, DEFAULT_BUFFER_CAPACITY, MIN_BUFFER_CAPACITY};
use crate::error::{IoAction, ReadError, WriteError};
use crate::preamble;
use crate::v3::block::{BlockRoom, Footer, OpenBlock, Progress, Totals, FOOTER_BYTES};
use crate::v3::reader::MakReader;
use crate::v3::{Header, RecordRef, State, BLOCK_HEAD_LEN, CRC_LEN, HEADER_LEN_AT, PROGRESS_AT, VERSION};

/// The largest block bound a caller can set: blocks this large already compress as well as
/// any, and a record larger than the bound is written as a block of its own anyway.
const MAX_BLOCK_BOUND: usize = 64 << 20;

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
    /// The progress block was torn, so the write position was found by scanning blocks.
    pub scanned: bool,
}

/// An open in-progress version 3 file. Appends collect in the open block; [`MakWriter::sync`]
/// writes it, makes it durable and only then moves the progress block over it, so a reader (or
/// a crash) never sees unsynced records. After an I/O error the writer refuses further work
/// ([`WriteError::Poisoned`]); reopen the file with [`MakWriter::open_append`]. Dropping a
/// writer without closing it discards unsynced records (the file stays valid up to the last
/// sync).
#[derive(Debug)]
pub struct MakWriter {
    /// The file, written a whole block at a time from the block's own columns (its staging
    /// buffer is never used, so never allocated).
    out: Appender,
    path: PathBuf,
    header: Header,
    block: OpenBlock,
    /// What a block may hold: its bound (the append buffer's capacity) in shares.
    room: BlockRoom,
    /// Every record appended, the open block's included.
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
        let progress = |data_start| empty_progress(data_start).encode().to_vec();
        let (file, data_start, body_crc) = preamble::create(path, VERSION, HEADER_LEN_AT, header, progress)?;
        Ok(MakWriter::new(
            Appender::with_crc(file, path.to_path_buf(), data_start, body_crc),
            path,
            header.clone(),
            Totals::EMPTY,
            false,
        ))
    }

    fn new(out: Appender, path: &Path, header: Header, totals: Totals, progress_stale: bool) -> MakWriter {
        MakWriter {
            out,
            path: path.to_path_buf(),
            header,
            block: OpenBlock::default(),
            room: BlockRoom::of(DEFAULT_BUFFER_CAPACITY),
            totals,
            dirty: false,
            progress_stale,
            poisoned: false,
        }
    }

    /// Opens an existing open (unsealed) file to append to it: reads every block up to the
    /// write position (found by scanning when the progress block is torn), truncates the torn
    /// tail past it and recomputes the body CRC. A corrupt block before the write position is
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
        let out = Appender::with_crc(file, path.to_path_buf(), write_position, body_crc);
        // A torn block is rewritten at the next sync even if nothing is appended.
        let writer = MakWriter::new(out, path, header.clone(), totals, scanned);
        let last_offset = (totals.count > 0).then_some(totals.last_offset);
        let recovered = Recovered { header, record_count: totals.count, last_offset, truncated_bytes, scanned };
        Ok((writer, recovered))
    }

    /// Appends a record to the open block: a few varints and one copy of its key and value. No
    /// system call unless the block reaches its bound, then its writes; nothing is durable or
    /// visible to readers before [`MakWriter::sync`].
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
        let too_large = || WriteError::RecordTooLarge { path: self.path.clone(), offset };
        let size = self.block.size_of(record).ok_or_else(too_large)?;
        if BLOCK_HEAD_LEN + size.total() + CRC_LEN > u64::from(u32::MAX) {
            return Err(too_large());
        }
        if !self.block.fits(size, self.room) {
            self.write_block(None)?;
        }
        if size.data > self.room.data as u64 {
            // More than a block's keys and values: a block of its own, its key and value written
            // from the record rather than copied into the block.
            self.block.push_meta(record);
            self.totals.add(offset, record.timestamp);
            self.dirty = true;
            return self.write_block(Some(&[record.key.unwrap_or_default(), record.value.unwrap_or_default()]));
        }
        self.block.reserve_data(self.room);
        self.block.push(record);
        self.totals.add(offset, record.timestamp);
        self.dirty = true;
        Ok(())
    }

    /// Durability point: writes the open block, `fdatasync`s, then writes the progress block at
    /// byte 12 in one `pwrite`. Does nothing when clean.
    pub fn sync(&mut self) -> Result<(), WriteError> {
        self.check_poisoned()?;
        if !self.dirty && !self.progress_stale {
            return Ok(());
        }
        self.make_durable(State::Open)
    }

    /// Seals the file: writes the open block and the footer block, syncs with state = sealed,
    /// then `fsync`s. A sealed file cannot be resumed.
    pub fn close(mut self) -> Result<(), WriteError> {
        self.check_poisoned()?;
        self.write_block(None)?;
        let totals = self.totals;
        let footer = Footer {
            record_count: totals.count,
            first_offset: totals.first_offset,
            last_offset: totals.last_offset,
            first_timestamp: totals.first_timestamp,
            last_timestamp: totals.last_timestamp,
            min_timestamp: totals.min_timestamp,
            max_timestamp: totals.max_timestamp,
            body_crc: self.out.crc().expect("a version 3 appender keeps the body crc"),
        };
        let bytes: [u8; FOOTER_BYTES] = footer.encode();
        self.out.write_pieces([&bytes[..]]).map_err(|source| self.fail(IoAction::Write, source))?;
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

    /// Sets the block size bound (at least 4 KiB): what the open block holds allocated, at
    /// most, its columns' growth included (see `block::open`). An open block already larger is
    /// written out and freed, so lowering the bound bounds memory at once.
    pub fn set_buffer_capacity(&mut self, capacity: usize) -> Result<(), WriteError> {
        self.check_poisoned()?;
        let bound = capacity.clamp(MIN_BUFFER_CAPACITY, MAX_BLOCK_BOUND);
        self.room = BlockRoom::of(bound);
        if self.block.allocated() > bound {
            self.release_buffer()?;
        }
        Ok(())
    }

    /// Writes the open block out (no sync) and frees its columns until the next append.
    pub fn release_buffer(&mut self) -> Result<(), WriteError> {
        self.check_poisoned()?;
        self.write_block(None)?;
        self.block.release();
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

    /// Bytes the open block's columns hold allocated.
    pub fn buffer_bytes(&self) -> usize {
        self.block.allocated() + self.out.allocated()
    }

    /// File length including the open block: the write position after the next sync.
    pub fn len(&self) -> u64 {
        self.out.len() + self.block.encoded_len()
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

    /// Writes the open block (no sync): its head, columns, data and CRC in one vectored write.
    /// `data`: a lone record's key and value, for a block whose data column was not filled.
    fn write_block(&mut self, data: Option<&[&[u8]]>) -> Result<(), WriteError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let out = &mut self.out;
        let written = self
            .block
            .close(data, |closed| out.write_pieces_covered(closed.pieces(), closed.covered(), closed.crc_bytes()));
        written.map_err(|source| self.fail(IoAction::Write, source))
    }

    fn make_durable(&mut self, state: State) -> Result<(), WriteError> {
        self.write_block(None)?;
        self.out.flush().map_err(|source| self.fail(IoAction::Write, source))?;
        self.out.file().and_then(|file| file.sync_data()).map_err(|source| self.fail(IoAction::Sync, source))?;
        let totals = self.totals;
        let progress = Progress {
            write_position: self.out.written(),
            record_count: totals.count,
            last_offset: totals.last_offset,
            first_timestamp: totals.first_timestamp,
            last_timestamp: totals.last_timestamp,
            min_timestamp: totals.min_timestamp,
            max_timestamp: totals.max_timestamp,
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

/// The progress block of a file without records.
fn empty_progress(data_start: u64) -> Progress {
    Progress {
        write_position: data_start,
        record_count: 0,
        last_offset: -1,
        first_timestamp: -1,
        last_timestamp: -1,
        min_timestamp: -1,
        max_timestamp: -1,
        state: State::Open,
    }
}
