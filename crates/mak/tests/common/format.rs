//! Versions 2 and 3 through one interface, so that the tests every version must pass (round
//! trips, crash recovery) are written once and run for each.

use std::path::Path;

use mak::v2::{Header, OwnedRecord, State};
use mak::{ReadError, Version, WriteError};

/// What a whole read returns, in either version.
#[derive(Debug, PartialEq)]
pub struct Read {
    pub header: Header,
    pub records: Vec<OwnedRecord>,
    /// (record count, first offset, last offset, first timestamp, last timestamp).
    pub footer: Option<(u64, i64, i64, i64, i64)>,
    /// Version 3's footer: the smallest and largest timestamp.
    pub footer_range: Option<(i64, i64)>,
    pub write_position: u64,
}

/// The progress block's fields both versions have: write position, record count, last offset, state.
pub type ProgressSummary = (u64, u64, i64, State);

/// What `open_append` found: record count, last offset, truncated bytes, scanned.
pub type Found = (u64, Option<i64>, u64, bool);

pub trait Format {
    const VERSION: Version;
    /// `v2`, `v3`: how golden files of the version are named.
    const NAME: &'static str;
    /// Byte position and end of the progress block.
    const PROGRESS_AT: u64;
    const PROGRESS_END: u64;
    /// Bytes of the footer frame or block.
    const FOOTER_LEN: u64;
    type Writer;

    fn create(path: &Path, header: &Header) -> Self::Writer;
    fn open_append(path: &Path) -> Result<(Self::Writer, Found), WriteError>;
    fn append(writer: &mut Self::Writer, record: &OwnedRecord) -> Result<(), WriteError>;
    fn sync(writer: &mut Self::Writer);
    fn close(writer: Self::Writer);
    fn suspend(writer: Self::Writer);
    fn len(writer: &Self::Writer) -> u64;
    fn record_count(writer: &Self::Writer) -> u64;
    fn is_dirty(writer: &Self::Writer) -> bool;
    /// Reads the whole file: with its length as size limit, or as a stream of unknown length.
    fn read(bytes: &[u8], limited: bool) -> Result<Read, ReadError>;
    fn read_all(bytes: &[u8]) -> Result<u64, ReadError>;
    /// The progress block from the first bytes, `None` when it is torn.
    fn summary(bytes: &[u8]) -> (Header, Option<ProgressSummary>);

    /// Writes `records` to a new file, syncing after each when `sync_each`, and seals it when
    /// `seal` (otherwise syncs and drops the writer, leaving an open file).
    fn write_file(path: &Path, header: &Header, records: &[OwnedRecord], sync_each: bool, seal: bool) {
        let mut writer = Self::create(path, header);
        for record in records {
            Self::append(&mut writer, record).unwrap();
            if sync_each {
                Self::sync(&mut writer);
            }
        }
        if seal {
            Self::close(writer);
        } else {
            Self::sync(&mut writer);
        }
    }
}

pub struct V2;
pub struct V3;

macro_rules! collect {
    ($reader:expr, $footer:expr, $range:expr) => {{
        let mut reader = $reader;
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record.to_owned_record());
        }
        assert!(matches!(reader.next_record(), Ok(None)), "a reader at its end stays there");
        let footer = reader.footer().map($footer);
        let footer_range = reader.footer().and_then($range);
        Ok(Read {
            header: reader.header().clone(),
            records,
            footer,
            footer_range,
            write_position: reader.write_position().expect("known at the end"),
        })
    }};
}

/// One `Format` per version: the versions' writers and readers have the same API, module by
/// module; only the footer's size and its timestamp range (version 3 only) differ.
macro_rules! format_for {
    ($format:ident, $module:ident, $version:ident, $name:literal, $footer_len:literal, $range:expr) => {
        impl Format for $format {
            const VERSION: Version = Version::$version;
            const NAME: &'static str = $name;
            const PROGRESS_AT: u64 = mak::$module::PROGRESS_AT;
            const PROGRESS_END: u64 = mak::$module::HEADER_LEN_AT;
            const FOOTER_LEN: u64 = $footer_len;
            type Writer = mak::$module::MakWriter;

            fn create(path: &Path, header: &Header) -> Self::Writer {
                mak::$module::MakWriter::create(path, header).unwrap()
            }
            fn open_append(path: &Path) -> Result<(Self::Writer, Found), WriteError> {
                let (writer, r) = mak::$module::MakWriter::open_append(path)?;
                Ok((writer, (r.record_count, r.last_offset, r.truncated_bytes, r.scanned)))
            }
            fn append(writer: &mut Self::Writer, record: &OwnedRecord) -> Result<(), WriteError> {
                writer.append(&record.as_record_ref())
            }
            fn sync(writer: &mut Self::Writer) {
                writer.sync().unwrap()
            }
            fn close(writer: Self::Writer) {
                writer.close().unwrap()
            }
            fn suspend(writer: Self::Writer) {
                writer.suspend().unwrap()
            }
            fn len(writer: &Self::Writer) -> u64 {
                writer.len()
            }
            fn record_count(writer: &Self::Writer) -> u64 {
                writer.record_count()
            }
            fn is_dirty(writer: &Self::Writer) -> bool {
                writer.is_dirty()
            }
            fn read(bytes: &[u8], limited: bool) -> Result<Read, ReadError> {
                let reader = if limited {
                    mak::$module::MakReader::with_size_limit(bytes, bytes.len() as u64)?
                } else {
                    mak::$module::MakReader::new(bytes)?
                };
                collect!(
                    reader,
                    |f: &mak::$module::Footer| (
                        f.record_count,
                        f.first_offset,
                        f.last_offset,
                        f.first_timestamp,
                        f.last_timestamp
                    ),
                    $range
                )
            }
            fn read_all(bytes: &[u8]) -> Result<u64, ReadError> {
                mak::$module::read_all(bytes)
            }
            fn summary(bytes: &[u8]) -> (Header, Option<ProgressSummary>) {
                let summary = mak::$module::read_summary(bytes).unwrap();
                let progress = summary.progress.map(|p| (p.write_position, p.record_count, p.last_offset, p.state));
                (summary.header, progress)
            }
        }
    };
}

format_for!(V2, v2, V2, "v2", 53, |_: &mak::v2::Footer| None);
format_for!(V3, v3, V3, "v3", 69, |f: &mak::v3::Footer| Some((f.min_timestamp, f.max_timestamp)));
