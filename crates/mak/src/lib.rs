//! Reader and writer for MAK (Message Archive Kafka) files, the archive format of kafkatos3.
//! Version 1 (this module's root) is byte-compatible with the Python KafkatoS3 daemon
//! (`kafkatos3==0.2.0`); version 2 ([`v2`]) keeps what version 1 loses (null versus empty,
//! headers, timestamps) and checksums every frame; version 3 ([`v3`], the daemon's default)
//! keeps the same in blocks of records, one checksum per block and offsets, timestamps and
//! lengths as small deltas, which halves what an archive costs in S3. All three are specified in
//! `docs/format.md`; the byte positions of version 1's fixed header are the constants below,
//! version 2's and 3's are in [`v2`] and [`v3`]. [`AnyReader`] reads any of them, told apart by
//! their first bytes. Around the MAK bytes a file may have
//! a compression codec ([`codec`]) and, outside that, age encryption ([`crypt`]); [`layers`] writes
//! and reads the whole stack, recognising each layer by content.
//!
//! The crate is pure and synchronous: it reads from any [`Read`](std::io::Read) (a `File`, a
//! `GzDecoder`, a byte slice) and writes to a [`File`](std::fs::File). It takes no locks.
//!
//! # API overview
//!
//! ```text
//! pub struct Header { pub topic: String, pub partition: i32, pub start_offset: i64, pub start_time: f64 }
//! pub struct Record<'a> { pub offset: i64, pub key: &'a [u8], pub value: &'a [u8] }
//!
//! // Reading: streaming, from any Read. Stops at the header's write position.
//! impl<R: Read> MakReader<R> {
//!     pub fn new(reader: R) -> Result<Self, ReadError>;          // reads and validates the header
//!     pub fn with_size_limit(reader: R, max_len: u64) -> Result<Self, ReadError>; // write position may not exceed max_len
//!     pub fn header(&self) -> &Header;
//!     pub fn last_offset_field(&self) -> u64;                    // header field 1 as written
//!     pub fn write_position(&self) -> u64;                       // header field 2: end of valid data
//!     pub fn data_start(&self) -> u64;                           // byte position of the first record
//!     pub fn position(&self) -> u64;                             // bytes consumed so far
//!     pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError>; // None exactly at write position
//! }
//!
//! // Writing: an open in-progress file. append() only copies into an in-memory buffer (no syscall unless
//! // the buffer passed its capacity, then one write()). sync() is a durability point: write buffered
//! // bytes, fdatasync, then pwrite the two header fields (last offset, write position).
//! impl MakWriter {
//!     pub fn create(path: &Path, header: &Header) -> Result<MakWriter, WriteError>;   // create_new; header durable
//!     pub fn open_append(path: &Path) -> Result<(MakWriter, Recovered), WriteError>; // resume a file (ours or the original's): truncates a torn tail past the write position
//!     pub fn append(&mut self, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(), WriteError>;
//!     pub fn sync(&mut self) -> Result<(), WriteError>;
//!     pub fn header(&self) -> &Header;
//!     pub fn record_count(&self) -> u64;          // records in the file incl. unsynced ones
//!     pub fn last_offset(&self) -> Option<i64>;   // offset of the last appended record, None when empty
//!     pub fn len(&self) -> u64;                   // file length including buffered bytes
//!     pub fn is_dirty(&self) -> bool;             // appended since the last sync
//!     pub fn close(self) -> Result<(), WriteError>; // sync + fsync
//! }
//! pub struct Recovered { pub header: Header, pub record_count: u64, pub last_offset: Option<i64>, pub truncated_bytes: u64 }
//!
//! pub fn read_all(bytes: &[u8]) -> Result<u64, ReadError>; // whole file from a slice, returns the record count
//!
//! // Version 2 (mak::v2). Same shapes; records carry timestamps, headers and null-vs-empty.
//! pub struct v2::Header { pub topic: String, pub partition: i32, pub start_offset: i64, pub created_ms: Option<i64>, pub writer: Option<String> }
//! pub struct v2::RecordRef<'a> { pub offset: i64, pub timestamp: i64, pub timestamp_type: TimestampType,
//!                                pub key: Option<&'a [u8]>, pub value: Option<&'a [u8]>, pub headers: &'a dyn HeaderSource }
//! pub trait v2::HeaderSource { fn header_count(&self) -> usize; fn header_at(&self, index: usize) -> (&str, Option<&[u8]>); }
//!                                                  // for slices, arrays and Vecs of pairs; a client's own header list without copying
//! pub struct v2::Record<'a> { /* the same fields, */ pub headers: Headers<'a> /* iterator of (&str, Option<&[u8]>) */ }
//! pub struct v2::OwnedRecord { .. }                  // Record::to_owned_record(); as_record_ref() to append it again
//! impl<R: Read> v2::MakReader<R> {
//!     pub fn new(reader: R) -> Result<Self, ReadError>;
//!     pub fn with_size_limit(reader: R, max_len: u64) -> Result<Self, ReadError>;
//!     pub fn header(&self) -> &v2::Header;
//!     pub fn progress(&self) -> Option<&Progress>;     // None: the block was torn, frames are scanned
//!     pub fn next_record(&mut self) -> Result<Option<v2::Record<'_>>, ReadError>; // None at the end, after checking footer and block
//!     pub fn footer(&self) -> Option<&Footer>;         // Some at the end of a sealed file
//!     pub fn write_position(&self) -> Option<u64>; pub fn data_start(&self) -> u64; pub fn position(&self) -> u64; pub fn records_read(&self) -> u64;
//! }
//! pub fn v2::read_summary(reader: impl Read) -> Result<Summary, ReadError>; // header + progress block from the first bytes only
//! pub fn v2::read_all(bytes: &[u8]) -> Result<u64, ReadError>;
//! impl v2::MakWriter {                                 // same protocol as MakWriter; the sync pwrites the 48-byte progress block
//!     pub fn create(path: &Path, header: &v2::Header) -> Result<Self, WriteError>;
//!     pub fn open_append(path: &Path) -> Result<(Self, v2::Recovered), WriteError>; // scans when the block is torn; refuses a sealed file
//!     pub fn append(&mut self, record: &RecordRef<'_>) -> Result<(), WriteError>;  // offsets must increase strictly
//!     pub fn sync(&mut self) -> Result<(), WriteError>;
//!     pub fn close(self) -> Result<(), WriteError>;    // seals: footer frame, state = sealed, sync, fsync
//!     pub fn suspend(self) -> Result<(), WriteError>;  // sync + fsync, left open and resumable
//!     // header, record_count, last_offset, len, is_empty, is_dirty, path as MakWriter
//! }
//!
//! // Layers around the MAK bytes (mak::codec, mak::crypt, mak::layers): MAK -> codec -> optional age.
//! pub fn layers::archive_writer<W: Write>(out: W, &Compression, Option<&crypt::Encryption>) -> Result<ArchiveWriter<W>, LayerError>; // + finish()
//! pub fn layers::archive_reader<R: Read>(input: R, Option<&crypt::Decryption>) -> Result<ArchiveReader<R>, LayerError>; // age? codec? by content
//! pub fn crypt::encrypt_writer(out, &Encryption); pub fn crypt::decrypt_reader(input, &Decryption); pub fn crypt::is_encrypted(&[u8]) -> bool;
//!
//! // Version 3 (mak::v3): the same API as v2 (Header, MakReader, MakWriter, Recovered, read_summary,
//! // read_all) and the same records (v2::RecordRef in, v2::Record out); its Progress and Footer
//! // also state the smallest and largest timestamp. MakWriter::set_buffer_capacity is the block bound.
//!
//! // Any version, by the first bytes ('M', or 0x89 then the version at byte 8); version 1
//! // records come out with key and value Some, timestamp -1 (NotAvailable) and no headers.
//! impl<R: Read> AnyReader<R> { pub fn new(reader: R) -> Result<Self, ReadError>; pub fn with_size_limit(..);
//!                              pub fn version(&self) -> Version; pub fn next_record(&mut self) -> Result<Option<v2::Record<'_>>, ReadError>;
//!                              pub fn topic/partition/start_offset/created_secs(&self); pub fn into_inner(self);
//!                              pub fn last_offset_hint(&self) -> Option<i64>;   // from v1's header field or v2's/v3's progress block
//!                              pub fn timestamp_hints(&self) -> Option<(Option<i64>, Option<i64>)>; // v2/v3 progress block: first and last record's
//!                              pub fn time_range(&self) -> Option<(i64, i64)>;  // v3 progress block: smallest and largest timestamp
//!                              pub fn sealed_counts(&self) -> Option<(u64, i64)>; } // footer's record count and last offset, at the end
//!
//! // Writing any version through one API (the daemon's spool): create in a version, resume
//! // in the file's own version (by its first bytes), seal (v2, v3: footer) or suspend (resumable).
//! pub struct FileStart<'a> { pub topic: &'a str, pub partition: i32, pub start_offset: i64, pub created_secs: u64, pub writer: Option<&'a str> }
//! impl AnyWriter {
//!     pub fn create(path: &Path, version: Version, start: &FileStart<'_>) -> Result<Self, WriteError>;
//!     pub fn open_append(path: &Path) -> Result<(Self, AnyRecovered), WriteError>;
//!     pub fn append(&mut self, record: &v2::RecordRef<'_>) -> Result<(), WriteError>; // v1 keeps offset, key, value
//!     pub fn sync(&mut self); pub fn seal(self); pub fn suspend(self);
//!     // version, start_offset, created_secs, record_count, last_offset, len, is_empty, is_dirty, path
//! }
//! pub fn detect_version(path: &Path) -> Result<Option<Version>, WriteError>; pub fn is_sealed(path: &Path) -> bool;
//! ```
//!
//! Version 1 cannot tell a null key or value from an empty one: both are written with length
//! 0 and read back as an empty slice. Versions 2 and 3 can.
//!
//! # Example
//!
//! ```
//! use mak::{Header, MakReader, MakWriter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("data.mak");
//! let header = Header { topic: "test".into(), partition: 0, start_offset: 5, start_time: 1479000000.0 };
//!
//! let mut writer = MakWriter::create(&path, &header)?;
//! writer.append(5, Some(b"key"), Some(b"value"))?;
//! writer.append(6, None, Some(b""))?;
//! writer.close()?;
//!
//! let mut reader = MakReader::new(std::fs::File::open(&path)?)?;
//! assert_eq!(reader.header(), &header);
//! let first = reader.next_record()?.expect("one record");
//! assert_eq!((first.offset, first.key, first.value), (5, &b"key"[..], &b"value"[..]));
//! let second = reader.next_record()?.expect("two records");
//! assert_eq!((second.offset, second.key, second.value), (6, &b""[..], &b""[..]));
//! assert!(reader.next_record()?.is_none());
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod any;
mod any_writer;
mod append;
pub mod codec;
pub mod crypt;
mod error;
mod header;
mod input;
pub mod layers;
mod preamble;
mod reader;
pub mod v2;
pub mod v3;
mod varint;
mod writer;

pub use any::{AnyReader, Peeked, Version, DETECT_LEN};
pub use any_writer::{detect_version, fixed_header_len, is_sealed, AnyRecovered, AnyWriter, FileStart};
pub use append::{DEFAULT_BUFFER_CAPACITY, MIN_BUFFER_CAPACITY};
pub use error::{
    BlockProblem, Field, FrameProblem, HeaderProblem, IoAction, ReadError, SummaryField, SummarySource, WriteError,
};
pub use header::Header;
pub use reader::{MakReader, Record};
pub use writer::{MakWriter, Recovered};

/// The magic bytes every MAK file starts with.
pub const MAGIC: [u8; 3] = *b"MAK";
/// Length in bytes of every integer field (unsigned 64-bit big-endian).
pub const U64_LEN: u64 = 8;
/// Byte position of the magic.
pub const MAGIC_AT: u64 = 0;
/// Byte position of the last-offset field.
pub const LAST_OFFSET_AT: u64 = MAGIC_AT + MAGIC.len() as u64;
/// Byte position of the write-position field (end of valid data).
pub const WRITE_POSITION_AT: u64 = LAST_OFFSET_AT + U64_LEN;
/// Byte position of the header-length field.
pub const HEADER_LEN_AT: u64 = WRITE_POSITION_AT + U64_LEN;
/// Byte position of the header JSON; the fixed header is this long.
pub const HEADER_JSON_AT: u64 = HEADER_LEN_AT + U64_LEN;
/// Bytes a record takes besides its key and value (two lengths and the offset).
pub const RECORD_OVERHEAD: u64 = 3 * U64_LEN;

/// Reads a whole MAK file from a byte slice, with the slice length as size limit, and returns
/// the number of records. Meant for fuzz targets and quick validation.
pub fn read_all(bytes: &[u8]) -> Result<u64, ReadError> {
    let mut reader = MakReader::with_size_limit(bytes, bytes.len() as u64)?;
    let mut count = 0u64;
    while reader.next_record()?.is_some() {
        count += 1;
    }
    Ok(count)
}
