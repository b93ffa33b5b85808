//! MAK format version 3 (`docs/format.md`, "MAK file format, version 3"): version 2's records in
//! blocks, one CRC-32C per block, offsets and timestamps as deltas, lengths as varints, laid out
//! in columns - a seventh to three quarters of version 2's bytes once compressed.
//!
//! - `block`: byte layout of the progress block, record blocks and the footer: the open block
//!   being built, and a block checked and walked record by record (no I/O).
//! - `reader`: streaming reader over any `Read`.
//! - `writer`: the in-progress file writer with version 2's durability protocol, and recovery.
//!
//! The records are version 2's types ([`RecordRef`] to append, [`Record`] read), and so is the
//! header JSON ([`Header`]).
//!
//! # Example
//!
//! ```
//! use mak::v3::{Header, MakReader, MakWriter, RecordRef, TimestampType};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("data.mak");
//! let header = Header { topic: "t".into(), partition: 0, start_offset: 5, created_ms: None, writer: None };
//!
//! let mut writer = MakWriter::create(&path, &header)?;
//! let headers = [("trace", Some(&b"1"[..])), ("trace", None)];
//! for offset in [5, 6, 9] {
//!     let record = RecordRef {
//!         offset,
//!         timestamp: 1_700_000_000_000 + offset,
//!         timestamp_type: TimestampType::CreateTime,
//!         key: Some(b"k"),
//!         value: (offset != 6).then_some(&b"v"[..]), // a tombstone at 6
//!         headers: &headers,
//!     };
//!     writer.append(&record)?;
//! }
//! writer.close()?; // one block, then the footer
//!
//! let mut reader = MakReader::new(std::fs::File::open(&path)?)?;
//! let mut offsets = Vec::new();
//! while let Some(record) = reader.next_record()? {
//!     assert_eq!(record.headers.collect::<Vec<_>>(), headers);
//!     offsets.push((record.offset, record.value.is_none()));
//! }
//! assert_eq!(offsets, [(5, false), (6, true), (9, false)]);
//! assert_eq!(reader.footer().map(|footer| (footer.min_timestamp, footer.max_timestamp)), Some((1_700_000_000_005, 1_700_000_000_009)));
//! # Ok(())
//! # }
//! ```

pub(crate) mod block;
mod reader;
mod writer;

pub use crate::v2::{Header, HeaderSource, OwnedRecord, Record, RecordRef, State, TimestampType, NO_HEADERS};
pub use block::{Footer, Progress};
pub use reader::{read_all, read_summary, MakReader, Summary};
pub use writer::{MakWriter, Recovered};

/// The magic version 3 shares with version 2: the version field tells them apart.
pub const MAGIC: [u8; 8] = crate::v2::MAGIC;
/// The version this module reads and writes.
pub const VERSION: u16 = 3;

/// Byte position of the progress block (after the magic, version and flags).
pub const PROGRESS_AT: u64 = crate::v2::PROGRESS_AT;
/// Length of the progress block, its CRC included.
pub const PROGRESS_LEN: u64 = 64;
/// Byte position of the `u32` header length.
pub const HEADER_LEN_AT: u64 = PROGRESS_AT + PROGRESS_LEN;
/// Byte position of the header JSON.
pub const HEADER_JSON_AT: u64 = HEADER_LEN_AT + 4;
/// Length of a block's length prefix.
pub const BLOCK_LEN_LEN: u64 = 4;
/// Length of every CRC-32C field.
pub const CRC_LEN: u64 = 4;

/// Block kind of a record block.
pub const KIND_RECORDS: u8 = 1;
/// Block kind of the footer.
pub const KIND_FOOTER: u8 = 2;
/// The footer's block length (bytes after the length field, CRC included).
pub const FOOTER_BLOCK_LEN: u32 = 65;
/// Bytes of a record block before its columns: length, kind, flags, timestamp type, record
/// count, first offset, first timestamp.
pub const BLOCK_HEAD_LEN: u64 = BLOCK_LEN_LEN + 1 + 1 + 1 + 4 + 8 + 8;
/// The smallest record block length (after the length field): one record with a null key, a
/// null value and no header, so three one-byte columns, and the CRC.
pub const MIN_RECORD_BLOCK_LEN: u32 = (BLOCK_HEAD_LEN - BLOCK_LEN_LEN) as u32 + 3 + CRC_LEN as u32;

/// Record block flag: the gap column is present (offsets are not consecutive).
pub const FLAG_GAPS: u8 = 1;
/// Record block flag: the timestamp type column is present (the types are mixed).
pub const FLAG_TYPES: u8 = 2;

/// Where data starts for a header JSON of `json_len` bytes.
pub fn data_start(json_len: u32) -> u64 {
    HEADER_JSON_AT + u64::from(json_len) + CRC_LEN
}
