//! Error types. Every error about bad data names the byte position where it was detected.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A part of a MAK file, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The 3-byte magic at byte 0.
    Magic,
    /// The last-offset field at byte 3.
    LastOffset,
    /// The write-position field at byte 11.
    WritePosition,
    /// The header-length field at byte 19.
    HeaderLength,
    /// The header JSON at byte 27.
    HeaderJson,
    /// A record's key-length prefix.
    KeyLength,
    /// A record's key bytes.
    Key,
    /// A record's value-length prefix.
    ValueLength,
    /// A record's value bytes.
    Value,
    /// A record's offset.
    Offset,
    /// Version 2: the 8-byte magic, the version and the flags (bytes 0..12).
    Preamble,
    /// Version 2: the progress block at byte 12.
    ProgressBlock,
    /// Version 2: the header CRC after the header JSON.
    HeaderCrc,
    /// Version 2: a frame's length prefix.
    FrameLength,
    /// Version 2: a frame's bytes after its length prefix.
    Frame,
    /// Version 3: a block's length prefix.
    BlockLength,
    /// Version 3: a block's bytes after its length prefix.
    Block,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Magic => "magic",
            Field::LastOffset => "last offset field",
            Field::WritePosition => "write position field",
            Field::HeaderLength => "header length",
            Field::HeaderJson => "header json",
            Field::KeyLength => "record key length",
            Field::Key => "record key",
            Field::ValueLength => "record value length",
            Field::Value => "record value",
            Field::Offset => "record offset",
            Field::Preamble => "magic, version and flags",
            Field::ProgressBlock => "progress block",
            Field::HeaderCrc => "header crc",
            Field::FrameLength => "frame length",
            Field::Frame => "frame",
            Field::BlockLength => "block length",
            Field::Block => "block",
        })
    }
}

/// A header value the format does not allow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeaderProblem {
    /// Kafka partitions are numbered from 0.
    NegativePartition(i32),
    /// Kafka offsets are at least 0.
    NegativeStartOffset(i64),
    /// NaN and infinities are not valid JSON numbers.
    NonFiniteStartTime(f64),
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::NegativePartition(p) => write!(f, "partition {p} is negative"),
            HeaderProblem::NegativeStartOffset(o) => write!(f, "start offset {o} is negative"),
            HeaderProblem::NonFiniteStartTime(t) => write!(f, "start time {t} is not finite"),
        }
    }
}

/// Why a version 2 frame whose CRC matches is still not a valid frame (a writer bug, or
/// damage the CRC happened not to catch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameProblem {
    /// The frame length is below the smallest frame of any kind.
    TooShort { length: u32 },
    /// The kind byte is neither record (1) nor footer (2).
    UnknownKind(u8),
    /// A footer frame's length is not 49.
    FooterLength { length: u32 },
    /// The timestamp type is not 0, 1 or 2.
    UnknownTimestampType(u8),
    /// A record offset below 0.
    NegativeOffset(i64),
    /// A key, value or header value length below -1.
    NegativeLength(i32),
    /// A field runs past the end of the frame.
    FieldPastFrame { field: &'static str, at: u32 },
    /// The record's fields end before the frame does.
    TrailingBytes { unused: u32 },
    /// A header key is not UTF-8.
    HeaderKeyNotUtf8 { index: u32 },
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameProblem::TooShort { length } => write!(f, "frame length {length} is too short for any frame"),
            FrameProblem::UnknownKind(kind) => write!(f, "unknown frame kind {kind}"),
            FrameProblem::FooterLength { length } => write!(f, "footer frame length {length} is not 49"),
            FrameProblem::UnknownTimestampType(t) => write!(f, "unknown timestamp type {t}"),
            FrameProblem::NegativeOffset(o) => write!(f, "record offset {o} is negative"),
            FrameProblem::NegativeLength(l) => write!(f, "length {l} is below -1"),
            FrameProblem::FieldPastFrame { field, at } => {
                write!(f, "{field} at frame byte {at} runs past the end of the frame")
            }
            FrameProblem::TrailingBytes { unused } => write!(f, "{unused} bytes left after the record's fields"),
            FrameProblem::HeaderKeyNotUtf8 { index } => write!(f, "key of header {index} is not utf-8"),
        }
    }
}

/// Why a version 3 block whose CRC matches is still not a valid block (a writer bug, or damage
/// the CRC happened not to catch). Positions count from the block's first byte (its length field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockProblem {
    /// The block length is below the smallest block of any kind.
    TooShort { length: u32 },
    /// The kind byte is neither records (1) nor footer (2).
    UnknownKind(u8),
    /// A footer block's length is not 65.
    FooterLength { length: u32 },
    /// A flag bit the format does not define.
    UnknownFlags(u8),
    /// A timestamp type byte that is not 0, 1 or 2 (or not 0 while the types are mixed).
    UnknownTimestampType(u8),
    /// A record block without records.
    NoRecords,
    /// The first offset is below 0.
    NegativeOffset(i64),
    /// An offset gap takes the offsets past the largest Kafka offset.
    OffsetOverflow { record: u32 },
    /// A varint is cut short by the end of the block, or longer than 10 bytes.
    BadVarint { column: &'static str, at: u32 },
    /// A key, value or header length above 2^31-1.
    LengthTooLarge { column: &'static str, at: u32 },
    /// Bytes a column announces run past the end of the block.
    ColumnPastBlock { column: &'static str, at: u32 },
    /// The columns end before the CRC does.
    TrailingBytes { unused: u32 },
    /// A header key is not UTF-8.
    HeaderKeyNotUtf8 { record: u32, index: u32 },
}

impl fmt::Display for BlockProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockProblem::TooShort { length } => write!(f, "block length {length} is too short for any block"),
            BlockProblem::UnknownKind(kind) => write!(f, "unknown block kind {kind}"),
            BlockProblem::FooterLength { length } => write!(f, "footer block length {length} is not 65"),
            BlockProblem::UnknownFlags(flags) => write!(f, "unknown block flags {flags:#04x}"),
            BlockProblem::UnknownTimestampType(t) => write!(f, "invalid timestamp type {t}"),
            BlockProblem::NoRecords => f.write_str("a record block with 0 records"),
            BlockProblem::NegativeOffset(o) => write!(f, "first offset {o} is negative"),
            BlockProblem::OffsetOverflow { record } => {
                write!(f, "the offset of record {record} is past the largest kafka offset")
            }
            BlockProblem::BadVarint { column, at } => {
                write!(f, "{column} at block byte {at} holds a varint cut short or longer than 10 bytes")
            }
            BlockProblem::LengthTooLarge { column, at } => {
                write!(f, "{column} at block byte {at} holds a length above 2147483647")
            }
            BlockProblem::ColumnPastBlock { column, at } => {
                write!(f, "{column} at block byte {at} runs past the end of the block")
            }
            BlockProblem::TrailingBytes { unused } => write!(f, "{unused} bytes left after the block's columns"),
            BlockProblem::HeaderKeyNotUtf8 { record, index } => {
                write!(f, "key of header {index} of record {record} is not utf-8")
            }
        }
    }
}

/// Which summary of a version 2 file disagrees with its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummarySource {
    ProgressBlock,
    Footer,
    /// Version 3's footer.
    FooterBlock,
}

impl fmt::Display for SummarySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SummarySource::ProgressBlock => "progress block",
            SummarySource::Footer => "footer frame",
            SummarySource::FooterBlock => "footer block",
        })
    }
}

/// A field of a version 2 summary (progress block or footer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryField {
    RecordCount,
    FirstOffset,
    LastOffset,
    FirstTimestamp,
    LastTimestamp,
    /// Version 3.
    MinTimestamp,
    /// Version 3.
    MaxTimestamp,
    BodyCrc,
}

impl fmt::Display for SummaryField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SummaryField::RecordCount => "the record count",
            SummaryField::FirstOffset => "the first offset",
            SummaryField::LastOffset => "the last offset",
            SummaryField::FirstTimestamp => "the first timestamp",
            SummaryField::LastTimestamp => "the last timestamp",
            SummaryField::MinTimestamp => "the smallest timestamp",
            SummaryField::MaxTimestamp => "the largest timestamp",
            SummaryField::BodyCrc => "the body crc",
        })
    }
}

/// Why a MAK file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The underlying reader failed.
    #[error("i/o error reading at byte {position}")]
    Io {
        position: u64,
        #[source]
        source: io::Error,
    },
    /// The file does not start with `MAK`.
    #[error("bad magic at byte 0: expected \"MAK\", found {found:02x?}")]
    BadMagic { found: [u8; 3] },
    /// The input ended before the write position.
    #[error("input ends inside the {field} at byte {position}: needed {needed} bytes, found {available}")]
    Truncated { position: u64, field: Field, needed: u64, available: u64 },
    /// A fixed-size field would cross the write position.
    #[error("{field} at byte {position} runs past the end of valid data at byte {limit}")]
    FieldPastEnd { position: u64, field: Field, limit: u64 },
    /// A length prefix points past the write position (or past the size limit).
    #[error("{field} of {length} bytes announced at byte {position} runs past the end of valid data at byte {limit}")]
    LengthPastEnd { position: u64, field: Field, length: u64, limit: u64 },
    /// The header is not valid UTF-8 JSON of the expected shape.
    #[error("invalid header json at byte {position}")]
    BadHeaderJson {
        position: u64,
        #[source]
        source: serde_json::Error,
    },
    /// The header JSON lacks a required key.
    #[error("header json at byte {position} lacks the field {field:?}")]
    MissingHeaderField { position: u64, field: &'static str },
    /// The header JSON holds a value the format does not allow.
    #[error("invalid header json at byte {position}: {problem}")]
    InvalidHeader { position: u64, problem: HeaderProblem },
    /// The write position (byte 11) is before the first record.
    #[error("write position {write_position} (byte 11) is before the start of data at byte {data_start}")]
    WritePositionBeforeData { write_position: u64, data_start: u64 },
    /// The write position (byte 11) is past the known end of the file.
    #[error("write position {write_position} (byte 11) is past the end of the file at byte {limit}")]
    WritePositionPastEnd { write_position: u64, limit: u64 },
    /// A record offset does not fit a Kafka offset (`i64`).
    #[error("record offset {offset} at byte {position} is larger than the largest kafka offset")]
    OffsetOutOfRange { position: u64, offset: u64 },
    /// Version 2: the file does not start with the version 2 magic.
    #[error("bad magic at byte 0: expected 89 4d 41 4b 0d 0a 1a 0a, found {found:02x?}")]
    BadMagicV2 { found: [u8; 8] },
    /// Versions 2 and 3: the version field (byte 8) holds a version this reader does not read.
    #[error("unsupported mak version {version} at byte 8: this reader reads version {expected}")]
    UnsupportedVersion { version: u16, expected: u16 },
    /// Version 2: the flags field (byte 10) has a bit this reader does not know.
    #[error("unknown flags {flags:#06x} at byte 10")]
    UnknownFlags { flags: u16 },
    /// Version 2: the header CRC does not match the header length and JSON.
    #[error("header crc mismatch at byte {position}: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc { position: u64, stored: u32, computed: u32 },
    /// Version 2: the progress block's write position is outside the data.
    #[error("write position {write_position} in the progress block (byte 12) is outside the data, bytes {data_start}..={limit}")]
    WritePositionOutOfRange { write_position: u64, data_start: u64, limit: u64 },
    /// Version 2: a progress block whose CRC matches holds a state other than open (0) or sealed (1).
    #[error("unknown state {state} in the progress block (byte 12)")]
    UnknownState { state: u32 },
    /// Version 2: a frame's CRC does not match its bytes.
    #[error("frame crc mismatch in the frame at byte {position}: stored {stored:#010x}, computed {computed:#010x}")]
    FrameCrc { position: u64, stored: u32, computed: u32 },
    /// Version 2: a frame whose CRC matches is not a valid frame.
    #[error("invalid frame at byte {position}: {problem}")]
    BadFrame { position: u64, problem: FrameProblem },
    /// Version 2: a record offset is not greater than the previous record's.
    #[error(
        "record offset {offset} in the frame at byte {position} is not greater than the previous offset {previous}"
    )]
    OffsetNotIncreasing { position: u64, offset: i64, previous: i64 },
    /// Version 2: the footer or the progress block disagrees with the records read, or the
    /// footer with the progress block. `position` is the footer's byte, or 12 for the block.
    #[error("{summary} at byte {position} says {stated} for {what}, the data says {actual}")]
    SummaryMismatch { position: u64, summary: SummarySource, what: SummaryField, stated: i64, actual: i64 },
    /// Version 2: the progress block's state (sealed or open) disagrees with the data
    /// (a footer ending exactly at the write position, or none).
    #[error("progress block (byte 12) says the file is {}, but {}", if *sealed { "sealed" } else { "open" }, if *sealed { "no footer ends the data" } else { "a footer frame is in the data" })]
    StateMismatch { sealed: bool },
    /// Version 2: a footer frame is followed by more frames.
    #[error("footer frame at byte {position} is not the last frame before the write position {write_position}")]
    FooterNotLast { position: u64, write_position: u64 },
    /// Version 3: a block's CRC does not match its bytes.
    #[error("block crc mismatch in the block at byte {position}: stored {stored:#010x}, computed {computed:#010x}")]
    BlockCrc { position: u64, stored: u32, computed: u32 },
    /// Version 3: a block whose CRC matches is not a valid block.
    #[error("invalid block at byte {position}: {problem}")]
    BadBlock { position: u64, problem: BlockProblem },
    /// Version 3: a block's first offset is not greater than the previous block's last offset.
    #[error(
        "first offset {offset} of the block at byte {position} is not greater than the previous offset {previous}"
    )]
    BlockOffsetNotIncreasing { position: u64, offset: i64, previous: i64 },
    /// Version 3: a footer block is followed by more blocks.
    #[error("footer block at byte {position} is not the last block before the write position {write_position}")]
    FooterBlockNotLast { position: u64, write_position: u64 },
    /// `next_record` was called again after it returned an error.
    #[error("reader already stopped by an error at byte {position}")]
    Poisoned { position: u64 },
}

impl ReadError {
    /// The byte position the error names (`None` for errors not tied to one position).
    pub fn position(&self) -> Option<u64> {
        match self {
            ReadError::Io { position, .. }
            | ReadError::Truncated { position, .. }
            | ReadError::FieldPastEnd { position, .. }
            | ReadError::LengthPastEnd { position, .. }
            | ReadError::BadHeaderJson { position, .. }
            | ReadError::MissingHeaderField { position, .. }
            | ReadError::InvalidHeader { position, .. }
            | ReadError::OffsetOutOfRange { position, .. }
            | ReadError::HeaderCrc { position, .. }
            | ReadError::FrameCrc { position, .. }
            | ReadError::BadFrame { position, .. }
            | ReadError::OffsetNotIncreasing { position, .. }
            | ReadError::SummaryMismatch { position, .. }
            | ReadError::FooterNotLast { position, .. }
            | ReadError::BlockCrc { position, .. }
            | ReadError::BadBlock { position, .. }
            | ReadError::BlockOffsetNotIncreasing { position, .. }
            | ReadError::FooterBlockNotLast { position, .. }
            | ReadError::Poisoned { position } => Some(*position),
            ReadError::BadMagicV2 { .. } => Some(crate::v2::MAGIC_AT),
            ReadError::UnsupportedVersion { .. } => Some(crate::v2::VERSION_AT),
            ReadError::UnknownFlags { .. } => Some(crate::v2::FLAGS_AT),
            ReadError::WritePositionOutOfRange { .. }
            | ReadError::StateMismatch { .. }
            | ReadError::UnknownState { .. } => Some(crate::v2::PROGRESS_AT),
            ReadError::BadMagic { .. } => Some(crate::MAGIC_AT),
            ReadError::WritePositionBeforeData { .. } | ReadError::WritePositionPastEnd { .. } => {
                Some(crate::WRITE_POSITION_AT)
            }
        }
    }
}

/// The system call a [`WriteError::Io`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoAction {
    Create,
    Open,
    Read,
    Write,
    Seek,
    Truncate,
    Sync,
    SyncDirectory,
}

impl fmt::Display for IoAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoAction::Create => "create",
            IoAction::Open => "open",
            IoAction::Read => "read",
            IoAction::Write => "write",
            IoAction::Seek => "seek in",
            IoAction::Truncate => "truncate",
            IoAction::Sync => "sync",
            IoAction::SyncDirectory => "sync the directory of",
        })
    }
}

/// Why a MAK file could not be created, resumed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// A system call failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        path: PathBuf,
        action: IoAction,
        #[source]
        source: io::Error,
    },
    /// The existing file could not be resumed because its content is invalid at `position`
    /// (the position `source` names).
    #[error("cannot resume {}: invalid mak data at byte {position}", path.display())]
    Corrupt {
        path: PathBuf,
        position: u64,
        #[source]
        source: ReadError,
    },
    /// The header to write holds a value the format does not allow.
    #[error("cannot create {}: {problem}", path.display())]
    InvalidHeader { path: PathBuf, problem: HeaderProblem },
    /// Kafka offsets are at least 0.
    #[error("cannot append offset {offset} to {}: offsets are never negative", path.display())]
    NegativeOffset { path: PathBuf, offset: i64 },
    /// Version 2: offsets must increase strictly within a file.
    #[error("cannot append offset {offset} to {}: not greater than the previous offset {previous}", path.display())]
    OffsetNotIncreasing { path: PathBuf, offset: i64, previous: i64 },
    /// Version 2: a key, value or header does not fit its length field (`i32`/`u32`), or the
    /// frame does not fit its `u32` length.
    #[error("cannot append offset {offset} to {}: the record is too large for a frame", path.display())]
    RecordTooLarge { path: PathBuf, offset: i64 },
    /// Version 2: a sealed file (a footer ends its data) cannot be appended to.
    #[error("cannot resume {}: the file is sealed", path.display())]
    Sealed { path: PathBuf },
    /// An earlier write or sync failed, so the file's tail is in an unknown state.
    #[error("writer for {} stopped after an earlier i/o error; reopen the file to resume", path.display())]
    Poisoned { path: PathBuf },
}

impl WriteError {
    /// `map_err` adapter for a failed system call on `path`.
    pub(crate) fn io(path: &std::path::Path, action: IoAction) -> impl FnOnce(std::io::Error) -> WriteError {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, action, source }
    }

    /// A read error met while scanning `path` to resume it: an I/O failure stays one, anything
    /// else is corruption at the byte the reader names.
    pub(crate) fn scanning(path: &std::path::Path, source: ReadError) -> WriteError {
        match source {
            ReadError::Io { source, .. } => WriteError::Io { path: path.to_path_buf(), action: IoAction::Read, source },
            source => {
                WriteError::Corrupt { path: path.to_path_buf(), position: source.position().unwrap_or(0), source }
            }
        }
    }
}
