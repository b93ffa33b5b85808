//! MAK format version 2 (`docs/format.md`, "MAK file format, version 2"): null distinct from
//! empty, headers, timestamps, a CRC-32C per frame, a progress block at a fixed position and a
//! footer that makes a sealed file self-verifying.
//!
//! - `header`: the header JSON.
//! - `header_source`: [`HeaderSource`], the headers of a record to append, read by index.
//! - `frame`: byte layout of the progress block, record frames and the footer, encoding and
//!   decoding (no I/O).
//! - `reader`: streaming reader over any `Read`, and [`read_summary`].
//! - `writer`: the in-progress file writer with the durability protocol, and recovery.
//!
//! Every byte position is a constant below, each derived from the previous one.
//!
//! # Example
//!
//! ```
//! use mak::v2::{Header, MakReader, MakWriter, RecordRef, TimestampType};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("data.mak");
//! let header = Header { topic: "t".into(), partition: 0, start_offset: 5, created_ms: None, writer: None };
//!
//! let mut writer = MakWriter::create(&path, &header)?;
//! let headers = [("trace", Some(&b"1"[..])), ("trace", None)];
//! let record = RecordRef {
//!     offset: 5,
//!     timestamp: 1_700_000_000_000,
//!     timestamp_type: TimestampType::CreateTime,
//!     key: Some(b"k"),
//!     value: None, // a tombstone, distinct from Some(b"")
//!     headers: &headers,
//! };
//! writer.append(&record)?;
//! writer.close()?; // seals the file with a footer
//!
//! let mut reader = MakReader::new(std::fs::File::open(&path)?)?;
//! let read = reader.next_record()?.expect("one record");
//! assert_eq!((read.offset, read.key, read.value), (5, Some(&b"k"[..]), None));
//! assert_eq!(read.headers.collect::<Vec<_>>(), headers);
//! assert!(reader.next_record()?.is_none());
//! assert_eq!(reader.footer().map(|footer| footer.record_count), Some(1));
//! # Ok(())
//! # }
//! ```

pub(crate) mod frame;
mod header;
mod header_source;
mod reader;
mod writer;

pub use frame::{Footer, Headers, OwnedRecord, Progress, Record, RecordRef, State, TimestampType};
pub use header::Header;
pub use header_source::{HeaderSource, NO_HEADERS};
pub use reader::{read_all, read_summary, MakReader, Summary};
pub use writer::{MakWriter, Recovered};

/// The magic every version 2 file starts with (PNG's trick: see `docs/format.md`).
pub const MAGIC: [u8; 8] = *b"\x89MAK\r\n\x1a\n";
/// The version this module reads and writes.
pub const VERSION: u16 = 2;
/// Flag bits this module knows (none yet).
pub const KNOWN_FLAGS: u16 = 0;

/// Byte position of the magic.
pub const MAGIC_AT: u64 = 0;
/// Byte position of the `u16` version.
pub const VERSION_AT: u64 = MAGIC_AT + MAGIC.len() as u64;
/// Byte position of the `u16` flags.
pub const FLAGS_AT: u64 = VERSION_AT + 2;
/// Byte position of the progress block.
pub const PROGRESS_AT: u64 = FLAGS_AT + 2;
/// Length of the progress block, its CRC included.
pub const PROGRESS_LEN: u64 = 48;
/// Byte position of the `u32` header length.
pub const HEADER_LEN_AT: u64 = PROGRESS_AT + PROGRESS_LEN;
/// Byte position of the header JSON.
pub const HEADER_JSON_AT: u64 = HEADER_LEN_AT + 4;
/// Length of every CRC-32C field.
pub const CRC_LEN: u64 = 4;
/// Length of a frame's length prefix.
pub const FRAME_LEN_LEN: u64 = 4;

/// Frame kind of a record.
pub const KIND_RECORD: u8 = 1;
/// Frame kind of the footer.
pub const KIND_FOOTER: u8 = 2;
/// The footer's frame length (bytes after the length field, CRC included).
pub const FOOTER_FRAME_LEN: u32 = 49;
/// The smallest record frame length: kind, offset, timestamp, timestamp type, key and value
/// lengths, header count and CRC.
pub const MIN_RECORD_FRAME_LEN: u32 = 1 + 8 + 8 + 1 + 4 + 4 + 4 + CRC_LEN as u32;

/// Where data starts for a header JSON of `json_len` bytes.
pub fn data_start(json_len: u32) -> u64 {
    HEADER_JSON_AT + u64::from(json_len) + CRC_LEN
}
