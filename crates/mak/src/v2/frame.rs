//! Byte layout of the progress block, record frames and the footer frame: encoding for the
//! writer and decoding for the reader, on byte slices only (no I/O). Frame CRCs are checked by
//! the reader before [`decode`] sees the bytes, so decoding finds writer bugs, not torn writes.

use crate::error::FrameProblem;
use crate::v2::HeaderSource;
use crate::v2::{FOOTER_FRAME_LEN, FRAME_LEN_LEN, KIND_FOOTER, KIND_RECORD, MIN_RECORD_FRAME_LEN, PROGRESS_LEN};

/// Kafka's timestamp type of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// No timestamp (the timestamp is then -1).
    NotAvailable = 0,
    /// Set by the producer.
    CreateTime = 1,
    /// Set by the broker when it appended the record.
    LogAppendTime = 2,
}

impl TimestampType {
    /// The type stored as `byte`, `None` for a byte the format does not define.
    pub fn from_byte(byte: u8) -> Option<TimestampType> {
        match byte {
            0 => Some(TimestampType::NotAvailable),
            1 => Some(TimestampType::CreateTime),
            2 => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }
}

/// Whether a footer frame ends the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Open = 0,
    Sealed = 1,
}

/// The progress block (bytes 12..60): how far the file is valid, and a summary of the records
/// before that point. Offsets and timestamps are -1 when there is no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// End of the last complete frame (the data start when there is none).
    pub write_position: u64,
    /// Records before the write position.
    pub record_count: u64,
    /// Offset of the last record, -1 when empty.
    pub last_offset: i64,
    /// Timestamp of the first record as stored (not a minimum), -1 when empty or unknown.
    pub first_timestamp: i64,
    /// Timestamp of the last record as stored, -1 when empty or unknown.
    pub last_timestamp: i64,
    /// Open, or sealed by a footer frame.
    pub state: State,
}

/// Why the bytes of a progress block were not taken as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgressProblem {
    /// A torn write: the reader falls back to scanning frames.
    CrcMismatch,
    /// A block that checks out with a state the format does not define: an error.
    UnknownState(u32),
}

impl Progress {
    pub(crate) fn encode(&self) -> [u8; PROGRESS_LEN as usize] {
        let mut out = [0u8; PROGRESS_LEN as usize];
        out[0..8].copy_from_slice(&self.write_position.to_be_bytes());
        out[8..16].copy_from_slice(&self.record_count.to_be_bytes());
        out[16..24].copy_from_slice(&self.last_offset.to_be_bytes());
        out[24..32].copy_from_slice(&self.first_timestamp.to_be_bytes());
        out[32..40].copy_from_slice(&self.last_timestamp.to_be_bytes());
        out[40..44].copy_from_slice(&(self.state as u32).to_be_bytes());
        let crc = crc32c::crc32c(&out[..44]);
        out[44..48].copy_from_slice(&crc.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8; PROGRESS_LEN as usize]) -> Result<Progress, ProgressProblem> {
        let crc = crc32c::crc32c(&bytes[..44]);
        if bytes[44..48] != crc.to_be_bytes() {
            return Err(ProgressProblem::CrcMismatch);
        }
        let field = |at: usize| {
            let mut out = [0u8; 8];
            out.copy_from_slice(&bytes[at..at + 8]);
            out
        };
        let write_position = u64::from_be_bytes(field(0));
        let record_count = u64::from_be_bytes(field(8));
        let last_offset = i64::from_be_bytes(field(16));
        let first_timestamp = i64::from_be_bytes(field(24));
        let last_timestamp = i64::from_be_bytes(field(32));
        let state = u32::from_be_bytes([bytes[40], bytes[41], bytes[42], bytes[43]]);
        let state = match state {
            0 => State::Open,
            1 => State::Sealed,
            other => return Err(ProgressProblem::UnknownState(other)),
        };
        Ok(Progress { write_position, record_count, last_offset, first_timestamp, last_timestamp, state })
    }
}

/// The footer frame of a sealed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub record_count: u64,
    /// -1 when empty.
    pub first_offset: i64,
    /// -1 when empty.
    pub last_offset: i64,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    /// CRC-32C of every byte from the header length (byte 60) to the footer frame.
    pub body_crc: u32,
}

/// Length of the whole footer frame, length field included.
pub(crate) const FOOTER_BYTES: usize = FRAME_LEN_LEN as usize + FOOTER_FRAME_LEN as usize;

impl Footer {
    pub(crate) fn encode(&self) -> [u8; FOOTER_BYTES] {
        let mut out = [0u8; FOOTER_BYTES];
        out[0..4].copy_from_slice(&FOOTER_FRAME_LEN.to_be_bytes());
        out[4] = KIND_FOOTER;
        out[5..13].copy_from_slice(&self.record_count.to_be_bytes());
        out[13..21].copy_from_slice(&self.first_offset.to_be_bytes());
        out[21..29].copy_from_slice(&self.last_offset.to_be_bytes());
        out[29..37].copy_from_slice(&self.first_timestamp.to_be_bytes());
        out[37..45].copy_from_slice(&self.last_timestamp.to_be_bytes());
        out[45..49].copy_from_slice(&self.body_crc.to_be_bytes());
        let crc = crc32c::crc32c(&out[..49]);
        out[49..53].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

/// A record to append. Headers keep their order; repeated keys are kept.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Kafka offset, `>= 0` and greater than the previous record's.
    pub offset: i64,
    /// Milliseconds since the epoch, -1 when not available.
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    /// `None` is a null key, distinct from an empty one.
    pub key: Option<&'a [u8]>,
    /// `None` is a null value (a tombstone), distinct from an empty one.
    pub value: Option<&'a [u8]>,
    /// (key, value) pairs in order; a `None` value is a null header value. A slice, array or
    /// `Vec` of pairs works, as does any other [`HeaderSource`].
    pub headers: &'a dyn HeaderSource,
}

/// Bytes of the fixed fields at the start of a record frame: length, kind, offset, timestamp,
/// timestamp type.
pub(crate) const RECORD_PREFIX: usize = 4 + 1 + 8 + 8 + 1;

impl RecordRef<'_> {
    /// The frame length (bytes after the length field), `None` when a key, value or header
    /// does not fit its length field or the frame does not fit a `u32`.
    pub(crate) fn frame_len(&self) -> Option<u32> {
        // The payload length of a nullable field, if it fits its i32 length prefix.
        let nullable = |bytes: Option<&[u8]>| -> Option<u64> {
            let len = bytes.map_or(0, <[u8]>::len);
            i32::try_from(len).ok().map(|_| len as u64)
        };
        let mut total = u64::from(MIN_RECORD_FRAME_LEN) + nullable(self.key)? + nullable(self.value)?;
        u32::try_from(self.headers.header_count()).ok()?;
        for index in 0..self.headers.header_count() {
            let (key, value) = self.headers.header_at(index);
            u32::try_from(key.len()).ok()?;
            let header = 4 + key.len() as u64 + 4 + nullable(value)?;
            total = total.checked_add(header)?;
        }
        u32::try_from(total).ok()
    }

    /// Hands every byte of the frame but its CRC to `emit`, in order. `frame_len` is what
    /// [`RecordRef::frame_len`] returned, so every length fits its field.
    pub(crate) fn encode<E>(&self, frame_len: u32, mut emit: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut prefix = [0u8; RECORD_PREFIX];
        prefix[0..4].copy_from_slice(&frame_len.to_be_bytes());
        prefix[4] = KIND_RECORD;
        prefix[5..13].copy_from_slice(&self.offset.to_be_bytes());
        prefix[13..21].copy_from_slice(&self.timestamp.to_be_bytes());
        prefix[21] = self.timestamp_type as u8;
        emit(&prefix)?;
        let mut nullable = |bytes: Option<&[u8]>| -> Result<(), E> {
            let len = bytes.map_or(-1, |b| b.len() as i32);
            emit(&len.to_be_bytes())?;
            emit(bytes.unwrap_or_default())
        };
        nullable(self.key)?;
        nullable(self.value)?;
        emit(&(self.headers.header_count() as u32).to_be_bytes())?;
        for index in 0..self.headers.header_count() {
            let (key, value) = self.headers.header_at(index);
            emit(&(key.len() as u32).to_be_bytes())?;
            emit(key.as_bytes())?;
            let len = value.map_or(-1, |b| b.len() as i32);
            emit(&len.to_be_bytes())?;
            emit(value.unwrap_or_default())?;
        }
        Ok(())
    }
}

/// A record read from a file, borrowing the reader's frame buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset: i64,
    /// Milliseconds since the epoch, -1 when not available.
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    /// `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers in their stored order.
    pub headers: Headers<'a>,
}

/// A record's headers, already validated, iterated without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    bytes: &'a [u8],
    remaining: u32,
    /// Version 3's varint lengths rather than version 2's fixed-width ones.
    compact: bool,
}

impl<'a> Headers<'a> {
    /// No headers (version 1 records have none).
    pub const EMPTY: Headers<'static> = Headers { bytes: &[], remaining: 0, compact: false };

    /// `count` headers of a version 3 header column, already checked.
    pub(crate) fn compact(bytes: &'a [u8], count: u32) -> Headers<'a> {
        Headers { bytes, remaining: count, compact: true }
    }

    /// Number of headers left to iterate.
    pub fn len(&self) -> usize {
        self.remaining as usize
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        // The frame or block was checked whole, so parsing cannot fail here; stopping is the
        // harmless answer if it ever did.
        let (key, value) = if self.compact {
            let mut at = 0;
            let header = crate::v3::block::header_at(self.bytes, &mut at)?;
            self.bytes = &self.bytes[at..];
            header
        } else {
            let mut cursor = Cursor::new(self.bytes);
            let header = read_header(&mut cursor, 0).ok()?;
            self.bytes = &self.bytes[cursor.at..];
            header
        };
        self.remaining -= 1;
        Some((key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// Equal when they hold the same headers in the same order, whichever version's bytes they read.
impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.remaining == other.remaining && Iterator::eq(*self, *other)
    }
}

impl Eq for Headers<'_> {}

/// A record with its own bytes (for tests, and callers that keep records past the next read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record<'_> {
    pub fn to_owned_record(&self) -> OwnedRecord {
        OwnedRecord {
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type,
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: self.headers.map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec))).collect(),
        }
    }
}

impl OwnedRecord {
    /// The headers as borrowed pairs.
    pub fn header_refs(&self) -> Vec<(&str, Option<&[u8]>)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect()
    }

    /// This record for appending.
    pub fn as_record_ref(&self) -> RecordRef<'_> {
        let headers: &dyn HeaderSource = &self.headers;
        RecordRef {
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers,
        }
    }
}

/// Decodes a footer frame whose CRC matched: `body` is the bytes after the length field,
/// without the CRC, starting with the kind byte.
pub(crate) fn decode_footer(body: &[u8], frame_len: u32) -> Result<Footer, FrameProblem> {
    if frame_len != FOOTER_FRAME_LEN {
        return Err(FrameProblem::FooterLength { length: frame_len });
    }
    let mut cursor = Cursor::new(body);
    let base = FRAME_LEN_LEN as u32;
    cursor.array::<1>("kind", base)?;
    Ok(Footer {
        record_count: u64::from_be_bytes(cursor.array("record count", base)?),
        first_offset: i64::from_be_bytes(cursor.array("first offset", base)?),
        last_offset: i64::from_be_bytes(cursor.array("last offset", base)?),
        first_timestamp: i64::from_be_bytes(cursor.array("first timestamp", base)?),
        last_timestamp: i64::from_be_bytes(cursor.array("last timestamp", base)?),
        body_crc: u32::from_be_bytes(cursor.array("body crc", base)?),
    })
}

/// Decodes a record frame whose CRC matched: `body` is the bytes after the length field,
/// without the CRC, starting with the kind byte. Every header is checked here, so iterating
/// [`Headers`] later cannot fail.
pub(crate) fn decode_record(body: &[u8], frame_len: u32) -> Result<Record<'_>, FrameProblem> {
    let mut cursor = Cursor::new(body);
    let cursor = &mut cursor;
    if frame_len < MIN_RECORD_FRAME_LEN {
        return Err(FrameProblem::TooShort { length: frame_len });
    }
    // Positions in problems count from the frame's first byte (its length field).
    let base = FRAME_LEN_LEN as u32;
    cursor.array::<1>("kind", base)?;
    let offset = i64::from_be_bytes(cursor.array("offset", base)?);
    if offset < 0 {
        return Err(FrameProblem::NegativeOffset(offset));
    }
    let timestamp = i64::from_be_bytes(cursor.array("timestamp", base)?);
    let type_byte = cursor.array::<1>("timestamp type", base)?[0];
    let timestamp_type = TimestampType::from_byte(type_byte).ok_or(FrameProblem::UnknownTimestampType(type_byte))?;
    let key = cursor.nullable("key", base)?;
    let value = cursor.nullable("value", base)?;
    let count = u32::from_be_bytes(cursor.array("header count", base)?);
    let headers_at = cursor.at;
    for index in 0..count {
        read_header(cursor, base).map_err(|problem| match problem {
            HeaderError::Frame(problem) => problem,
            HeaderError::NotUtf8 => FrameProblem::HeaderKeyNotUtf8 { index },
        })?;
    }
    let headers = Headers { bytes: &cursor.bytes[headers_at..cursor.at], remaining: count, compact: false };
    let unused = cursor.bytes.len() - cursor.at;
    if unused != 0 {
        return Err(FrameProblem::TrailingBytes { unused: unused as u32 });
    }
    Ok(Record { offset, timestamp, timestamp_type, key, value, headers })
}

enum HeaderError {
    Frame(FrameProblem),
    NotUtf8,
}

impl From<FrameProblem> for HeaderError {
    fn from(problem: FrameProblem) -> Self {
        HeaderError::Frame(problem)
    }
}

fn read_header<'a>(cursor: &mut Cursor<'a>, base: u32) -> Result<(&'a str, Option<&'a [u8]>), HeaderError> {
    let key_len = u32::from_be_bytes(cursor.array("header key length", base)?);
    let key = cursor.take(key_len as usize, "header key", base)?;
    let key = std::str::from_utf8(key).map_err(|_| HeaderError::NotUtf8)?;
    let value = cursor.nullable("header value", base)?;
    Ok((key, value))
}

/// Reads fields front to back from a slice, every read checked against what is left.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, at: 0 }
    }

    /// `base` is added to the position named in a problem.
    fn take(&mut self, len: usize, field: &'static str, base: u32) -> Result<&'a [u8], FrameProblem> {
        let past = FrameProblem::FieldPastFrame { field, at: base.saturating_add(self.at as u32) };
        let end = self.at.checked_add(len).filter(|&end| end <= self.bytes.len()).ok_or(past)?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str, base: u32) -> Result<[u8; N], FrameProblem> {
        let bytes = self.take(N, field, base)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// An `i32` length (-1 = null) and that many bytes.
    fn nullable(&mut self, field: &'static str, base: u32) -> Result<Option<&'a [u8]>, FrameProblem> {
        let len = i32::from_be_bytes(self.array(field, base)?);
        match len {
            -1 => Ok(None),
            len if len < -1 => Err(FrameProblem::NegativeLength(len)),
            len => self.take(len as usize, field, base).map(Some),
        }
    }
}
