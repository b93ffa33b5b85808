//! Reading one archive object, or a local MAK file, the one way every reader does: its layers
//! (age, then the codec) and its MAK version are told apart by content, never by name; records
//! are decoded in a stream, in bounded memory; and the end is checked - the codec's checksum and
//! end mark, and for a sealed file offsets in order and the last record where the header said.
//!
//! The header's range (first and last offset, for versions 2 and 3 the first and last record's
//! timestamps, for version 3 the smallest and largest) is in the first bytes of the decompressed stream, so [`ObjectReader::header`] works
//! on the first [`head_len`] bytes of an object as well as on all of it.

use std::io::{self, BufReader, Read};

use bytes::Bytes;
use mak::layers::ArchiveReader;
use mak::v2::Record;
use mak::{AnyReader, Version};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;

use super::{Archive, ArchiveError};
use crate::names::TopicPartition;

/// Compressed bytes fetched to read a header: the MAK header is the first few hundred bytes of
/// the stream, which every codec keeps in its first block.
pub const HEADER_FETCH: u64 = 64 * 1024;

/// Read ahead of the codec: large enough that decoding, not the source, sets the pace.
const INPUT_BUFFER: usize = 256 * 1024;

/// How many of an object's first bytes hold its header: age decrypts whole 64 KiB chunks, so an
/// encrypted object needs its first chunk complete.
pub fn head_len(encrypted: bool) -> u64 {
    if encrypted {
        3 * HEADER_FETCH
    } else {
        HEADER_FETCH
    }
}

/// What the fixed part of an object states, before any record is read.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectHeader {
    pub version: Version,
    pub tp: TopicPartition,
    pub start: i64,
    /// The last offset written: version 1's last-offset header field, version 2's and 3's
    /// progress block.
    pub end: i64,
    /// Versions 2 and 3: the first and the last record's timestamps (ms) as stored, not a
    /// minimum and a maximum; None for version 1, or a record without one.
    pub first_timestamp: Option<i64>,
    pub last_timestamp: Option<i64>,
    /// Version 3: the smallest and largest timestamp of any record; None for versions 1 and 2
    /// (which do not keep them), or when no record has one.
    pub time_range: Option<(i64, i64)>,
    /// When the file was started, in seconds since the epoch, if it says.
    pub created_secs: Option<f64>,
}

/// An object that cannot be read, or whose bytes contradict themselves.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ObjectError {
    /// The object as the user knows it: `s3://bucket/key` or a path.
    pub name: String,
    pub problem: ObjectProblem,
}

/// What is wrong with an object (see [`ObjectError`], which names it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectProblem {
    /// Its age or codec layer cannot be opened (or it is encrypted and no key was given).
    #[error("{0}")]
    Layers(Box<mak::layers::LayerError>),
    /// Its MAK bytes are damaged; the error names the byte.
    #[error("{0}")]
    Read(mak::ReadError),
    #[error("no last offset: {}", match .0 {
        Version::V1 => "last offset out of range",
        Version::V2 | Version::V3 => "the progress block is torn or the file is empty",
    })]
    NoLastOffset(Version),
    #[error("last offset {end} before the first offset {start}")]
    EndBeforeStart { start: i64, end: i64 },
    #[error("offset {offset} out of order at record {index}")]
    OutOfOrder { index: u64, offset: i64 },
    #[error("the last record has offset {last}, the header says {stated}")]
    LastOffsetDisagrees { last: i64, stated: i64 },
    #[error("holds no record, the header says its last offset is {stated}")]
    NoRecords { stated: i64 },
    /// Its header names another partition than the key it was read from.
    #[error("holds {holds}, not {expected} as its key says")]
    WrongPartition { holds: String, expected: String },
    /// The codec's stream after the MAK data: its checksum or end mark is wrong or missing.
    #[error("after the last record: {0}")]
    Trailer(io::Error),
}

impl ObjectProblem {
    /// True when only a decryption key is missing: the object is not damaged.
    pub fn needs_key(&self) -> bool {
        matches!(self, ObjectProblem::Layers(layers) if matches!(**layers, mak::layers::LayerError::NeedsDecryption))
    }
}

/// What reading a whole object found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectSummary {
    pub records: u64,
    /// The offset of the last record, None when there is none.
    pub last: Option<i64>,
}

/// One object's records, read through its layers.
pub struct ObjectReader<R: Read> {
    name: String,
    reader: AnyReader<ArchiveReader<BufReader<R>>>,
    records: u64,
    last: Option<i64>,
    /// The first record whose offset did not increase: (its index, its offset).
    disorder: Option<(u64, i64)>,
}

impl<R: Read> ObjectReader<R> {
    /// Opens `input` (named `name` in errors): age if it is encrypted (with `decryption`), the
    /// codec, the MAK header.
    pub fn open(
        name: impl Into<String>,
        input: R,
        decryption: Option<&mak::crypt::Decryption>,
    ) -> Result<Self, ObjectError> {
        let name = name.into();
        let layers = match mak::layers::archive_reader(BufReader::with_capacity(INPUT_BUFFER, input), decryption) {
            Ok(layers) => layers,
            Err(source) => return Err(ObjectError { name, problem: ObjectProblem::Layers(Box::new(source)) }),
        };
        // No size limit: a truncated object still yields the records before the cut, then fails
        // naming the byte where the data ends (the reader never allocates past what it has read).
        match AnyReader::new(layers) {
            Ok(reader) => Ok(ObjectReader { name, reader, records: 0, last: None, disorder: None }),
            Err(source) => Err(ObjectError { name, problem: ObjectProblem::Read(source) }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> Version {
        self.reader.version()
    }

    pub fn topic(&self) -> &str {
        self.reader.topic()
    }

    /// An error unless the header names `tp`, the partition its key is in.
    pub fn expect_partition(&self, tp: &TopicPartition) -> Result<(), ObjectError> {
        if self.topic() == tp.topic && self.partition() == tp.partition {
            return Ok(());
        }
        let holds = format!("{}:{}", self.topic(), self.partition());
        Err(ObjectError {
            name: self.name.clone(),
            problem: ObjectProblem::WrongPartition { holds, expected: tp.to_string() },
        })
    }

    pub fn partition(&self) -> i32 {
        self.reader.partition()
    }

    pub fn start_offset(&self) -> i64 {
        self.reader.start_offset()
    }

    pub fn created_secs(&self) -> Option<f64> {
        self.reader.created_secs()
    }

    fn error(&self, problem: ObjectProblem) -> ObjectError {
        ObjectError { name: self.name.clone(), problem }
    }

    /// The range the fixed part of the object states, read before any record.
    pub fn header(&self) -> Result<ObjectHeader, ObjectError> {
        let version = self.reader.version();
        let start = self.reader.start_offset();
        let end = self.reader.last_offset_hint().ok_or_else(|| self.error(ObjectProblem::NoLastOffset(version)))?;
        if end < start {
            return Err(self.error(ObjectProblem::EndBeforeStart { start, end }));
        }
        let (first_timestamp, last_timestamp) = self.reader.timestamp_hints().unwrap_or((None, None));
        Ok(ObjectHeader {
            version,
            tp: TopicPartition::new(self.reader.topic(), self.reader.partition()),
            start,
            end,
            first_timestamp,
            last_timestamp,
            time_range: self.reader.time_range(),
            created_secs: self.reader.created_secs(),
        })
    }

    /// The next record, `None` at the end. Records come as stored: offsets that do not increase
    /// from the header's start on (which version 1 never checked) are noted, and refused by
    /// [`finish_sealed`](Self::finish_sealed).
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ObjectError> {
        let start = self.reader.start_offset();
        let (index, previous) = (self.records, self.last);
        let record = match self.reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            Err(source) => return Err(ObjectError { name: self.name.clone(), problem: ObjectProblem::Read(source) }),
        };
        let offset = record.offset;
        if self.disorder.is_none() && (offset < start || previous.is_some_and(|previous| offset <= previous)) {
            self.disorder = Some((index, offset));
        }
        self.records += 1;
        self.last = Some(offset);
        Ok(Some(record))
    }

    /// Reads what is left - records, then the codec's stream to its end, so that its checksum
    /// and end mark are checked.
    pub fn finish(self) -> Result<ObjectSummary, ObjectError> {
        self.finish_checking(false)
    }

    /// [`finish`](Self::finish) for a sealed file, as every archived object is: its offsets must
    /// also increase, and its last record be where its header says. (An in-progress version 1
    /// file's header may lag behind its records after a crash, and the original's files were
    /// never checked for order; `kafkatos3_parse` shows such files as they are.)
    pub fn finish_sealed(self) -> Result<ObjectSummary, ObjectError> {
        self.finish_checking(true)
    }

    fn finish_checking(mut self, sealed: bool) -> Result<ObjectSummary, ObjectError> {
        while self.next_record()?.is_some() {}
        if sealed {
            if let Some((index, offset)) = self.disorder {
                return Err(self.error(ObjectProblem::OutOfOrder { index, offset }));
            }
            let stated = self.reader.last_offset_hint();
            match (self.last, stated) {
                (Some(last), Some(stated)) if last != stated => {
                    return Err(self.error(ObjectProblem::LastOffsetDisagrees { last, stated }))
                }
                (None, Some(stated)) => return Err(self.error(ObjectProblem::NoRecords { stated })),
                (Some(_), None) => return Err(self.error(ObjectProblem::NoLastOffset(self.reader.version()))),
                _ => {}
            }
        }
        let summary = ObjectSummary { records: self.records, last: self.last };
        let name = self.name;
        io::copy(&mut self.reader.into_inner(), &mut io::sink())
            .map_err(|source| ObjectError { name, problem: ObjectProblem::Trailer(source) })?;
        Ok(summary)
    }
}

impl Archive {
    /// The first bytes of an object of `size` bytes, enough for [`ObjectReader::header`] (one
    /// ranged GET, or the whole object when it is that small).
    pub async fn head_bytes(&self, key: &ObjectPath, size: u64, encrypted: bool) -> Result<Bytes, ArchiveError> {
        let head = head_len(encrypted);
        let fetched = if size <= head {
            match self.store().get(key).await {
                Ok(result) => result.bytes().await,
                Err(error) => Err(error),
            }
        } else {
            self.store().get_range(key, 0..head).await
        };
        fetched.map_err(|source| self.store_error(key, source))
    }

    /// A blocking reader of an object's body, streamed in the chunks the store sends by a task on
    /// `runtime`, so an object of any size is read in bounded memory. Not to be read from inside
    /// the runtime's own tasks.
    pub fn stream(&self, runtime: &tokio::runtime::Handle, key: &ObjectPath) -> ObjectStream {
        use futures::StreamExt;
        let (tx, chunks) = tokio::sync::mpsc::channel(4);
        let (store, key) = (self.store_arc(), key.clone());
        runtime.spawn(async move {
            let mut body = match store.get(&key).await {
                Ok(result) => result.into_stream(),
                Err(error) => {
                    let _ = tx.send(Err(io::Error::other(error))).await;
                    return;
                }
            };
            while let Some(chunk) = body.next().await {
                let failed = chunk.is_err();
                if tx.send(chunk.map_err(io::Error::other)).await.is_err() || failed {
                    return;
                }
            }
        });
        ObjectStream { chunks, chunk: Bytes::new() }
    }
}

/// See [`Archive::stream`].
pub struct ObjectStream {
    chunks: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for ObjectStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
