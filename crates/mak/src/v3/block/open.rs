//! The record block being filled: records go into columns as they are appended, and the block
//! is closed into the pieces one vectored write puts on disk.
//!
//! Memory: a block of bound `b` holds at most about `b` bytes allocated. Keys and values go into
//! a data column allocated once at 7/8 of `b` and never grown; the other columns (deltas,
//! lengths, headers) grow as vectors do, up to twice what they hold, so they may hold 1/16 of
//! `b`. A record that would pass either share closes the block first ([`BlockRoom::fits`]).

use crate::v2::RecordRef;
use crate::v3::{BLOCK_HEAD_LEN, BLOCK_LEN_LEN, CRC_LEN, FLAG_GAPS, FLAG_TYPES, KIND_RECORDS};
use crate::varint;

use super::{nullable_len, Totals};

/// What a record adds to the open block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordSize {
    /// Its key and value bytes: the data column.
    pub(crate) data: u64,
    /// Every other column: its varints and headers, and the bytes a first gap or a first
    /// differing timestamp type adds for the records before it.
    pub(crate) meta: u64,
}

impl RecordSize {
    pub(crate) fn total(&self) -> u64 {
        self.data + self.meta
    }
}

/// How much a block of a given bound may hold: see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockRoom {
    pub(crate) data: usize,
    pub(crate) meta: usize,
}

impl BlockRoom {
    pub(crate) fn of(bound: usize) -> BlockRoom {
        BlockRoom { data: bound - bound / 8, meta: bound / 16 }
    }
}

/// The pieces of a closed block in file order (head, columns, data, CRC) for one vectored
/// write; `data` pieces may be the block's own column or a lone record's key and value.
pub(crate) struct ClosedBlock<'a> {
    head: [u8; BLOCK_HEAD_LEN as usize],
    crc: [u8; CRC_LEN as usize],
    /// The block's CRC and the length it covers (every piece but the CRC itself).
    covered: (u32, usize),
    columns: [&'a [u8]; 6],
    data: &'a [&'a [u8]],
}

impl<'a> ClosedBlock<'a> {
    /// Every piece in file order, empty columns included.
    pub(crate) fn pieces(&'a self) -> impl Iterator<Item = &'a [u8]> + 'a {
        std::iter::once(&self.head[..])
            .chain(self.columns.iter().copied())
            .chain(self.data.iter().copied())
            .chain(std::iter::once(&self.crc[..]))
    }

    /// The CRC of every piece but the last, and their length.
    pub(crate) fn covered(&self) -> (u32, usize) {
        self.covered
    }

    /// The last piece: the block's CRC.
    pub(crate) fn crc_bytes(&self) -> &[u8] {
        &self.crc
    }
}

/// The block being filled, as columns; closed by [`OpenBlock::close`].
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
        BLOCK_HEAD_LEN + self.meta_len() as u64 + self.data.len() as u64 + CRC_LEN
    }

    /// Bytes of every column but the data column, as they would be written.
    pub(crate) fn meta_len(&self) -> usize {
        let gaps = if self.has_gaps { self.gaps.len() } else { 0 };
        let types = if self.mixed_types { self.types.len() } else { 0 };
        gaps + self.deltas.len() + types + self.key_lens.len() + self.value_lens.len() + self.headers.len()
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

    /// Whether a record of `size` fits beside what the block holds within `room`. An empty
    /// block takes any record (one larger than the data share is written from the record,
    /// see the writer).
    pub(crate) fn fits(&self, size: RecordSize, room: BlockRoom) -> bool {
        self.is_empty()
            || (self.data.len() as u64 + size.data <= room.data as u64
                && self.meta_len() as u64 + size.meta <= room.meta as u64)
    }

    /// The data column's one allocation, at its share of the block's bound, so that a block
    /// fills without reallocating.
    pub(crate) fn reserve_data(&mut self, room: BlockRoom) {
        if self.data.capacity() == 0 {
            self.data.reserve_exact(room.data);
        }
    }

    /// What `record` adds to this block, or None when a key, value or header is too large for
    /// the format (2^31-1 bytes).
    pub(crate) fn size_of(&self, record: &RecordRef<'_>) -> Option<RecordSize> {
        let fits = |bytes: Option<&[u8]>| bytes.is_none_or(|b| i32::try_from(b.len()).is_ok());
        if !fits(record.key) || !fits(record.value) {
            return None;
        }
        let (key, value) = (nullable_len(record.key), nullable_len(record.value));
        let headers = record.headers;
        let mut meta = varint::len(key) + varint::len(value) + varint::len(headers.header_count() as u64);
        for index in 0..headers.header_count() {
            let (name, header_value) = headers.header_at(index);
            if !fits(Some(name.as_bytes())) || !fits(header_value) {
                return None;
            }
            let value_len = nullable_len(header_value);
            meta += varint::len(name.len() as u64) + name.len() + varint::len(value_len);
            meta += value_len.saturating_sub(1) as usize;
        }
        if self.count > 0 {
            let gap = (record.offset - self.totals.last_offset - 1) as u64;
            if self.has_gaps || gap != 0 {
                meta += varint::len(gap) + if self.has_gaps { 0 } else { self.count as usize - 1 };
            }
            meta += varint::len(varint::zigzag(record.timestamp.wrapping_sub(self.totals.last_timestamp)));
            let type_byte = record.timestamp_type as u8;
            if self.mixed_types || type_byte != self.first_type {
                meta += 1 + if self.mixed_types { 0 } else { self.count as usize };
            }
        }
        let data = key.saturating_sub(1) + value.saturating_sub(1);
        Some(RecordSize { data, meta: meta as u64 })
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

    /// Closes the block: hands `write` its pieces (see [`ClosedBlock`]), with `data` as its data
    /// (the data column when `None`; a lone record's key and value when the block holds one
    /// record whose bytes were not copied), then empties the block, keeping its allocations.
    pub(crate) fn close<R>(&mut self, data: Option<&[&[u8]]>, write: impl FnOnce(&ClosedBlock<'_>) -> R) -> R {
        debug_assert!(!self.is_empty());
        let own = [&self.data[..]];
        let data = data.unwrap_or(&own);
        let data_len: usize = data.iter().map(|piece| piece.len()).sum();
        let len = BLOCK_HEAD_LEN + (self.meta_len() + data_len) as u64 + CRC_LEN;
        let mut flags = 0;
        if self.has_gaps {
            flags |= FLAG_GAPS;
        }
        if self.mixed_types {
            flags |= FLAG_TYPES;
        }
        let mut head = [0u8; BLOCK_HEAD_LEN as usize];
        head[0..4].copy_from_slice(&((len - BLOCK_LEN_LEN) as u32).to_be_bytes());
        head[4] = KIND_RECORDS;
        head[5] = flags;
        head[6] = if self.mixed_types { 0 } else { self.first_type };
        head[7..11].copy_from_slice(&self.count.to_be_bytes());
        head[11..19].copy_from_slice(&self.totals.first_offset.to_be_bytes());
        head[19..27].copy_from_slice(&self.totals.first_timestamp.to_be_bytes());
        let gaps = if self.has_gaps { &self.gaps[..] } else { &[] };
        let types = if self.mixed_types { &self.types[..] } else { &[] };
        let columns = [gaps, &self.deltas[..], types, &self.key_lens[..], &self.value_lens[..], &self.headers[..]];
        let covered = std::iter::once(&head[..]).chain(columns.iter().copied()).chain(data.iter().copied());
        let crc = covered.fold(0, crc32c::crc32c_append);
        let covered_len = (len - CRC_LEN) as usize;
        let closed = ClosedBlock { head, crc: crc.to_be_bytes(), covered: (crc, covered_len), columns, data };
        let written = write(&closed);
        self.clear();
        written
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
