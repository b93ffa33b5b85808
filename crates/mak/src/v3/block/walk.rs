//! Reading a record block: [`check`] validates one whose CRC matched, every column parsed and
//! every length checked against what is left; [`Walk`] then hands its records out one by one.

use crate::error::BlockProblem;
use crate::v2::{Headers, Record, TimestampType};
use crate::v3::{BLOCK_HEAD_LEN, BLOCK_LEN_LEN, CRC_LEN, FLAG_GAPS, FLAG_TYPES};
use crate::varint::{self, VarintProblem};

use super::Totals;

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
