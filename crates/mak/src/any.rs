//! Reading a file of any version, told apart by its first bytes: `M` (the `MAK` magic) for
//! version 1; the `0x89 MAK` magic for versions 2 and 3, whose version field (bytes 8..10) says
//! which.

use std::io::{self, BufReader, Cursor, Read};

use crate::error::ReadError;
use crate::reader::MakReader as ReaderV1;
use crate::v2::{self, Headers, Record, TimestampType};
use crate::v3;

/// The source an [`AnyReader`] reads: the first bytes, already taken to tell the version, then
/// the rest of the stream.
pub type Peeked<R> = io::Chain<Cursor<Vec<u8>>, R>;

/// Bytes enough to tell the version: the version 2 and 3 magic and the version field.
pub const DETECT_LEN: usize = 10;

/// A format version, as told by a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2,
    V3,
}

impl Version {
    /// The version of a file starting with `first` (its first [`DETECT_LEN`] bytes, or all of a
    /// shorter file), `None` for none. A file that starts like versions 2 and 3 but is too short
    /// to say which, or names another version, is taken as version 2, whose reader reports it.
    pub fn detect(first: &[u8]) -> Option<Version> {
        match first.first() {
            Some(&b) if b == crate::MAGIC[0] => Some(Version::V1),
            Some(&b) if b == v2::MAGIC[0] => match crate::preamble::version_of(first) {
                Some(v3::VERSION) => Some(Version::V3),
                _ => Some(Version::V2),
            },
            _ => None,
        }
    }
}

/// A reader for either version. Version 1 records come out in version 2's shape: key and value
/// always `Some` (version 1 cannot tell null from empty), timestamp -1 of type
/// [`TimestampType::NotAvailable`], no headers.
#[derive(Debug)]
// One per open file, used on every record: a box would add a pointer chase per record to save
// a few hundred bytes per file.
#[allow(clippy::large_enum_variant)]
pub enum AnyReader<R> {
    V1(ReaderV1<Peeked<R>>),
    V2(v2::MakReader<Peeked<R>>),
    V3(v3::MakReader<Peeked<R>>),
}

impl<R: Read> AnyReader<R> {
    /// Reads the first byte to tell the version, then opens the matching reader.
    pub fn new(reader: R) -> Result<Self, ReadError> {
        Self::open(reader, None)
    }

    /// Like [`AnyReader::new`], with the size limit of `with_size_limit` of either reader.
    pub fn with_size_limit(reader: R, max_len: u64) -> Result<Self, ReadError> {
        Self::open(reader, Some(max_len))
    }

    fn open(mut reader: R, size_limit: Option<u64>) -> Result<Self, ReadError> {
        let mut first = Vec::with_capacity(DETECT_LEN);
        // Until DETECT_LEN bytes or the end: a network body may arrive a few bytes at a time.
        while first.len() < DETECT_LEN {
            let mut byte = [0u8; DETECT_LEN];
            let want = DETECT_LEN - first.len();
            match reader.read(&mut byte[..want]) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(ReadError::Io { position: first.len() as u64, source }),
                Ok(0) => break,
                Ok(got) => first.extend_from_slice(&byte[..got]),
            }
        }
        // An empty input goes to the version 1 reader, whose error names the missing magic.
        let version = if first.is_empty() { Some(Version::V1) } else { Version::detect(&first) };
        let source = Cursor::new(first).chain(reader);
        Ok(match version {
            Some(Version::V2) => AnyReader::V2(match size_limit {
                Some(limit) => v2::MakReader::with_size_limit(source, limit)?,
                None => v2::MakReader::new(source)?,
            }),
            Some(Version::V3) => AnyReader::V3(match size_limit {
                Some(limit) => v3::MakReader::with_size_limit(source, limit)?,
                None => v3::MakReader::new(source)?,
            }),
            // Neither magic: the version 1 reader reports it, as before version 2 existed.
            Some(Version::V1) | None => AnyReader::V1(match size_limit {
                Some(limit) => ReaderV1::with_size_limit(source, limit)?,
                None => ReaderV1::new(source)?,
            }),
        })
    }

    /// The version being read.
    pub fn version(&self) -> Version {
        match self {
            AnyReader::V1(_) => Version::V1,
            AnyReader::V2(_) => Version::V2,
            AnyReader::V3(_) => Version::V3,
        }
    }

    /// The header's topic.
    pub fn topic(&self) -> &str {
        match self {
            AnyReader::V1(reader) => &reader.header().topic,
            AnyReader::V2(reader) => &reader.header().topic,
            AnyReader::V3(reader) => &reader.header().topic,
        }
    }

    /// The header's partition.
    pub fn partition(&self) -> i32 {
        match self {
            AnyReader::V1(reader) => reader.header().partition,
            AnyReader::V2(reader) => reader.header().partition,
            AnyReader::V3(reader) => reader.header().partition,
        }
    }

    /// The header's start offset (the first offset the file was created for).
    pub fn start_offset(&self) -> i64 {
        match self {
            AnyReader::V1(reader) => reader.header().start_offset,
            AnyReader::V2(reader) => reader.header().start_offset,
            AnyReader::V3(reader) => reader.header().start_offset,
        }
    }

    /// When the file was created, in seconds since the epoch: version 1's `start_time`,
    /// version 2's `created_ms` (`None` when absent).
    pub fn created_secs(&self) -> Option<f64> {
        match self {
            AnyReader::V1(reader) => Some(reader.header().start_time),
            AnyReader::V2(reader) => reader.header().created_ms.map(|ms| ms as f64 / 1000.0),
            AnyReader::V3(reader) => reader.header().created_ms.map(|ms| ms as f64 / 1000.0),
        }
    }

    /// The last offset as the fixed part of the file states it, known before any record is
    /// read (so from the first bytes of a compressed object): version 1's last-offset field
    /// (the start offset when empty; `None` beyond `i64`), version 2's and 3's progress block
    /// (`None` when the file is empty or the block was torn).
    pub fn last_offset_hint(&self) -> Option<i64> {
        match self {
            AnyReader::V1(reader) => i64::try_from(reader.last_offset_field()).ok(),
            AnyReader::V2(reader) => {
                reader.progress().filter(|progress| progress.record_count > 0).map(|progress| progress.last_offset)
            }
            AnyReader::V3(reader) => {
                reader.progress().filter(|progress| progress.record_count > 0).map(|progress| progress.last_offset)
            }
        }
    }

    /// The timestamps of the first and the last record as the progress block states them (each
    /// `None` when stored as -1), known before any record is read; `None` for version 1 (no
    /// timestamps), an empty file or a torn block. Stored timestamps, not a minimum and a
    /// maximum: CreateTime need not increase (see [`AnyReader::time_range`]).
    pub fn timestamp_hints(&self) -> Option<(Option<i64>, Option<i64>)> {
        let known = |ms: i64| (ms >= 0).then_some(ms);
        match self {
            AnyReader::V1(_) => None,
            AnyReader::V2(reader) => reader
                .progress()
                .filter(|progress| progress.record_count > 0)
                .map(|progress| (known(progress.first_timestamp), known(progress.last_timestamp))),
            AnyReader::V3(reader) => reader
                .progress()
                .filter(|progress| progress.record_count > 0)
                .map(|progress| (known(progress.first_timestamp), known(progress.last_timestamp))),
        }
    }

    /// The smallest and largest timestamp of any record, as version 3's progress block states
    /// them before any record is read; `None` for versions 1 and 2 (which do not keep them), a
    /// file without a timestamped record, or a torn block.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        match self {
            AnyReader::V3(reader) => reader
                .progress()
                .filter(|progress| progress.min_timestamp >= 0)
                .map(|progress| (progress.min_timestamp, progress.max_timestamp)),
            AnyReader::V1(_) | AnyReader::V2(_) => None,
        }
    }

    /// The record count and last offset a sealed file's footer states (the last offset -1 when
    /// it holds no record), known once every record has been read and the footer checked
    /// against them; `None` before that, for an unsealed file and for version 1 (no footer).
    pub fn sealed_counts(&self) -> Option<(u64, i64)> {
        match self {
            AnyReader::V1(_) => None,
            AnyReader::V2(reader) => reader.footer().map(|footer| (footer.record_count, footer.last_offset)),
            AnyReader::V3(reader) => reader.footer().map(|footer| (footer.record_count, footer.last_offset)),
        }
    }

    /// The underlying stream after the last record read (see either reader's `into_inner`).
    pub fn into_inner(self) -> BufReader<Peeked<R>> {
        match self {
            AnyReader::V1(reader) => reader.into_inner(),
            AnyReader::V2(reader) => reader.into_inner(),
            AnyReader::V3(reader) => reader.into_inner(),
        }
    }

    /// The next record (see the type's doc for version 1 records), `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        match self {
            AnyReader::V1(reader) => Ok(reader.next_record()?.map(|record| Record {
                offset: record.offset,
                timestamp: -1,
                timestamp_type: TimestampType::NotAvailable,
                key: Some(record.key),
                value: Some(record.value),
                headers: Headers::EMPTY,
            })),
            AnyReader::V2(reader) => reader.next_record(),
            AnyReader::V3(reader) => reader.next_record(),
        }
    }
}
