//! Reading a file of either version, told apart by its first byte: `M` (the `MAK` magic) for
//! version 1, `0x89` for version 2.

use std::io::{self, BufReader, Cursor, Read};

use crate::error::ReadError;
use crate::reader::MakReader as ReaderV1;
use crate::v2::{self, Headers, Record, TimestampType};

/// The source an [`AnyReader`] reads: the first byte, already taken to tell the version, then
/// the rest of the stream.
pub type Peeked<R> = io::Chain<Cursor<[u8; 1]>, R>;

/// A format version, as told by a file's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    /// The version whose magic starts with `first_byte`, `None` for neither.
    pub fn detect(first_byte: u8) -> Option<Version> {
        match first_byte {
            b if b == crate::MAGIC[0] => Some(Version::V1),
            b if b == v2::MAGIC[0] => Some(Version::V2),
            _ => None,
        }
    }
}

/// A reader for either version. Version 1 records come out in version 2's shape: key and value
/// always `Some` (version 1 cannot tell null from empty), timestamp -1 of type
/// [`TimestampType::NotAvailable`], no headers.
#[derive(Debug)]
pub enum AnyReader<R> {
    V1(ReaderV1<Peeked<R>>),
    V2(v2::MakReader<Peeked<R>>),
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
        let mut first = [0u8; 1];
        let got = loop {
            match reader.read(&mut first) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(ReadError::Io { position: 0, source }),
                Ok(got) => break got,
            }
        };
        // An empty input goes to the version 1 reader, whose error names the missing magic.
        let version = if got == 0 { Some(Version::V1) } else { Version::detect(first[0]) };
        let first_part = Cursor::new(first);
        let mut source = first_part.chain(reader);
        if got == 0 {
            source.get_mut().0.set_position(1);
        }
        Ok(match version {
            Some(Version::V2) => AnyReader::V2(match size_limit {
                Some(limit) => v2::MakReader::with_size_limit(source, limit)?,
                None => v2::MakReader::new(source)?,
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
        }
    }

    /// The header's topic.
    pub fn topic(&self) -> &str {
        match self {
            AnyReader::V1(reader) => &reader.header().topic,
            AnyReader::V2(reader) => &reader.header().topic,
        }
    }

    /// The header's partition.
    pub fn partition(&self) -> i32 {
        match self {
            AnyReader::V1(reader) => reader.header().partition,
            AnyReader::V2(reader) => reader.header().partition,
        }
    }

    /// The header's start offset (the first offset the file was created for).
    pub fn start_offset(&self) -> i64 {
        match self {
            AnyReader::V1(reader) => reader.header().start_offset,
            AnyReader::V2(reader) => reader.header().start_offset,
        }
    }

    /// When the file was created, in seconds since the epoch: version 1's `start_time`,
    /// version 2's `created_ms` (`None` when absent).
    pub fn created_secs(&self) -> Option<f64> {
        match self {
            AnyReader::V1(reader) => Some(reader.header().start_time),
            AnyReader::V2(reader) => reader.header().created_ms.map(|ms| ms as f64 / 1000.0),
        }
    }

    /// The last offset as the fixed part of the file states it, known before any record is
    /// read (so from the first bytes of a compressed object): version 1's last-offset field
    /// (the start offset when empty; `None` beyond `i64`), version 2's progress block (`None`
    /// when the file is empty or the block was torn).
    pub fn last_offset_hint(&self) -> Option<i64> {
        match self {
            AnyReader::V1(reader) => i64::try_from(reader.last_offset_field()).ok(),
            AnyReader::V2(reader) => {
                reader.progress().filter(|progress| progress.record_count > 0).map(|progress| progress.last_offset)
            }
        }
    }

    /// The timestamps of the first and the last record as version 2's progress block states them
    /// (each `None` when stored as -1), known before any record is read; `None` for version 1
    /// (no timestamps), an empty file or a torn block. Stored timestamps, not a minimum and a
    /// maximum: CreateTime need not increase.
    pub fn timestamp_hints(&self) -> Option<(Option<i64>, Option<i64>)> {
        let known = |ms: i64| (ms >= 0).then_some(ms);
        match self {
            AnyReader::V1(_) => None,
            AnyReader::V2(reader) => reader
                .progress()
                .filter(|progress| progress.record_count > 0)
                .map(|progress| (known(progress.first_timestamp), known(progress.last_timestamp))),
        }
    }

    /// The underlying stream after the last record read (see either reader's `into_inner`).
    pub fn into_inner(self) -> BufReader<Peeked<R>> {
        match self {
            AnyReader::V1(reader) => reader.into_inner(),
            AnyReader::V2(reader) => reader.into_inner(),
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
        }
    }
}
