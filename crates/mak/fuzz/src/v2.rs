//! Version 2: reading and checking, and structured inputs (a valid file, then damage).

use std::fs;
use std::path::Path;

use arbitrary::Arbitrary;
use mak::ReadError;

use crate::heap::*;
use crate::v1::*;

/// A version 2 record as owned bytes, with everything the format keeps.
pub type OwnedV2 = mak::v2::OwnedRecord;

fn collect_v2<R: std::io::Read>(mut reader: mak::v2::MakReader<R>) -> Result<Vec<OwnedV2>, ReadError> {
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        // Iterating the headers of a record the reader accepted must not stop early.
        assert_eq!(record.headers.count(), record.headers.len());
        records.push(record.to_owned_record());
    }
    assert!(matches!(reader.next_record(), Ok(None)), "a reader at its end stays there");
    assert_eq!(reader.write_position(), Some(reader.position()), "records end exactly at the write position");
    Ok(records)
}

fn drain_v2_streaming(bytes: &[u8]) -> Result<u64, ReadError> {
    let mut reader = mak::v2::MakReader::new(bytes)?;
    while reader.next_record()?.is_some() {}
    Ok(reader.records_read())
}

/// Reads `bytes` as a version 2 file every way the crate offers (size-limited, streaming,
/// summary only, through `AnyReader`), checking that each returns records or an error inside
/// the input, that they agree, and the heap each read takes on its own. Returns the
/// size-limited result.
pub fn read_and_check_v2(bytes: &[u8]) -> Result<Vec<OwnedV2>, ReadError> {
    let len = bytes.len();
    let (count, peak) = measure_peak(|| mak::v2::read_all(bytes));
    check_heap("v2 read_all", peak, len);
    let (streaming_count, peak) = measure_peak(|| drain_v2_streaming(bytes));
    check_heap("v2 new (streaming)", peak, len);

    let limited = mak::v2::MakReader::with_size_limit(bytes, len as u64).and_then(collect_v2);
    let streaming = mak::v2::MakReader::new(bytes).and_then(collect_v2);
    match (&count, &limited) {
        (Ok(count), Ok(records)) => assert_eq!(*count, records.len() as u64),
        (Err(err), Err(expected)) => {
            check_error("v2 with_size_limit", err, len);
            assert_eq!(err.to_string(), expected.to_string());
        }
        _ => panic!("v2 read_all {count:?} disagrees with with_size_limit {limited:?}"),
    }
    match (&streaming, &limited) {
        (Err(err), _) => check_error("v2 new (streaming)", err, len),
        (Ok(records), Ok(expected)) => assert_eq!(records, expected),
        (Ok(_), Err(err)) => panic!("v2 streaming read succeeds where the size-limited one fails: {err:?}"),
    }
    match (&streaming, &streaming_count) {
        (Ok(records), Ok(count)) => assert_eq!(records.len() as u64, *count),
        (Err(err), Err(again)) => assert_eq!(err.to_string(), again.to_string()),
        _ => panic!("two v2 streaming reads of the same bytes disagree"),
    }

    match mak::v2::read_summary(bytes) {
        Ok(summary) => {
            if let Ok(reader) = mak::v2::MakReader::new(bytes) {
                assert_eq!(&summary.header, reader.header());
                assert_eq!(summary.progress.as_ref(), reader.progress());
            }
        }
        Err(err) => check_error("v2 read_summary", &err, len),
    }

    if bytes.first() == Some(&mak::v2::MAGIC[0]) {
        let any = mak::AnyReader::with_size_limit(bytes, len as u64).and_then(|mut reader| {
            let mut records = Vec::new();
            while let Some(record) = reader.next_record()? {
                records.push(record.to_owned_record());
            }
            Ok(records)
        });
        match (&any, &limited) {
            (Ok(records), Ok(expected)) => assert_eq!(records, expected),
            (Err(err), Err(expected)) => assert_eq!(err.to_string(), expected.to_string()),
            _ => panic!("AnyReader {any:?} disagrees with the v2 reader {limited:?}"),
        }
    }
    limited
}

/// A version 2 file to write with `v2::MakWriter`: records synced, then either sealed or
/// followed by records appended but never synced (the writer is dropped, as in a crash).
#[derive(Arbitrary, Debug)]
pub struct ValidFileV2 {
    topic: String,
    partition: u32,
    start_offset: u32,
    synced: Vec<ArbRecordV2>,
    unsynced: Vec<ArbRecordV2>,
    sync_each: bool,
    seal: bool,
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
    /// Writes the file at `path` and returns the records a reader must find (the synced ones).
    pub fn write(&self, path: &Path) -> Vec<OwnedV2> {
        let _ = fs::remove_file(path);
        let header = mak::v2::Header {
            topic: self.topic.clone(),
            partition: (self.partition & i32::MAX as u32) as i32,
            start_offset: i64::from(self.start_offset),
            created_ms: Some(0),
            writer: None,
        };
        let mut writer = mak::v2::MakWriter::create(path, &header).expect("create");
        let mut offset = i64::from(self.start_offset);
        let mut append = |writer: &mut mak::v2::MakWriter, record: &ArbRecordV2| {
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
            writer.close().expect("close");
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

/// Recomputes the progress block, header and frame CRCs of a damaged version 2 file, as far
/// as its lengths let it be walked, so the damage reaches the checks behind the CRCs.
pub fn resign_v2(bytes: &mut [u8]) {
    let block = mak::v2::PROGRESS_AT as usize;
    let header_len_at = mak::v2::HEADER_LEN_AT as usize;
    if bytes.len() < header_len_at + 4 {
        return;
    }
    let crc = crc32c::crc32c(&bytes[block..block + 44]);
    bytes[block + 44..block + 48].copy_from_slice(&crc.to_be_bytes());
    let json_len = u32::from_be_bytes(bytes[header_len_at..header_len_at + 4].try_into().unwrap());
    let mut at = mak::v2::data_start(json_len) as usize;
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
