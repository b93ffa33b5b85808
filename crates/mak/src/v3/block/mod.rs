//! Byte layout of version 3's progress block, record blocks and footer, on byte slices only (no
//! I/O): [`Progress`], [`Footer`] and the [`Totals`] both state; `open` collects records into
//! columns for the writer ([`OpenBlock`]); `walk` validates a record block whose CRC matched
//! ([`check`]) and hands its records out, borrowing the block's bytes ([`Walk`]).

mod open;
mod walk;

pub(crate) use open::{BlockRoom, OpenBlock};
pub(crate) use walk::{check, header_at, Walk};

use crate::error::BlockProblem;
use crate::v2::frame::ProgressProblem;
use crate::v2::State;
use crate::v3::{BLOCK_LEN_LEN, FOOTER_BLOCK_LEN, KIND_FOOTER, PROGRESS_LEN};

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
pub(crate) fn nullable_len(bytes: Option<&[u8]>) -> u64 {
    bytes.map_or(0, |b| b.len() as u64 + 1)
}

#[cfg(test)]
mod tests;
