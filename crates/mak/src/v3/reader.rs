//! Streaming version 3 reader: validates the preamble, progress block and header, then reads
//! block by block up to the write position - each block's CRC checked and the whole block
//! validated before its first record is handed out - and at the end checks the footer and the
//! progress block against what it read.

use std::io::{BufReader, Read};

use crate::error::{BlockProblem, Field, ReadError, SummaryField, SummarySource};
use crate::input::Input;
use crate::preamble;
use crate::v2::frame::ProgressProblem;
use crate::v3::block::{self, Footer, Progress, Totals, Walk};
use crate::v3::{
    Header, Record, State, BLOCK_LEN_LEN, CRC_LEN, HEADER_LEN_AT, KIND_FOOTER, KIND_RECORDS, MIN_RECORD_BLOCK_LEN,
    PROGRESS_AT, PROGRESS_LEN, VERSION,
};

/// What the first bytes of a file say, read without touching any block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    /// `None` when the block's CRC does not match (a torn write): only a full read can tell.
    pub progress: Option<Progress>,
    /// Byte position of the first block.
    pub data_start: u64,
}

/// Reads only the preamble, progress block and header of a version 3 file.
pub fn read_summary<R: Read>(reader: R) -> Result<Summary, ReadError> {
    let reader = MakReader::new(reader)?;
    Ok(Summary { header: reader.header, progress: reader.progress, data_start: reader.data_start })
}

/// Reads a whole version 3 file from a byte slice, with the slice length as size limit, and
/// returns the number of records. Meant for fuzz targets and quick validation.
pub fn read_all(bytes: &[u8]) -> Result<u64, ReadError> {
    let mut reader = MakReader::with_size_limit(bytes, bytes.len() as u64)?;
    while reader.next_record()?.is_some() {}
    Ok(reader.records_read())
}

/// Streaming version 3 reader over any [`Read`] (buffered internally). The block buffer is
/// reused, so once it has grown to the largest block no further allocation happens.
#[derive(Debug)]
pub struct MakReader<R> {
    input: Input<R>,
    header: Header,
    /// `None` when the block's CRC failed: blocks are then scanned until one does not check out.
    progress: Option<Progress>,
    data_start: u64,
    /// End of valid data: the progress block's write position, or where scanning stopped.
    write_position: Option<u64>,
    /// The current block's bytes after its length field, CRC included (the buffer may be longer).
    block: Vec<u8>,
    block_len: usize,
    /// Byte position of the current block.
    block_at: u64,
    /// The current block's records still to hand out.
    walk: Option<Walk>,
    /// CRC-32C of bytes 76..position, compared with the footer's body CRC.
    body_crc: u32,
    /// What the blocks read so far add up to.
    tally: Totals,
    records_read: u64,
    footer: Option<Footer>,
    finished: bool,
    failed: bool,
}

impl<R: Read> MakReader<R> {
    /// Reads and validates the preamble, progress block and header. Without a size limit (a
    /// compressed stream) a write position beyond the real data shows up later as
    /// [`ReadError::Truncated`].
    pub fn new(reader: R) -> Result<Self, ReadError> {
        Self::open(reader, None)
    }

    /// Like [`MakReader::new`], but nothing may extend past `max_len` (pass the file size), so
    /// a corrupt write position or length is rejected before anything is read or allocated.
    pub fn with_size_limit(reader: R, max_len: u64) -> Result<Self, ReadError> {
        Self::open(reader, Some(max_len))
    }

    fn open(reader: R, size_limit: Option<u64>) -> Result<Self, ReadError> {
        let mut input = Input::new(reader, size_limit);
        let mut preamble = [0u8; preamble::PREAMBLE_LEN];
        input.read_exact(&mut preamble, Field::Preamble)?;
        preamble::check(&preamble, VERSION)?;
        let mut block = [0u8; PROGRESS_LEN as usize];
        input.read_exact(&mut block, Field::ProgressBlock)?;
        let progress = match Progress::decode(&block) {
            Ok(progress) => Some(progress),
            Err(ProgressProblem::CrcMismatch) => None,
            Err(ProgressProblem::UnknownState(state)) => return Err(ReadError::UnknownState { state }),
        };
        let write_position = progress.map(|p| p.write_position);
        let head = preamble::read_header(&mut input, HEADER_LEN_AT, write_position)?;
        Ok(MakReader {
            input,
            header: head.header,
            progress,
            data_start: head.data_start,
            write_position,
            block: Vec::new(),
            block_len: 0,
            block_at: head.data_start,
            walk: None,
            body_crc: head.body_crc,
            tally: Totals::EMPTY,
            records_read: 0,
            footer: None,
            finished: false,
            failed: false,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The progress block as read, `None` when its CRC failed (the file is then scanned).
    pub fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }

    /// End of valid data: the progress block's write position; with a torn block, `None` until
    /// scanning found the end.
    pub fn write_position(&self) -> Option<u64> {
        self.write_position
    }

    /// Byte position of the first block.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Bytes consumed so far (whole blocks); the write position once `next_record` returned `None`.
    pub fn position(&self) -> u64 {
        self.input.position
    }

    /// Records returned so far.
    pub fn records_read(&self) -> u64 {
        self.records_read
    }

    /// The underlying stream, positioned after the last block read (its buffered bytes are
    /// kept): callers use it to read a container format to its end.
    pub fn into_inner(self) -> BufReader<R> {
        self.input.into_inner()
    }

    /// The footer, once the reader reached the end of a sealed file.
    pub fn footer(&self) -> Option<&Footer> {
        self.footer.as_ref()
    }

    /// What the blocks read so far add up to.
    pub(crate) fn totals(&self) -> Totals {
        self.tally
    }

    /// CRC-32C of bytes 76..position: what a footer written here would hold.
    pub(crate) fn body_crc(&self) -> u32 {
        self.body_crc
    }

    /// The next record, or `None` at the end of valid data, after checking the footer and the
    /// progress block against the records read. After an error every further call returns
    /// [`ReadError::Poisoned`].
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        if self.failed {
            return Err(ReadError::Poisoned { position: self.input.position });
        }
        while !self.walk.as_ref().is_some_and(Walk::has_next) {
            if self.finished {
                return Ok(None);
            }
            if let Err(err) = self.advance() {
                self.failed = true;
                return Err(err);
            }
        }
        let body = &self.block[..self.block_len - CRC_LEN as usize];
        let walk = self.walk.as_mut().expect("a walk with records left");
        match walk.next(body) {
            Some(record) => {
                self.records_read += 1;
                Ok(Some(record))
            }
            // `check` accepted the block, so this is a bug; an error, never a panic.
            None => {
                self.failed = true;
                let problem = BlockProblem::ColumnPastBlock { column: "record", at: 0 };
                Err(ReadError::BadBlock { position: self.block_at, problem })
            }
        }
    }

    /// Reads the next block: a record block becomes the walk; a footer, or the end of valid
    /// data, finishes the read.
    fn advance(&mut self) -> Result<(), ReadError> {
        self.walk = None;
        if !self.read_block()? {
            return self.finish();
        }
        let (at, len) = (self.block_at, self.block_len);
        let body = &self.block[..len - CRC_LEN as usize];
        match body[0] {
            KIND_RECORDS => {
                let checked = block::check(body).map_err(|problem| ReadError::BadBlock { position: at, problem })?;
                let first = checked.totals.first_offset;
                if self.tally.count > 0 && first <= self.tally.last_offset {
                    let previous = self.tally.last_offset;
                    return Err(ReadError::BlockOffsetNotIncreasing { position: at, offset: first, previous });
                }
                self.tally.extend(&checked.totals);
                self.body_crc = crc32c::crc32c_append(self.body_crc, &(len as u32).to_be_bytes());
                self.body_crc = crc32c::crc32c_append(self.body_crc, &self.block[..len]);
                self.walk = Some(Walk::new(checked));
                Ok(())
            }
            KIND_FOOTER => {
                let footer = Footer::decode(body, len as u32)
                    .map_err(|problem| ReadError::BadBlock { position: at, problem })?;
                self.accept_footer(at, footer)
            }
            kind => Err(ReadError::BadBlock { position: at, problem: BlockProblem::UnknownKind(kind) }),
        }
    }

    /// Reads the next block into `self.block` and checks its length and CRC; false at the end of
    /// valid data. When scanning (torn progress block) the first block that does not check out is
    /// the end, as the write position would have been.
    fn read_block(&mut self) -> Result<bool, ReadError> {
        let at = self.input.position;
        let Some(write_position) = self.write_position else {
            return match self.read_checked_block(self.input.limit()) {
                Ok(()) => Ok(true),
                Err(err @ ReadError::Io { .. }) => Err(err),
                Err(_) => {
                    self.input.position = at;
                    Ok(false)
                }
            };
        };
        if at == write_position {
            return Ok(false);
        }
        self.read_checked_block(write_position).map(|()| true)
    }

    /// Reads a block that must end at or before `limit` and checks its CRC.
    fn read_checked_block(&mut self, limit: u64) -> Result<(), ReadError> {
        let at = self.input.position;
        if limit.saturating_sub(at) < BLOCK_LEN_LEN {
            return Err(ReadError::FieldPastEnd { position: at, field: Field::BlockLength, limit });
        }
        let mut len_bytes = [0u8; BLOCK_LEN_LEN as usize];
        self.input.read_exact(&mut len_bytes, Field::BlockLength)?;
        let block_len = u32::from_be_bytes(len_bytes);
        if block_len < MIN_RECORD_BLOCK_LEN {
            return Err(ReadError::BadBlock { position: at, problem: BlockProblem::TooShort { length: block_len } });
        }
        if u64::from(block_len) > limit.saturating_sub(self.input.position) {
            let length = u64::from(block_len);
            return Err(ReadError::LengthPastEnd { position: at, field: Field::Block, length, limit });
        }
        let mut buffer = std::mem::take(&mut self.block);
        let read = self.input.read_vec(&mut buffer, block_len as usize, Field::Block);
        self.block = buffer;
        read?;
        let len = block_len as usize;
        let (body, crc) = self.block[..len].split_at(len - CRC_LEN as usize);
        let stored = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
        let computed = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), body);
        if stored != computed {
            return Err(ReadError::BlockCrc { position: at, stored, computed });
        }
        self.block_at = at;
        self.block_len = len;
        Ok(())
    }

    /// Checks a footer: the body CRC and its summary against the records read; it must end the
    /// data.
    fn accept_footer(&mut self, footer_at: u64, footer: Footer) -> Result<(), ReadError> {
        if let Some(write_position) = self.write_position {
            if self.input.position != write_position {
                return Err(ReadError::FooterBlockNotLast { position: footer_at, write_position });
            }
        }
        let tally = self.tally;
        let stated = [
            (SummaryField::BodyCrc, i64::from(footer.body_crc), i64::from(self.body_crc)),
            (SummaryField::RecordCount, footer.record_count as i64, tally.count as i64),
            (SummaryField::FirstOffset, footer.first_offset, tally.first_offset),
        ];
        let summary = [
            footer.last_offset,
            footer.first_timestamp,
            footer.last_timestamp,
            footer.min_timestamp,
            footer.max_timestamp,
        ];
        check_summary(footer_at, SummarySource::FooterBlock, &stated, summary, &tally)?;
        self.footer = Some(footer);
        self.finish()
    }

    /// At the end of valid data: the progress block, when it checked out, must agree with the
    /// records read and say sealed exactly when a footer was read.
    fn finish(&mut self) -> Result<(), ReadError> {
        self.write_position = Some(self.input.position);
        if let Some(progress) = self.progress {
            let sealed = progress.state == State::Sealed;
            if sealed != self.footer.is_some() {
                return Err(ReadError::StateMismatch { sealed });
            }
            let tally = self.tally;
            let stated = [(SummaryField::RecordCount, progress.record_count as i64, tally.count as i64)];
            let summary = [
                progress.last_offset,
                progress.first_timestamp,
                progress.last_timestamp,
                progress.min_timestamp,
                progress.max_timestamp,
            ];
            check_summary(PROGRESS_AT, SummarySource::ProgressBlock, &stated, summary, &tally)?;
        }
        self.finished = true;
        Ok(())
    }
}

/// The first disagreement between a summary and the records: the `stated` fields given, then
/// last offset, first, last, smallest and largest timestamp.
fn check_summary(
    position: u64,
    summary: SummarySource,
    stated: &[(SummaryField, i64, i64)],
    times: [i64; 5],
    tally: &Totals,
) -> Result<(), ReadError> {
    let actual =
        [tally.last_offset, tally.first_timestamp, tally.last_timestamp, tally.min_timestamp, tally.max_timestamp];
    let fields = [
        SummaryField::LastOffset,
        SummaryField::FirstTimestamp,
        SummaryField::LastTimestamp,
        SummaryField::MinTimestamp,
        SummaryField::MaxTimestamp,
    ];
    let more = fields.into_iter().zip(times).zip(actual).map(|((what, stated), actual)| (what, stated, actual));
    match stated.iter().copied().chain(more).find(|(_, stated, actual)| stated != actual) {
        Some((what, stated, actual)) => Err(ReadError::SummaryMismatch { position, summary, what, stated, actual }),
        None => Ok(()),
    }
}
