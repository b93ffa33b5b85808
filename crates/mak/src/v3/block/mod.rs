//! Byte layout of version 3's progress block, record blocks and footer, on byte slices only (no
//! I/O): [`OpenBlock`] collects records into columns for the writer; [`check`] validates a record
//! block whose CRC matched and [`Walk`] hands its records out, borrowing the block's bytes.

use crate::error::BlockProblem;
use crate::v2::frame::ProgressProblem;
use crate::v2::{Headers, Record, RecordRef, State, TimestampType};
use crate::v3::{
    BLOCK_HEAD_LEN, BLOCK_LEN_LEN, CRC_LEN, FLAG_GAPS, FLAG_TYPES, FOOTER_BLOCK_LEN, KIND_FOOTER, KIND_RECORDS,
    PROGRESS_LEN,
};
use crate::varint::{self, VarintProblem};

/// The progress block (bytes 12..76).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// End of the last complete block (the data start when there is none).
    pub write_position: u64,
    pub record_count: u64,
    /// -1 when empty.
    pub last_offset: i64,
    /// Of the first and last record as stored, -1 when empty or unknown.
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    /// The smallest and largest timestamp >= 0 of any record, -1 when none has one.
    pub min_timestamp: i64,
    pub max_timestamp: i64,
    pub state: State,
}

impl Progress {
    pub(crate) fn encode(&self) -> [u8; PROGRESS_LEN as usize] {
        let mut out = [0u8; PROGRESS_LEN as usize];
        out[0..8].copy_from_slice(&self.write_position.to_be_bytes());
        out[8..16].copy_from_slice(&self.record_count.to_be_bytes());
        out[16..24].copy_from_slice(&self.last_offset.to_be_bytes());
        out[24..32].copy_from_slice(&self.first_timestamp.to_be_bytes());
        out[32..40].copy_from_slice(&self.last_timestamp.to_be_bytes());
        out[40..48].copy_from_slice(&self.min_timestamp.to_be_bytes());
        out[48..56].copy_from_slice(&self.max_timestamp.to_be_bytes());
        out[56..60].copy_from_slice(&(self.state as u32).to_be_bytes());
        let crc = crc32c::crc32c(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8; PROGRESS_LEN as usize]) -> Result<Progress, ProgressProblem> {
        if bytes[60..64] != crc32c::crc32c(&bytes[..60]).to_be_bytes() {
            return Err(ProgressProblem::CrcMismatch);
        }
        let field = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let state = match u32::from_be_bytes(bytes[56..60].try_into().expect("4 bytes")) {
            0 => State::Open,
            1 => State::Sealed,
            other => return Err(ProgressProblem::UnknownState(other)),
        };
        Ok(Progress {
            write_position: field(0) as u64,
            record_count: field(8) as u64,
            last_offset: field(16),
            first_timestamp: field(24),
            last_timestamp: field(32),
            min_timestamp: field(40),
            max_timestamp: field(48),
            state,
        })
    }
}

/// The footer block of a sealed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub record_count: u64,
    /// -1 when empty.
    pub first_offset: i64,
    /// -1 when empty.
    pub last_offset: i64,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub min_timestamp: i64,
    pub max_timestamp: i64,
    /// CRC-32C of every byte from the header length (byte 76) to the footer block.
    pub body_crc: u32,
}

/// Length of the whole footer block, length field included.
pub(crate) const FOOTER_BYTES: usize = BLOCK_LEN_LEN as usize + FOOTER_BLOCK_LEN as usize;

impl Footer {
    pub(crate) fn encode(&self) -> [u8; FOOTER_BYTES] {
        let mut out = [0u8; FOOTER_BYTES];
        out[0..4].copy_from_slice(&FOOTER_BLOCK_LEN.to_be_bytes());
        out[4] = KIND_FOOTER;
        let fields = [
            self.record_count as i64,
            self.first_offset,
            self.last_offset,
            self.first_timestamp,
            self.last_timestamp,
            self.min_timestamp,
            self.max_timestamp,
        ];
        for (index, value) in fields.into_iter().enumerate() {
            out[5 + 8 * index..13 + 8 * index].copy_from_slice(&value.to_be_bytes());
        }
        out[61..65].copy_from_slice(&self.body_crc.to_be_bytes());
        let crc = crc32c::crc32c(&out[..65]);
        out[65..69].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes a footer block whose CRC matched: `body` is the bytes after the length field,
    /// without the CRC.
    pub(crate) fn decode(body: &[u8], block_len: u32) -> Result<Footer, BlockProblem> {
        if block_len != FOOTER_BLOCK_LEN {
            return Err(BlockProblem::FooterLength { length: block_len });
        }
        let field = |index: usize| i64::from_be_bytes(body[1 + 8 * index..9 + 8 * index].try_into().expect("8 bytes"));
        Ok(Footer {
            record_count: field(0) as u64,
            first_offset: field(1),
            last_offset: field(2),
            first_timestamp: field(3),
            last_timestamp: field(4),
            min_timestamp: field(5),
            max_timestamp: field(6),
            body_crc: u32::from_be_bytes(body[57..61].try_into().expect("4 bytes")),
        })
    }
}

/// The running summary of records, as the progress block and footer state it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) count: u64,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) first_timestamp: i64,
    pub(crate) last_timestamp: i64,
    pub(crate) min_timestamp: i64,
    pub(crate) max_timestamp: i64,
}

impl Default for Totals {
    fn default() -> Self {
        Totals::EMPTY
    }
}

impl Totals {
    pub(crate) const EMPTY: Totals = Totals {
        count: 0,
        first_offset: -1,
        last_offset: -1,
        first_timestamp: -1,
        last_timestamp: -1,
        min_timestamp: -1,
        max_timestamp: -1,
    };

    pub(crate) fn add(&mut self, offset: i64, timestamp: i64) {
        if self.count == 0 {
            self.first_offset = offset;
            self.first_timestamp = timestamp;
        }
        self.count += 1;
        self.last_offset = offset;
        self.last_timestamp = timestamp;
        self.note_timestamp(timestamp);
    }

    /// Takes `timestamp` into the smallest and largest, when it is one (>= 0).
    fn note_timestamp(&mut self, timestamp: i64) {
        if timestamp >= 0 {
            self.min_timestamp = if self.min_timestamp < 0 { timestamp } else { self.min_timestamp.min(timestamp) };
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
    }

    /// These totals followed by `next`'s.
    pub(crate) fn extend(&mut self, next: &Totals) {
        if next.count == 0 {
            return;
        }
        if self.count == 0 {
            self.first_offset = next.first_offset;
            self.first_timestamp = next.first_timestamp;
        }
        self.count += next.count;
        self.last_offset = next.last_offset;
        self.last_timestamp = next.last_timestamp;
        if next.min_timestamp >= 0 {
            self.min_timestamp =
                if self.min_timestamp < 0 { next.min_timestamp } else { self.min_timestamp.min(next.min_timestamp) };
            self.max_timestamp = self.max_timestamp.max(next.max_timestamp);
        }
    }
}

/// Varint length of a nullable field: 0 for null, `len + 1` otherwise.
fn nullable_len(bytes: Option<&[u8]>) -> u64 {
    bytes.map_or(0, |b| b.len() as u64 + 1)
}

/// The block being filled, as columns; closed into bytes by [`OpenBlock::encode`].
#[derive(Debug, Default)]
pub(crate) struct OpenBlock {
    count: u32,
    pub(crate) totals: Totals,
    first_type: u8,
    has_gaps: bool,
    mixed_types: bool,
    gaps: Vec<u8>,
    deltas: Vec<u8>,
    types: Vec<u8>,
    key_lens: Vec<u8>,
    value_lens: Vec<u8>,
    headers: Vec<u8>,
    data: Vec<u8>,
}

impl OpenBlock {
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The block's length in bytes (length field to CRC) were it closed now.
    pub(crate) fn encoded_len(&self) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let gaps = if self.has_gaps { self.gaps.len() } else { 0 };
        let types = if self.mixed_types { self.types.len() } else { 0 };
        let columns = gaps + self.deltas.len() + types + self.key_lens.len() + self.value_lens.len();
        BLOCK_HEAD_LEN + (columns + self.headers.len() + self.data.len()) as u64 + CRC_LEN
    }

    /// Bytes the columns hold allocated.
    pub(crate) fn allocated(&self) -> usize {
        [&self.gaps, &self.deltas, &self.types, &self.key_lens, &self.value_lens, &self.headers, &self.data]
            .iter()
            .map(|column| column.capacity())
            .sum()
    }

    /// Frees every column (the next record allocates them again).
    pub(crate) fn release(&mut self) {
        debug_assert!(self.is_empty(), "only an empty block is released");
        *self = OpenBlock::default();
    }

    /// The data column's first allocation: the block's size bound, so a block fills without
    /// reallocating.
    pub(crate) fn reserve_data(&mut self, bound: usize) {
        if self.data.capacity() == 0 {
            self.data.reserve_exact(bound);
        }
    }

    /// The bytes `record` adds to the block, or None when a key, value or header is too large
    /// for the format (2^31-1 bytes).
    pub(crate) fn record_len(record: &RecordRef<'_>) -> Option<u64> {
        let fits = |bytes: Option<&[u8]>| bytes.is_none_or(|b| i32::try_from(b.len()).is_ok());
        if !fits(record.key) || !fits(record.value) {
            return None;
        }
        let (key, value) = (nullable_len(record.key), nullable_len(record.value));
        let headers = record.headers;
        let mut total =
            10 + 10 + 1 + varint::len(key) + varint::len(value) + varint::len(headers.header_count() as u64);
        let mut bytes = key.saturating_sub(1) + value.saturating_sub(1);
        for index in 0..headers.header_count() {
            let (name, header_value) = headers.header_at(index);
            if !fits(Some(name.as_bytes())) || !fits(header_value) {
                return None;
            }
            let value_len = nullable_len(header_value);
            total += varint::len(name.len() as u64) + varint::len(value_len);
            bytes += name.len() as u64 + value_len.saturating_sub(1);
        }
        Some(total as u64 + bytes)
    }

    /// Adds `record` (whose offset is greater than the last one) to every column but the data
    /// column, which [`OpenBlock::push`] fills.
    pub(crate) fn push_meta(&mut self, record: &RecordRef<'_>) {
        let type_byte = record.timestamp_type as u8;
        if self.count == 0 {
            self.first_type = type_byte;
        } else {
            let gap = (record.offset - self.totals.last_offset - 1) as u64;
            if gap != 0 && !self.has_gaps {
                self.has_gaps = true;
                self.gaps.resize(self.count as usize - 1, 0);
            }
            if self.has_gaps {
                varint::put(&mut self.gaps, gap);
            }
            varint::put(&mut self.deltas, varint::zigzag(record.timestamp.wrapping_sub(self.totals.last_timestamp)));
            if type_byte != self.first_type && !self.mixed_types {
                self.mixed_types = true;
                self.types.resize(self.count as usize, self.first_type);
            }
        }
        if self.mixed_types {
            self.types.push(type_byte);
        }
        varint::put(&mut self.key_lens, nullable_len(record.key));
        varint::put(&mut self.value_lens, nullable_len(record.value));
        let headers = record.headers;
        varint::put(&mut self.headers, headers.header_count() as u64);
        for index in 0..headers.header_count() {
            let (name, value) = headers.header_at(index);
            varint::put(&mut self.headers, name.len() as u64);
            self.headers.extend_from_slice(name.as_bytes());
            varint::put(&mut self.headers, nullable_len(value));
            self.headers.extend_from_slice(value.unwrap_or_default());
        }
        self.count += 1;
        self.totals.add(record.offset, record.timestamp);
    }

    /// Adds `record` to the block: the hot path, a few varints and one copy of its key and value.
    pub(crate) fn push(&mut self, record: &RecordRef<'_>) {
        self.push_meta(record);
        self.data.extend_from_slice(record.key.unwrap_or_default());
        self.data.extend_from_slice(record.value.unwrap_or_default());
    }

    /// Hands the closed block to `emit` piece by piece - its head, its columns, then `data`
    /// (the data column, or a lone record's key and value when the block holds one record whose
    /// bytes were not copied) - and returns the block's CRC, which the caller appends. Empties
    /// the block, keeping its allocations.
    pub(crate) fn encode<E>(
        &mut self,
        data: Option<&[&[u8]]>,
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u32, E> {
        debug_assert!(!self.is_empty());
        let data_len: usize = data.map_or(self.data.len(), |pieces| pieces.iter().map(|p| p.len()).sum());
        let len = self.encoded_len() + data_len as u64 - self.data.len() as u64;
        let block_len = (len - BLOCK_LEN_LEN) as u32;
        let mut flags = 0;
        if self.has_gaps {
            flags |= FLAG_GAPS;
        }
        if self.mixed_types {
            flags |= FLAG_TYPES;
        }
        let mut head = [0u8; BLOCK_HEAD_LEN as usize];
        head[0..4].copy_from_slice(&block_len.to_be_bytes());
        head[4] = KIND_RECORDS;
        head[5] = flags;
        head[6] = if self.mixed_types { 0 } else { self.first_type };
        head[7..11].copy_from_slice(&self.count.to_be_bytes());
        head[11..19].copy_from_slice(&self.totals.first_offset.to_be_bytes());
        head[19..27].copy_from_slice(&self.totals.first_timestamp.to_be_bytes());
        let mut crc = 0u32;
        let mut piece = |bytes: &[u8]| -> Result<(), E> {
            crc = crc32c::crc32c_append(crc, bytes);
            emit(bytes)
        };
        piece(&head)?;
        if self.has_gaps {
            piece(&self.gaps)?;
        }
        piece(&self.deltas)?;
        if self.mixed_types {
            piece(&self.types)?;
        }
        piece(&self.key_lens)?;
        piece(&self.value_lens)?;
        piece(&self.headers)?;
        match data {
            Some(pieces) => {
                for bytes in pieces {
                    piece(bytes)?;
                }
            }
            None => piece(&self.data)?,
        }
        self.clear();
        Ok(crc)
    }

    /// Empties the block, keeping the columns' allocations.
    fn clear(&mut self) {
        self.count = 0;
        self.totals = Totals::EMPTY;
        self.has_gaps = false;
        self.mixed_types = false;
        for column in [
            &mut self.gaps,
            &mut self.deltas,
            &mut self.types,
            &mut self.key_lens,
            &mut self.value_lens,
            &mut self.headers,
            &mut self.data,
        ] {
            column.clear();
        }
    }
}

/// A record block that checked out: where its columns start in the block's body (the bytes
/// after the length field, without the CRC), and what its records add up to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    pub(crate) totals: Totals,
    flags: u8,
    uniform_type: TimestampType,
    /// Body positions of the gap, delta, type, key length, value length, header and data columns.
    starts: [usize; 7],
}

/// The position of body byte `at` counted from the block's first byte.
fn block_at(at: usize) -> u32 {
    (at as u64 + BLOCK_LEN_LEN) as u32
}

fn varint_at(body: &[u8], at: &mut usize, column: &'static str) -> Result<u64, BlockProblem> {
    let start = *at;
    varint::get(body, at).map_err(|_: VarintProblem| BlockProblem::BadVarint { column, at: block_at(start) })
}

/// A nullable length varint: `Ok(None)` for null, else a length below 2^31.
fn length_at(body: &[u8], at: &mut usize, column: &'static str) -> Result<Option<usize>, BlockProblem> {
    let start = *at;
    match varint_at(body, at, column)? {
        0 => Ok(None),
        stored if stored - 1 > i32::MAX as u64 => Err(BlockProblem::LengthTooLarge { column, at: block_at(start) }),
        stored => Ok(Some((stored - 1) as usize)),
    }
}

/// Takes `len` bytes at `at`, checked against the end of the body.
fn take<'a>(body: &'a [u8], at: &mut usize, len: usize, column: &'static str) -> Result<&'a [u8], BlockProblem> {
    let past = BlockProblem::ColumnPastBlock { column, at: block_at(*at) };
    let end = at.checked_add(len).filter(|&end| end <= body.len()).ok_or(past)?;
    let bytes = &body[*at..end];
    *at = end;
    Ok(bytes)
}

/// Checks a record block whose CRC matched (`body`: after the length field, without the CRC,
/// starting with the kind byte): every column parsed, every length against what is left.
pub(crate) fn check(body: &[u8]) -> Result<Checked, BlockProblem> {
    let head = BLOCK_HEAD_LEN as usize - BLOCK_LEN_LEN as usize;
    if body.len() < head {
        return Err(BlockProblem::TooShort { length: (body.len() + CRC_LEN as usize) as u32 });
    }
    let flags = body[1];
    if flags & !(FLAG_GAPS | FLAG_TYPES) != 0 {
        return Err(BlockProblem::UnknownFlags(flags));
    }
    let type_byte = body[2];
    let uniform_type = match TimestampType::from_byte(type_byte) {
        Some(timestamp_type) if flags & FLAG_TYPES == 0 || type_byte == 0 => timestamp_type,
        _ => return Err(BlockProblem::UnknownTimestampType(type_byte)),
    };
    let count = u32::from_be_bytes(body[3..7].try_into().expect("4 bytes"));
    if count == 0 {
        return Err(BlockProblem::NoRecords);
    }
    let first_offset = i64::from_be_bytes(body[7..15].try_into().expect("8 bytes"));
    if first_offset < 0 {
        return Err(BlockProblem::NegativeOffset(first_offset));
    }
    let first_timestamp = i64::from_be_bytes(body[15..23].try_into().expect("8 bytes"));
    let mut starts = [0usize; 7];
    let mut at = head;
    let mut totals = Totals::EMPTY;
    totals.add(first_offset, first_timestamp);
    totals.count = u64::from(count);

    starts[0] = at;
    if flags & FLAG_GAPS != 0 {
        for record in 1..count {
            let gap = varint_at(body, &mut at, "gap column")?;
            totals.last_offset = i64::try_from(gap)
                .ok()
                .and_then(|gap| totals.last_offset.checked_add(gap)?.checked_add(1))
                .ok_or(BlockProblem::OffsetOverflow { record })?;
        }
    } else {
        totals.last_offset =
            first_offset.checked_add(i64::from(count) - 1).ok_or(BlockProblem::OffsetOverflow { record: count - 1 })?;
    }
    starts[1] = at;
    for _ in 1..count {
        let delta = varint::unzigzag(varint_at(body, &mut at, "delta column")?);
        totals.last_timestamp = totals.last_timestamp.wrapping_add(delta);
        totals.note_timestamp(totals.last_timestamp);
    }
    starts[2] = at;
    if flags & FLAG_TYPES != 0 {
        for byte in take(body, &mut at, count as usize, "type column")? {
            if TimestampType::from_byte(*byte).is_none() {
                return Err(BlockProblem::UnknownTimestampType(*byte));
            }
        }
    }
    starts[3] = at;
    let mut data_len = 0usize;
    for _ in 0..count {
        data_len = data_len.saturating_add(length_at(body, &mut at, "key length column")?.unwrap_or(0));
    }
    starts[4] = at;
    for _ in 0..count {
        data_len = data_len.saturating_add(length_at(body, &mut at, "value length column")?.unwrap_or(0));
    }
    starts[5] = at;
    for record in 0..count {
        let headers = varint_at(body, &mut at, "header column")?;
        for index in 0..headers {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let key_len = length_at_plain(body, &mut at)?;
            let key = take(body, &mut at, key_len, "header column")?;
            if std::str::from_utf8(key).is_err() {
                return Err(BlockProblem::HeaderKeyNotUtf8 { record, index });
            }
            let value_len = length_at(body, &mut at, "header column")?.unwrap_or(0);
            take(body, &mut at, value_len, "header column")?;
        }
    }
    starts[6] = at;
    take(body, &mut at, data_len, "data column")?;
    if at != body.len() {
        return Err(BlockProblem::TrailingBytes { unused: (body.len() - at) as u32 });
    }
    Ok(Checked { totals, flags, uniform_type, starts })
}

/// A header key length: a plain varint length below 2^31.
fn length_at_plain(body: &[u8], at: &mut usize) -> Result<usize, BlockProblem> {
    let start = *at;
    match varint_at(body, at, "header column")? {
        len if len > i32::MAX as u64 => {
            Err(BlockProblem::LengthTooLarge { column: "header column", at: block_at(start) })
        }
        len => Ok(len as usize),
    }
}

/// One header of the header column at `bytes[*at..]`, already checked by [`check`].
pub(crate) fn header_at<'a>(bytes: &'a [u8], at: &mut usize) -> Option<(&'a str, Option<&'a [u8]>)> {
    let key_len = varint::get(bytes, at).ok()? as usize;
    let key = std::str::from_utf8(bytes.get(*at..*at + key_len)?).ok()?;
    *at += key_len;
    let value = match varint::get(bytes, at).ok()? {
        0 => None,
        stored => {
            let len = stored as usize - 1;
            let value = bytes.get(*at..*at + len)?;
            *at += len;
            Some(value)
        }
    };
    Some((key, value))
}

/// The records of a checked block, handed out one by one.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    checked: Checked,
    index: u32,
    offset: i64,
    timestamp: i64,
    /// Positions in each column, as in [`Checked::starts`].
    at: [usize; 7],
}

impl Walk {
    pub(crate) fn new(checked: Checked) -> Walk {
        Walk {
            at: checked.starts,
            checked,
            index: 0,
            offset: checked.totals.first_offset,
            timestamp: checked.totals.first_timestamp,
        }
    }

    /// Whether records are left.
    pub(crate) fn has_next(&self) -> bool {
        u64::from(self.index) < self.checked.totals.count
    }

    /// The next record of `body` (the block [`check`] accepted), `None` after the last.
    pub(crate) fn next<'a>(&mut self, body: &'a [u8]) -> Option<Record<'a>> {
        if u64::from(self.index) == self.checked.totals.count {
            return None;
        }
        let at = &mut self.at;
        if self.index > 0 {
            let gap = if self.checked.flags & FLAG_GAPS != 0 { varint::get(body, &mut at[0]).ok()? as i64 } else { 0 };
            self.offset += gap + 1;
            self.timestamp = self.timestamp.wrapping_add(varint::unzigzag(varint::get(body, &mut at[1]).ok()?));
        }
        let timestamp_type = if self.checked.flags & FLAG_TYPES != 0 {
            at[2] += 1;
            TimestampType::from_byte(body[at[2] - 1])?
        } else {
            self.checked.uniform_type
        };
        let mut field = |length_column: usize| -> Option<Option<&'a [u8]>> {
            match varint::get(body, &mut at[length_column]).ok()? {
                0 => Some(None),
                stored => {
                    let len = stored as usize - 1;
                    let bytes = body.get(at[6]..at[6] + len)?;
                    at[6] += len;
                    Some(Some(bytes))
                }
            }
        };
        let key = field(3)?;
        let value = field(4)?;
        let count = varint::get(body, &mut at[5]).ok()?;
        let headers_start = at[5];
        for _ in 0..count {
            header_at(body, &mut at[5])?;
        }
        let headers = Headers::compact(&body[headers_start..at[5]], count as u32);
        self.index += 1;
        Some(Record { offset: self.offset, timestamp: self.timestamp, timestamp_type, key, value, headers })
    }
}

#[cfg(test)]
mod tests;
