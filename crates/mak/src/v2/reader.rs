//! Streaming version 2 reader: validates the preamble, progress block and header, then yields
//! records frame by frame up to the write position, and at the end checks the footer and the
//! progress block against what it read.

use std::io::{BufReader, Read};

use crate::error::{Field, FrameProblem, ReadError, SummaryField, SummarySource};
use crate::input::Input;
use crate::preamble;
use crate::v2::frame::{self, ProgressProblem};
use crate::v2::writer::Totals;
use crate::v2::{
    Footer, Header, Progress, Record, State, CRC_LEN, FRAME_LEN_LEN, HEADER_LEN_AT, KIND_FOOTER, KIND_RECORD,
    MIN_RECORD_FRAME_LEN, PROGRESS_AT, PROGRESS_LEN, VERSION,
};

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
    input: Input<R>,
    header: Header,
    /// `None` when the block's CRC failed: frames are then scanned until one does not check out.
    progress: Option<Progress>,
    data_start: u64,
    /// End of valid data: the progress block's write position, or where scanning stopped.
    write_position: Option<u64>,
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
        let mut input = Input::new(reader, size_limit);
        let mut preamble = [0u8; preamble::PREAMBLE_LEN];
        input.read_exact(&mut preamble, Field::Preamble)?;
        preamble::check(&preamble, VERSION)?;
        debug_assert_eq!(input.position, PROGRESS_AT);
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
            frame: Vec::new(),
            body_crc: head.body_crc,
            tally: Totals::EMPTY,
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

    /// Byte position of the first frame.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Bytes consumed so far; the write position once `next_record` returned `None`.
    pub fn position(&self) -> u64 {
        self.input.position
    }

    /// Records returned so far.
    pub fn records_read(&self) -> u64 {
        self.tally.count
    }

    /// The underlying stream, positioned after the last frame read (its buffered bytes are
    /// kept): callers use it to read a container format to its end, e.g. gzip's checksum trailer.
    pub fn into_inner(self) -> BufReader<R> {
        self.input.into_inner()
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
            return Err(ReadError::Poisoned { position: self.input.position });
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
        let at = self.input.position;
        let Some(write_position) = self.write_position else {
            return match self.read_checked_frame(self.input.limit()) {
                Ok(frame) => Ok(Some(frame)),
                Err(err @ ReadError::Io { .. }) => Err(err),
                Err(_) => {
                    self.input.position = at;
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
        let at = self.input.position;
        if limit.saturating_sub(at) < FRAME_LEN_LEN {
            return Err(ReadError::FieldPastEnd { position: at, field: Field::FrameLength, limit });
        }
        let mut len_bytes = [0u8; FRAME_LEN_LEN as usize];
        self.input.read_exact(&mut len_bytes, Field::FrameLength)?;
        let frame_len = u32::from_be_bytes(len_bytes);
        if frame_len < MIN_RECORD_FRAME_LEN {
            return Err(ReadError::BadFrame { position: at, problem: FrameProblem::TooShort { length: frame_len } });
        }
        if u64::from(frame_len) > limit.saturating_sub(self.input.position) {
            let length = u64::from(frame_len);
            return Err(ReadError::LengthPastEnd { position: at, field: Field::Frame, length, limit });
        }
        let mut frame = std::mem::take(&mut self.frame);
        let read = self.input.read_vec(&mut frame, frame_len as usize, Field::Frame);
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
            if self.input.position != write_position {
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
        self.write_position = Some(self.input.position);
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
}
