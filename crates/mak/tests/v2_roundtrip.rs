//! Version 2 round trips: whatever records are written come back exactly, by every way of
//! reading, and the footer and progress block summarise them.

mod common;

use common::v2::*;
use mak::v2::{self, MakWriter, OwnedRecord, State, TimestampType};
use mak::{AnyReader, Version};
use proptest::prelude::*;

fn check_round_trip(records: &[OwnedRecord], sync_each: bool, seal: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let header = header("topic", 3, records.first().map_or(0, |r| r.offset));
    write_file(&path, &header, records, sync_each, seal);
    let bytes = std::fs::read(&path).unwrap();

    let read = read_slice(&bytes).unwrap();
    assert_eq!(read.header, header);
    assert_eq!(read.records, records);
    assert_eq!(read.write_position, bytes.len() as u64);
    assert_eq!(read.footer.is_some(), seal);
    if let Some(footer) = read.footer {
        assert_eq!(footer.record_count, records.len() as u64);
        assert_eq!(footer.first_offset, records.first().map_or(-1, |r| r.offset));
        assert_eq!(footer.last_offset, records.last().map_or(-1, |r| r.offset));
        assert_eq!(footer.first_timestamp, records.first().map_or(-1, |r| r.timestamp));
        assert_eq!(footer.last_timestamp, records.last().map_or(-1, |r| r.timestamp));
    }
    assert_eq!(read_stream(&bytes).unwrap(), read);

    let summary = v2::read_summary(&bytes[..]).unwrap();
    assert_eq!(summary.header, header);
    let progress = summary.progress.expect("an intact progress block");
    assert_eq!(progress.write_position, bytes.len() as u64);
    assert_eq!(progress.record_count, records.len() as u64);
    assert_eq!(progress.last_offset, records.last().map_or(-1, |r| r.offset));
    assert_eq!(progress.state, if seal { State::Sealed } else { State::Open });
    assert_eq!(v2::read_all(&bytes).unwrap(), records.len() as u64);

    let mut any = AnyReader::with_size_limit(&bytes[..], bytes.len() as u64).unwrap();
    assert_eq!(any.version(), Version::V2);
    let mut via_any = Vec::new();
    while let Some(record) = any.next_record().unwrap() {
        via_any.push(record.to_owned_record());
    }
    assert_eq!(via_any, records);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_records_read_back_exactly(records in records_strategy(40, 300), sync_each: bool, seal: bool) {
        check_round_trip(&records, sync_each, seal);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    #[test]
    fn values_up_to_a_mebibyte_read_back_exactly(records in records_strategy(4, 1 << 20), seal: bool) {
        check_round_trip(&records, false, seal);
    }
}

#[test]
fn null_and_empty_keys_values_and_header_values_stay_distinct() {
    let record = |offset, key: Option<&[u8]>, value: Option<&[u8]>, header_value: Option<&[u8]>| OwnedRecord {
        offset,
        timestamp: -1,
        timestamp_type: TimestampType::NotAvailable,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: vec![("h".to_string(), header_value.map(<[u8]>::to_vec))],
    };
    let records = vec![
        record(0, None, None, None),
        record(1, Some(b""), Some(b""), Some(b"")),
        record(2, None, Some(b""), None),
        record(3, Some(b""), None, Some(b"x")),
    ];
    check_round_trip(&records, false, true);
}

#[test]
fn an_empty_file_reads_as_no_records_sealed_or_not() {
    check_round_trip(&[], false, false);
    check_round_trip(&[], false, true);
}

#[test]
fn append_refuses_offsets_that_do_not_increase() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = MakWriter::create(&dir.path().join("data.mak"), &header("t", 0, 5)).unwrap();
    append(&mut writer, &simple(5, b"a"));
    for offset in [5, 4, -1] {
        let record = simple(offset, b"b");
        let err = writer.append(&record.as_record_ref()).unwrap_err();
        assert!(
            matches!(err, mak::WriteError::OffsetNotIncreasing { .. } | mak::WriteError::NegativeOffset { .. }),
            "{err:?}"
        );
    }
    assert_eq!(writer.record_count(), 1);
    append(&mut writer, &simple(6, b"c"));
    writer.close().unwrap();
}

#[test]
fn any_reader_reads_version_1_records_without_timestamps_or_headers() {
    let bytes = std::fs::read(common::golden("original_empty_and_null.mak")).unwrap();
    let mut reader = AnyReader::new(&bytes[..]).unwrap();
    assert_eq!(reader.version(), Version::V1);
    let first = reader.next_record().unwrap().unwrap();
    assert_eq!((first.offset, first.key, first.timestamp), (41, Some(&b""[..]), -1));
    assert_eq!(first.timestamp_type, TimestampType::NotAvailable);
    assert!(first.headers.is_empty());
}

#[test]
fn version_detection_goes_by_the_first_byte() {
    assert_eq!(Version::detect(b'M'), Some(Version::V1));
    assert_eq!(Version::detect(0x89), Some(Version::V2));
    assert_eq!(Version::detect(b'P'), None);
}

#[test]
fn appends_stay_in_the_buffer_until_a_sync_or_a_full_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let mut writer = MakWriter::create(&path, &header("t", 0, 0)).unwrap();
    let created_len = std::fs::metadata(&path).unwrap().len();
    for offset in 0..100 {
        append(&mut writer, &simple(offset, b"small value"));
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), created_len, "no write for small appends");
    assert!(writer.is_dirty());
    writer.sync().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), writer.len());
    let progress = v2::read_summary(std::fs::File::open(&path).unwrap()).unwrap().progress.unwrap();
    assert_eq!((progress.record_count, progress.write_position), (100, writer.len()));
}
