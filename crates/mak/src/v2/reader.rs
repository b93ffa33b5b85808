//! Streaming version 2 reader: validates the preamble, progress block and header, then yields
//! records frame by frame up to the write position, and at the end checks the footer and the
//! progress block against what it read.

use std::io::{self, BufReader, Read};

use crate::error::{Field, FrameProblem, ReadError, SummaryField, SummarySource};
use crate::v2::frame::{self, BlockProblem};
use crate::v2::writer::Totals;
use crate::v2::{
    Footer, Header, Progress, Record, State, CRC_LEN, FLAGS_AT, FRAME_LEN_LEN, HEADER_JSON_AT, HEADER_LEN_AT,
    KIND_FOOTER, KIND_RECORD, KNOWN_FLAGS, MAGIC, MAGIC_AT, MIN_RECORD_FRAME_LEN, PROGRESS_AT, PROGRESS_LEN, VERSION,
};

/// Capacity of the internal read buffer.
const READ_BUFFER: usize = 64 * 1024;
/// Without a size limit, buffers grow by at most this much (or by doubling) at a time, so
/// memory follows the bytes that actually arrive rather than a length prefix.
const GROW_STEP: usize = 64 * 1024;

/// What the first bytes of a file say, read without touching any frame: enough for `verify`
/// to report a compressed object's range from a ranged read of its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    /// `None` when the block's CRC does not match (a torn write): only a full read can tell.
    pub progress: Option<Progress>,
    /// Byte position of the first frame.
    pub data_start: u64,
}

/// Reads only the preamble, progress block and header of a version 2 file.
pub fn read_summary<R: Read>(reader: R) -> Result<Summary, ReadError> {
    let reader = MakReader::new(reader)?;
    Ok(Summary { header: reader.header, progress: reader.progress, data_start: reader.data_start })
}

/// Reads a whole version 2 file from a byte slice, with the slice length as size limit, and
/// returns the number of records. Meant for fuzz targets and quick validation.
pub fn read_all(bytes: &[u8]) -> Result<u64, ReadError> {
    let mut reader = MakReader::with_size_limit(bytes, bytes.len() as u64)?;
    while reader.next_record()?.is_some() {}
    Ok(reader.records_read())
}

/// Streaming version 2 reader over any [`Read`] (buffered internally). The frame buffer is
/// reused, so once it has grown to the largest frame no further allocation happens.
#[derive(Debug)]
pub struct MakReader<R> {
    source: BufReader<R>,
    header: Header,
    /// `None` when the block's CRC failed: frames are then scanned until one does not check out.
    progress: Option<Progress>,
    /// Size limit given by the caller; buffers may then be sized from length prefixes at once.
    size_limit: Option<u64>,
    data_start: u64,
    /// End of valid data: the progress block's write position, or where scanning stopped.
    write_position: Option<u64>,
    position: u64,
    /// Bytes of the current frame after its length field, CRC included.
    frame: Vec<u8>,
    /// CRC-32C of bytes 60..position, compared with the footer's body CRC.
    body_crc: u32,
    /// What the records read so far add up to, compared with the footer and progress block.
    tally: Totals,
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
        let mut this = MakReader {
            source: BufReader::with_capacity(READ_BUFFER, reader),
            header: Header { topic: String::new(), partition: 0, start_offset: 0, created_ms: None, writer: None },
            progress: None,
            size_limit,
            data_start: HEADER_JSON_AT,
            write_position: None,
            position: MAGIC_AT,
            frame: Vec::new(),
            body_crc: 0,
            tally: Totals::EMPTY,
            footer: None,
            finished: false,
            failed: false,
        };
        let mut preamble = [0u8; PROGRESS_AT as usize];
        this.read_exact(&mut preamble, Field::Preamble)?;
        let (magic, rest) = preamble.split_at(MAGIC.len());
        if magic != MAGIC {
            let mut found = [0u8; 8];
            found.copy_from_slice(magic);
            return Err(ReadError::BadMagicV2 { found });
        }
        let version = u16::from_be_bytes([rest[0], rest[1]]);
        if version != VERSION {
            return Err(ReadError::UnsupportedVersion { version });
        }
        let flags = u16::from_be_bytes([rest[2], rest[3]]);
        debug_assert_eq!(this.position, FLAGS_AT + 2);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(ReadError::UnknownFlags { flags });
        }

        let mut block = [0u8; PROGRESS_LEN as usize];
        this.read_exact(&mut block, Field::ProgressBlock)?;
        this.progress = match Progress::decode(&block) {
            Ok(progress) => Some(progress),
            Err(BlockProblem::CrcMismatch) => None,
            Err(BlockProblem::UnknownState(state)) => return Err(ReadError::UnknownState { state }),
        };

        let mut len_bytes = [0u8; 4];
        this.read_exact(&mut len_bytes, Field::HeaderLength)?;
        let header_len = u32::from_be_bytes(len_bytes);
        let data_start = crate::v2::data_start(header_len);
        let limit = size_limit.unwrap_or(u64::MAX);
        if data_start > limit {
            let length = u64::from(header_len);
            return Err(ReadError::LengthPastEnd { position: HEADER_LEN_AT, field: Field::HeaderJson, length, limit });
        }
        if let Some(progress) = &this.progress {
            let write_position = progress.write_position;
            if write_position < data_start || write_position > limit {
                return Err(ReadError::WritePositionOutOfRange { write_position, data_start, limit });
            }
            this.write_position = Some(write_position);
        }
        this.data_start = data_start;

        let mut json = Vec::new();
        this.read_vec(&mut json, header_len as usize, Field::HeaderJson)?;
        let crc_at = this.position;
        let mut crc_bytes = [0u8; CRC_LEN as usize];
        this.read_exact(&mut crc_bytes, Field::HeaderCrc)?;
        let stored = u32::from_be_bytes(crc_bytes);
        let computed = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), &json);
        if stored != computed {
            return Err(ReadError::HeaderCrc { position: crc_at, stored, computed });
        }
        this.header = Header::from_json(&json)?;
        this.body_crc = crc32c::crc32c_append(computed, &crc_bytes);
        Ok(this)
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

    /// Byte position of the first frame.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Bytes consumed so far; the write position once `next_record` returned `None`.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Records returned so far.
    pub fn records_read(&self) -> u64 {
        self.tally.count
    }

    /// The underlying stream, positioned after the last frame read (its buffered bytes are
    /// kept): callers use it to read a container format to its end, e.g. gzip's checksum trailer.
    pub fn into_inner(self) -> BufReader<R> {
        self.source
    }

    /// The footer, once the reader reached the end of a sealed file.
    pub fn footer(&self) -> Option<&Footer> {
        self.footer.as_ref()
    }

    /// What the records read so far add up to.
    pub(crate) fn totals(&self) -> Totals {
        self.tally
    }

    /// CRC-32C of bytes 60..position: what a footer written here would hold.
    pub(crate) fn body_crc(&self) -> u32 {
        self.body_crc
    }

    /// The next record, or `None` at the end of valid data, after checking the footer and the
    /// progress block against the records read. After an error every further call returns
    /// [`ReadError::Poisoned`].
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        if self.failed {
            return Err(ReadError::Poisoned { position: self.position });
        }
        if self.finished {
            return Ok(None);
        }
        let (frame_at, frame_len) = match self.advance() {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(err) => {
                self.failed = true;
                return Err(err);
            }
        };
        let frame_bytes = &self.frame[..frame_len as usize];
        let record = match frame::decode_record(&frame_bytes[..frame_bytes.len() - CRC_LEN as usize], frame_len) {
            Ok(record) => record,
            Err(problem) => {
                self.failed = true;
                return Err(ReadError::BadFrame { position: frame_at, problem });
            }
        };
        let tally = &mut self.tally;
        if tally.count > 0 && record.offset <= tally.last_offset {
            self.failed = true;
            let previous = tally.last_offset;
            return Err(ReadError::OffsetNotIncreasing { position: frame_at, offset: record.offset, previous });
        }
        tally.add(record.offset, record.timestamp);
        self.body_crc = crc32c::crc32c_append(self.body_crc, &frame_len.to_be_bytes());
        self.body_crc = crc32c::crc32c_append(self.body_crc, frame_bytes);
        Ok(Some(record))
    }

    /// Reads the next frame. A record frame is left in `self.frame` and its position and
    /// length returned; a footer, or the end of valid data, finishes the read (`None`).
    fn advance(&mut self) -> Result<Option<(u64, u32)>, ReadError> {
        let Some((frame_at, frame_len)) = self.read_frame()? else {
            self.finish()?;
            return Ok(None);
        };
        let body = &self.frame[..frame_len as usize - CRC_LEN as usize];
        match body[0] {
            KIND_RECORD => Ok(Some((frame_at, frame_len))),
            KIND_FOOTER => {
                let footer = frame::decode_footer(body, frame_len)
                    .map_err(|problem| ReadError::BadFrame { position: frame_at, problem })?;
                self.accept_footer(frame_at, footer)?;
                Ok(None)
            }
            kind => Err(ReadError::BadFrame { position: frame_at, problem: FrameProblem::UnknownKind(kind) }),
        }
    }

    /// Reads the next frame into `self.frame` and checks its length and CRC; returns its
    /// position and length, or `None` at the end of valid data. When scanning (torn progress
    /// block) the first frame that does not check out is the end, as the write position would
    /// have been.
    fn read_frame(&mut self) -> Result<Option<(u64, u32)>, ReadError> {
        let at = self.position;
        let Some(write_position) = self.write_position else {
            return match self.read_checked_frame(self.size_limit.unwrap_or(u64::MAX)) {
                Ok(frame) => Ok(Some(frame)),
                Err(err @ ReadError::Io { .. }) => Err(err),
                Err(_) => {
                    self.position = at;
                    Ok(None)
                }
            };
        };
        if at == write_position {
            return Ok(None);
        }
        self.read_checked_frame(write_position).map(Some)
    }

    /// Reads a frame that must end at or before `limit` and checks its CRC.
    fn read_checked_frame(&mut self, limit: u64) -> Result<(u64, u32), ReadError> {
        let at = self.position;
        if limit.saturating_sub(at) < FRAME_LEN_LEN {
            return Err(ReadError::FieldPastEnd { position: at, field: Field::FrameLength, limit });
        }
        let mut len_bytes = [0u8; FRAME_LEN_LEN as usize];
        self.read_exact(&mut len_bytes, Field::FrameLength)?;
        let frame_len = u32::from_be_bytes(len_bytes);
        if frame_len < MIN_RECORD_FRAME_LEN {
            return Err(ReadError::BadFrame { position: at, problem: FrameProblem::TooShort { length: frame_len } });
        }
        if u64::from(frame_len) > limit.saturating_sub(self.position) {
            let length = u64::from(frame_len);
            return Err(ReadError::LengthPastEnd { position: at, field: Field::Frame, length, limit });
        }
        let mut frame = std::mem::take(&mut self.frame);
        let read = self.read_vec(&mut frame, frame_len as usize, Field::Frame);
        self.frame = frame;
        read?;
        let (body, crc) = self.frame[..frame_len as usize].split_at(frame_len as usize - CRC_LEN as usize);
        let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), body);
        if stored != computed {
            return Err(ReadError::FrameCrc { position: at, stored, computed });
        }
        Ok((at, frame_len))
    }

    /// Checks a footer: the body CRC and its summary against the records read; it must end the
    /// data.
    fn accept_footer(&mut self, footer_at: u64, footer: Footer) -> Result<(), ReadError> {
        if let Some(write_position) = self.write_position {
            if self.position != write_position {
                return Err(ReadError::FooterNotLast { position: footer_at, write_position });
            }
        }
        let mismatch = |what, stated: i64, actual: i64| {
            (stated != actual).then_some(ReadError::SummaryMismatch {
                position: footer_at,
                summary: SummarySource::Footer,
                what,
                stated,
                actual,
            })
        };
        let tally = self.tally;
        let checks = [
            mismatch(SummaryField::BodyCrc, footer.body_crc.into(), self.body_crc.into()),
            mismatch(SummaryField::RecordCount, footer.record_count as i64, tally.count as i64),
            mismatch(SummaryField::FirstOffset, footer.first_offset, tally.first_offset),
            mismatch(SummaryField::LastOffset, footer.last_offset, tally.last_offset),
            mismatch(SummaryField::FirstTimestamp, footer.first_timestamp, tally.first_timestamp),
            mismatch(SummaryField::LastTimestamp, footer.last_timestamp, tally.last_timestamp),
        ];
        if let Some(err) = checks.into_iter().flatten().next() {
            return Err(err);
        }
        self.footer = Some(footer);
        self.finish()
    }

    /// At the end of valid data: the progress block, when it checked out, must agree with the
    /// records read and say sealed exactly when a footer was read.
    fn finish(&mut self) -> Result<(), ReadError> {
        self.write_position = Some(self.position);
        if let Some(progress) = self.progress {
            let sealed = progress.state == State::Sealed;
            if sealed != self.footer.is_some() {
                return Err(ReadError::StateMismatch { sealed });
            }
            let mismatch = |what, stated: i64, actual: i64| {
                (stated != actual).then_some(ReadError::SummaryMismatch {
                    position: PROGRESS_AT,
                    summary: SummarySource::ProgressBlock,
                    what,
                    stated,
                    actual,
                })
            };
            let tally = self.tally;
            let checks = [
                mismatch(SummaryField::RecordCount, progress.record_count as i64, tally.count as i64),
                mismatch(SummaryField::LastOffset, progress.last_offset, tally.last_offset),
                mismatch(SummaryField::FirstTimestamp, progress.first_timestamp, tally.first_timestamp),
                mismatch(SummaryField::LastTimestamp, progress.last_timestamp, tally.last_timestamp),
            ];
            if let Some(err) = checks.into_iter().flatten().next() {
                return Err(err);
            }
        }
        self.finished = true;
        Ok(())
    }

    /// Fills `buf` completely from the source.
    fn read_exact(&mut self, buf: &mut [u8], field: Field) -> Result<(), ReadError> {
        let position = self.position;
        let mut filled = 0usize;
        while filled < buf.len() {
            let n = read_some(&mut self.source, &mut buf[filled..])
                .map_err(|source| ReadError::Io { position: position.saturating_add(filled as u64), source })?;
            if n == 0 {
                let needed = buf.len() as u64;
                return Err(ReadError::Truncated { position, field, needed, available: filled as u64 });
            }
            filled += n;
        }
        self.position = position.saturating_add(buf.len() as u64);
        Ok(())
    }

    /// Reads `len` bytes into `buf` (which keeps its capacity between calls). The length was
    /// checked against the write position or size limit; without a size limit the buffer only
    /// grows as bytes arrive, so a lying length reserves nothing.
    fn read_vec(&mut self, buf: &mut Vec<u8>, len: usize, field: Field) -> Result<(), ReadError> {
        let position = self.position;
        let bounded = self.size_limit.is_some();
        let mut filled = 0usize;
        while filled < len {
            if filled == buf.len() {
                let target = if bounded { len } else { len.min(buf.len().saturating_mul(2).max(GROW_STEP)) };
                buf.resize(target, 0);
            }
            let end = buf.len().min(len);
            let n = read_some(&mut self.source, &mut buf[filled..end])
                .map_err(|source| ReadError::Io { position: position.saturating_add(filled as u64), source })?;
            if n == 0 {
                let needed = len as u64;
                return Err(ReadError::Truncated { position, field, needed, available: filled as u64 });
            }
            filled += n;
        }
        self.position = position.saturating_add(len as u64);
        Ok(())
    }
}

/// One `read`, retried on `Interrupted`.
fn read_some(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match source.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
