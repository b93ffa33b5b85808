//! Streaming reader: validates the fixed header, then yields records up to the write position.

use std::io::{self, BufReader, Read};

use crate::error::{Field, ReadError};
use crate::header::Header;
use crate::{HEADER_JSON_AT, MAGIC, MAGIC_AT, U64_LEN};

/// Capacity of the internal read buffer.
const READ_BUFFER: usize = 64 * 1024;
/// Without a size limit, payload buffers grow by at most this much (or by doubling) at a
/// time, so memory follows the bytes that actually arrive rather than a length prefix.
const GROW_STEP: usize = 64 * 1024;

/// One record, borrowing the reader's buffers until the next call to
/// [`MakReader::next_record`]. A null key or value reads as an empty slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Kafka offset.
    pub offset: i64,
    /// Key bytes (empty for a null key).
    pub key: &'a [u8],
    /// Value bytes (empty for a null value).
    pub value: &'a [u8],
}

/// Streaming MAK reader over any [`Read`]. Reads are buffered internally, so a bare `File`
/// is fine. Key and value buffers are reused, so once they have grown to the largest record
/// no further allocation happens.
#[derive(Debug)]
pub struct MakReader<R> {
    source: BufReader<R>,
    header: Header,
    last_offset_field: u64,
    write_position: u64,
    data_start: u64,
    /// Size limit given by the caller; buffers may then be sized from length prefixes at once.
    size_limit: Option<u64>,
    position: u64,
    /// Buffers keep their largest length ever; a record uses a prefix of each.
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    failed: bool,
}

impl<R: Read> MakReader<R> {
    /// Reads and validates the header. Without a size limit (e.g. a gzip stream) a write
    /// position beyond the real end of the data shows up later as [`ReadError::Truncated`].
    pub fn new(reader: R) -> Result<Self, ReadError> {
        Self::open(reader, None)
    }

    /// Like [`MakReader::new`], but the write position may not exceed `max_len` (pass the
    /// file size), so a corrupt write position is rejected before reading any record.
    pub fn with_size_limit(reader: R, max_len: u64) -> Result<Self, ReadError> {
        Self::open(reader, Some(max_len))
    }

    fn open(reader: R, size_limit: Option<u64>) -> Result<Self, ReadError> {
        let mut this = MakReader {
            source: BufReader::with_capacity(READ_BUFFER, reader),
            header: Header { topic: String::new(), partition: 0, start_offset: 0, start_time: 0.0 },
            last_offset_field: 0,
            write_position: 0,
            data_start: HEADER_JSON_AT,
            size_limit,
            position: MAGIC_AT,
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            failed: false,
        };
        let mut magic = [0u8; 3];
        this.read_exact_field(&mut magic, Field::Magic)?;
        if magic != MAGIC {
            return Err(ReadError::BadMagic { found: magic });
        }
        this.last_offset_field = this.read_u64(Field::LastOffset)?;
        let write_position = this.read_u64(Field::WritePosition)?;
        let header_len = this.read_u64(Field::HeaderLength)?;
        if let Some(limit) = size_limit {
            if write_position > limit {
                return Err(ReadError::WritePositionPastEnd { write_position, limit });
            }
        }
        let data_start = HEADER_JSON_AT
            .checked_add(header_len)
            .filter(|&end| size_limit.is_none_or(|limit| end <= limit))
            .ok_or(ReadError::LengthPastEnd {
                position: crate::HEADER_LEN_AT,
                field: Field::HeaderJson,
                length: header_len,
                limit: size_limit.unwrap_or(u64::MAX),
            })?;
        if write_position < data_start {
            return Err(ReadError::WritePositionBeforeData { write_position, data_start });
        }
        this.write_position = write_position;
        this.data_start = data_start;

        let mut json = Vec::new();
        this.read_payload(Payload::Header(&mut json), header_len, Field::HeaderJson)?;
        this.header = Header::from_json(&json)?;
        Ok(this)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The last-offset field (byte 3) as written; a hint only, see `docs/format.md`.
    pub fn last_offset_field(&self) -> u64 {
        self.last_offset_field
    }

    /// The write-position field (byte 11): the end of valid data.
    pub fn write_position(&self) -> u64 {
        self.write_position
    }

    /// Byte position of the first record.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// The underlying stream, positioned after the last record read (its buffered bytes are
    /// kept): callers use it to read a container format to its end, e.g. gzip's checksum trailer.
    pub fn into_inner(self) -> BufReader<R> {
        self.source
    }

    /// Bytes consumed so far; equals [`MakReader::write_position`] after the last record.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next record, or `None` exactly at the write position. After an error every
    /// further call returns [`ReadError::Poisoned`].
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        if self.failed {
            return Err(ReadError::Poisoned { position: self.position });
        }
        if self.position == self.write_position {
            return Ok(None);
        }
        match self.read_record() {
            Ok((offset, key_len, value_len)) => {
                Ok(Some(Record { offset, key: &self.key_buf[..key_len], value: &self.value_buf[..value_len] }))
            }
            Err(err) => {
                self.failed = true;
                Err(err)
            }
        }
    }

    /// Reads one record into the buffers; returns its offset and the key and value lengths.
    fn read_record(&mut self) -> Result<(i64, usize, usize), ReadError> {
        let key_len = self.read_u64(Field::KeyLength)?;
        let key_len = self.read_payload(Payload::Key, key_len, Field::Key)?;
        let value_len = self.read_u64(Field::ValueLength)?;
        let value_len = self.read_payload(Payload::Value, value_len, Field::Value)?;
        let position = self.position;
        let offset = self.read_u64(Field::Offset)?;
        let offset = i64::try_from(offset).map_err(|_| ReadError::OffsetOutOfRange { position, offset })?;
        Ok((offset, key_len, value_len))
    }

    /// Bytes left before the write position (the whole fixed header is allowed while the
    /// write position is not known yet).
    fn limit(&self) -> u64 {
        if self.position < HEADER_JSON_AT {
            HEADER_JSON_AT
        } else {
            self.write_position
        }
    }

    fn read_u64(&mut self, field: Field) -> Result<u64, ReadError> {
        let mut bytes = [0u8; 8];
        self.read_exact_field(&mut bytes, field)?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// Reads a fixed-size field that must end at or before the write position.
    fn read_exact_field(&mut self, buf: &mut [u8], field: Field) -> Result<(), ReadError> {
        let position = self.position;
        let limit = self.limit();
        let len = buf.len() as u64;
        if limit.checked_sub(position).is_none_or(|room| room < len) {
            return Err(ReadError::FieldPastEnd { position, field, limit });
        }
        self.fill(buf, field, position, len)
    }

    /// Reads a length-prefixed payload of `len` bytes; the prefix was just read, so the
    /// prefix itself is at `position - 8`. Returns the length as `usize`.
    fn read_payload(&mut self, payload: Payload<'_>, len: u64, field: Field) -> Result<usize, ReadError> {
        let prefix_at = self.position.saturating_sub(U64_LEN);
        let past_end = ReadError::LengthPastEnd { position: prefix_at, field, length: len, limit: self.write_position };
        let room = self.write_position.saturating_sub(self.position);
        if len > room {
            return Err(past_end);
        }
        let len_usize = usize::try_from(len).map_err(|_| past_end)?;
        let bounded = self.size_limit.is_some();
        let position = self.position;
        let buf = match payload {
            Payload::Header(buf) => buf,
            Payload::Key => &mut self.key_buf,
            Payload::Value => &mut self.value_buf,
        };
        let mut filled = 0usize;
        while filled < len_usize {
            if filled == buf.len() {
                // Grow: all at once when the length was checked against a real file size,
                // otherwise stepwise so a lying length prefix cannot reserve memory.
                let target =
                    if bounded { len_usize } else { len_usize.min(buf.len().saturating_mul(2).max(GROW_STEP)) };
                buf.resize(target, 0);
            }
            let end = buf.len().min(len_usize);
            let n = read_some(&mut self.source, &mut buf[filled..end])
                .map_err(|source| ReadError::Io { position: position.saturating_add(filled as u64), source })?;
            if n == 0 {
                return Err(ReadError::Truncated { position, field, needed: len, available: filled as u64 });
            }
            filled += n;
        }
        self.position = position.saturating_add(len);
        Ok(len_usize)
    }

    /// Fills `buf` completely from the source; `len` is `buf.len()`.
    fn fill(&mut self, buf: &mut [u8], field: Field, position: u64, len: u64) -> Result<(), ReadError> {
        let mut filled = 0usize;
        while filled < buf.len() {
            let n = read_some(&mut self.source, &mut buf[filled..])
                .map_err(|source| ReadError::Io { position: position.saturating_add(filled as u64), source })?;
            if n == 0 {
                return Err(ReadError::Truncated { position, field, needed: len, available: filled as u64 });
            }
            filled += n;
        }
        self.position = position.saturating_add(len);
        Ok(())
    }
}

/// Which buffer a payload goes to.
enum Payload<'a> {
    Header(&'a mut Vec<u8>),
    Key,
    Value,
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
