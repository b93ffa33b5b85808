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
            | ReadError::Poisoned { position } => Some(*position),
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
    /// An earlier write or sync failed, so the file's tail is in an unknown state.
    #[error("writer for {} stopped after an earlier i/o error; reopen the file to resume", path.display())]
    Poisoned { path: PathBuf },
}
