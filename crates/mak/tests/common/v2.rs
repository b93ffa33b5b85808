//! Helpers for the version 2 tests: writing whole files, reading them back owned, and a
//! proptest strategy for records.

use std::path::Path;

use mak::v2::{Footer, Header, MakReader, MakWriter, OwnedRecord, TimestampType};
use mak::ReadError;
use proptest::prelude::*;

pub fn header(topic: &str, partition: i32, start_offset: i64) -> Header {
    Header {
        topic: topic.to_string(),
        partition,
        start_offset,
        created_ms: Some(1_479_000_000_000),
        writer: Some("mak tests".to_string()),
    }
}

/// A record with a value and no headers.
pub fn simple(offset: i64, value: &[u8]) -> OwnedRecord {
    OwnedRecord {
        offset,
        timestamp: 1_479_000_000_000 + offset,
        timestamp_type: TimestampType::CreateTime,
        key: Some(format!("key-{offset}").into_bytes()),
        value: Some(value.to_vec()),
        headers: vec![],
    }
}

pub fn append(writer: &mut MakWriter, record: &OwnedRecord) {
    writer.append(&record.as_record_ref()).unwrap();
}

/// Writes `records` to a new file at `path`, syncing after each when `sync_each`, and seals it
/// when `seal` (otherwise syncs and drops the writer, leaving an open file).
pub fn write_file(path: &Path, header: &Header, records: &[OwnedRecord], sync_each: bool, seal: bool) {
    let mut writer = MakWriter::create(path, header).unwrap();
    for record in records {
        append(&mut writer, record);
        if sync_each {
            writer.sync().unwrap();
        }
    }
    if seal {
        writer.close().unwrap();
    } else {
        writer.sync().unwrap();
    }
}

/// What a whole read returns.
#[derive(Debug, PartialEq)]
pub struct Read {
    pub header: Header,
    pub records: Vec<OwnedRecord>,
    pub footer: Option<Footer>,
    pub write_position: u64,
}

pub fn collect<R: std::io::Read>(mut reader: MakReader<R>) -> Result<Read, ReadError> {
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record.to_owned_record());
    }
    assert!(matches!(reader.next_record(), Ok(None)), "a reader at its end stays there");
    Ok(Read {
        header: reader.header().clone(),
        records,
        footer: reader.footer().copied(),
        write_position: reader.write_position().expect("known at the end"),
    })
}

/// Reads a whole file from a slice with its length as size limit.
pub fn read_slice(bytes: &[u8]) -> Result<Read, ReadError> {
    collect(MakReader::with_size_limit(bytes, bytes.len() as u64)?)
}

/// Reads a whole file as a stream of unknown length.
pub fn read_stream(bytes: &[u8]) -> Result<Read, ReadError> {
    collect(MakReader::new(bytes)?)
}

fn bytes_strategy(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        4 => proptest::collection::vec(any::<u8>(), 0..max).prop_map(Some),
    ]
}

fn timestamp_strategy() -> impl Strategy<Value = (i64, TimestampType)> {
    prop_oneof![
        Just((-1, TimestampType::NotAvailable)),
        any::<i64>().prop_map(|t| (t, TimestampType::CreateTime)),
        (0i64..4_000_000_000_000).prop_map(|t| (t, TimestampType::LogAppendTime)),
    ]
}

fn headers_strategy() -> impl Strategy<Value = Vec<(String, Option<Vec<u8>>)>> {
    // Few distinct keys, so duplicates are common.
    let key = prop_oneof![Just(String::new()), Just("a".to_string()), Just("trace-id".to_string()), ".{0,8}"];
    proptest::collection::vec((key, bytes_strategy(16)), 0..6)
}

/// Records with strictly increasing offsets (gaps included), every kind of key, value,
/// timestamp and headers.
pub fn records_strategy(max_records: usize, max_value: usize) -> impl Strategy<Value = Vec<OwnedRecord>> {
    let record = (1i64..1000, timestamp_strategy(), bytes_strategy(24), bytes_strategy(max_value), headers_strategy());
    (0i64..1 << 40, proptest::collection::vec(record, 0..max_records)).prop_map(|(start, parts)| {
        let mut offset = start;
        parts
            .into_iter()
            .map(|(gap, (timestamp, timestamp_type), key, value, headers)| {
                offset += gap;
                OwnedRecord { offset, timestamp, timestamp_type, key, value, headers }
            })
            .collect()
    })
}
