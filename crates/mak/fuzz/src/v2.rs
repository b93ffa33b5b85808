//! Versions 2 and 3: structured inputs (a valid file, then damage) and re-signing damaged
//! bytes; reading and checking them is [`crate::blocks`].

use std::fs;
use std::path::Path;

use arbitrary::Arbitrary;
use mak::ReadError;

use crate::blocks::{read_blocked, OwnedV2, V2, V3};
use crate::v1::{scratch_path, Mutation};

/// [`read_blocked`] for version 2.
pub fn read_and_check_v2(bytes: &[u8]) -> Result<Vec<OwnedV2>, ReadError> {
    read_blocked::<V2>(bytes)
}

/// [`read_blocked`] for version 3.
pub fn read_and_check_v3(bytes: &[u8]) -> Result<Vec<OwnedV2>, ReadError> {
    read_blocked::<V3>(bytes)
}

/// A version 2 or 3 file to write: records synced, then either sealed or followed by records
/// appended but never synced (the writer is dropped, as in a crash).
#[derive(Arbitrary, Debug)]
pub struct ValidFileV2 {
    topic: String,
    partition: u32,
    start_offset: u32,
    synced: Vec<ArbRecordV2>,
    unsynced: Vec<ArbRecordV2>,
    sync_each: bool,
    seal: bool,
    /// The append buffer (version 3: the block bound) in KiB, from 4 up: small ones make
    /// many blocks and records larger than a block.
    buffer_kib: u8,
}

#[derive(Arbitrary, Debug)]
pub struct ArbRecordV2 {
    /// Distance to the previous offset, minus one: offsets always increase.
    gap: u16,
    timestamp: i64,
    timestamp_type: u8,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// Repeat the value this many times (x 1 KiB) so frames outgrow the writer's buffer.
    value_kib: u8,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl ArbRecordV2 {
    fn owned(&self, offset: i64) -> OwnedV2 {
        let value = self.value.as_ref().map(|value| {
            let mut out = value.clone();
            if let Some(&first) = value.first() {
                out.extend(std::iter::repeat_n(first, 1024 * (self.value_kib % 100) as usize));
            }
            out
        });
        let timestamp_type = match self.timestamp_type % 3 {
            0 => mak::v2::TimestampType::NotAvailable,
            1 => mak::v2::TimestampType::CreateTime,
            _ => mak::v2::TimestampType::LogAppendTime,
        };
        OwnedV2 {
            offset,
            timestamp: self.timestamp,
            timestamp_type,
            key: self.key.clone(),
            value,
            headers: self.headers.clone(),
        }
    }
}

impl ValidFileV2 {
    /// Writes the file at `path` in `version` (2 or 3) and returns the records a reader must
    /// find (the synced ones).
    pub fn write(&self, path: &Path, version: mak::Version) -> Vec<OwnedV2> {
        let _ = fs::remove_file(path);
        let start = mak::FileStart {
            topic: &self.topic,
            partition: (self.partition & i32::MAX as u32) as i32,
            start_offset: i64::from(self.start_offset),
            created_secs: 0,
            writer: None,
        };
        let mut writer = mak::AnyWriter::create(path, version, &start).expect("create");
        writer.set_buffer_capacity(1024 * usize::from(self.buffer_kib)).expect("buffer");
        let mut offset = i64::from(self.start_offset);
        let mut append = |writer: &mut mak::AnyWriter, record: &ArbRecordV2| {
            let owned = record.owned(offset);
            offset += i64::from(record.gap) + 1;
            writer.append(&owned.as_record_ref()).expect("append");
            owned
        };
        let mut expected = Vec::new();
        for record in &self.synced {
            expected.push(append(&mut writer, record));
            if self.sync_each {
                writer.sync().expect("sync");
            }
        }
        if self.seal {
            writer.seal().expect("seal");
            return expected;
        }
        writer.sync().expect("sync");
        for record in &self.unsynced {
            append(&mut writer, record);
        }
        drop(writer);
        expected
    }
}

/// Recomputes the progress block, header and frame (version 3: block) CRCs of a damaged
/// version 2 or 3 file, as far as its lengths let it be walked, so the damage reaches the
/// checks behind the CRCs. Both versions end each frame or block with a CRC-32C of its bytes
/// from its length field on.
pub fn resign(bytes: &mut [u8], version: mak::Version) {
    let (block, block_len, header_len_at) = match version {
        mak::Version::V3 => (mak::v3::PROGRESS_AT, mak::v3::PROGRESS_LEN, mak::v3::HEADER_LEN_AT),
        _ => (mak::v2::PROGRESS_AT, mak::v2::PROGRESS_LEN, mak::v2::HEADER_LEN_AT),
    };
    let (block, crc_at, header_len_at) = (block as usize, (block + block_len - 4) as usize, header_len_at as usize);
    if bytes.len() < header_len_at + 4 {
        return;
    }
    let crc = crc32c::crc32c(&bytes[block..crc_at]);
    bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    let json_len = u32::from_be_bytes(bytes[header_len_at..header_len_at + 4].try_into().unwrap());
    let mut at = header_len_at + 4 + json_len as usize + 4;
    if at > bytes.len() {
        return;
    }
    let crc = crc32c::crc32c(&bytes[header_len_at..at - 4]);
    bytes[at - 4..at].copy_from_slice(&crc.to_be_bytes());
    while at + 4 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let end = at + 4 + len;
        if len < 4 || end > bytes.len() {
            return;
        }
        let crc = crc32c::crc32c(&bytes[at..end - 4]);
        bytes[end - 4..end].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

/// A valid version 2 or 3 file, damaged, and optionally with its CRCs recomputed so the
/// damage reaches the rules behind them.
#[derive(Arbitrary, Debug)]
pub struct DamagedFile {
    file: ValidFileV2,
    mutations: Vec<Mutation>,
    resign: bool,
}

impl DamagedFile {
    /// Writes the file in `version`, damages it and reads it every way: undamaged, or damaged
    /// only past the write position, it reads back exactly; otherwise every read is checked as
    /// for arbitrary bytes.
    pub fn check(&self, version: mak::Version) {
        let path = scratch_path(&format!("{version:?}_mutate.mak"));
        let expected = self.file.write(&path, version);
        let clean = fs::read(&path).expect("read back");
        let write_position = match version {
            mak::Version::V3 => mak::v3::read_summary(&clean[..]).expect("summary").progress.map(|p| p.write_position),
            _ => mak::v2::read_summary(&clean[..]).expect("summary").progress.map(|p| p.write_position),
        }
        .expect("a progress block");
        let mut bytes = clean.clone();
        let mut lowest_change = usize::MAX;
        for mutation in &self.mutations {
            lowest_change = lowest_change.min(mutation.apply(&mut bytes));
        }
        if self.resign {
            resign(&mut bytes, version);
        }
        let result = match version {
            mak::Version::V3 => read_and_check_v3(&bytes),
            _ => read_and_check_v2(&bytes),
        };
        let untouched_before_end = bytes.len() as u64 >= write_position
            && bytes[..write_position as usize] == clean[..write_position as usize];
        if self.mutations.is_empty() || (lowest_change as u64 >= write_position && untouched_before_end) {
            assert_eq!(result.expect("a file undamaged up to its write position reads"), expected);
        }
    }
}
