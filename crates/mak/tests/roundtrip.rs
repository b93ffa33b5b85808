//! Round trips of versions 2 and 3 (each test runs for both): whatever records are written come
//! back exactly, by every way of reading, and the footer and progress block summarise them.

mod common;

use common::format::{Format, V2, V3};
use common::v2::{header, records_strategy, simple};
use mak::v2::{OwnedRecord, State, TimestampType};
use mak::{AnyReader, Version};
use proptest::prelude::*;

fn check_round_trip<F: Format>(records: &[OwnedRecord], sync_each: bool, seal: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let header = header("topic", 3, records.first().map_or(0, |r| r.offset));
    F::write_file(&path, &header, records, sync_each, seal);
    let bytes = std::fs::read(&path).unwrap();

    let read = F::read(&bytes, true).unwrap();
    assert_eq!(read.header, header);
    assert_eq!(read.records, records);
    assert_eq!(read.write_position, bytes.len() as u64);
    assert_eq!(read.footer.is_some(), seal);
    let first = records.first();
    let last = records.last();
    if let Some(footer) = read.footer {
        let expected = (
            records.len() as u64,
            first.map_or(-1, |r| r.offset),
            last.map_or(-1, |r| r.offset),
            first.map_or(-1, |r| r.timestamp),
            last.map_or(-1, |r| r.timestamp),
        );
        assert_eq!(footer, expected);
    }
    if let Some((min, max)) = read.footer_range {
        let stamped: Vec<i64> = records.iter().map(|r| r.timestamp).filter(|&t| t >= 0).collect();
        let expected = (stamped.iter().copied().min().unwrap_or(-1), stamped.iter().copied().max().unwrap_or(-1));
        assert_eq!((min, max), expected, "the smallest and largest timestamp >= 0");
    }
    assert_eq!(F::read(&bytes, false).unwrap(), read);

    let (summary_header, progress) = F::summary(&bytes);
    assert_eq!(summary_header, header);
    let state = if seal { State::Sealed } else { State::Open };
    let expected = (bytes.len() as u64, records.len() as u64, last.map_or(-1, |r| r.offset), state);
    assert_eq!(progress, Some(expected));
    assert_eq!(F::read_all(&bytes).unwrap(), records.len() as u64);

    let mut any = AnyReader::with_size_limit(&bytes[..], bytes.len() as u64).unwrap();
    assert_eq!(any.version(), F::VERSION);
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
        check_round_trip::<V2>(&records, sync_each, seal);
        check_round_trip::<V3>(&records, sync_each, seal);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    #[test]
    fn values_up_to_a_mebibyte_read_back_exactly(records in records_strategy(4, 1 << 20), seal: bool) {
        check_round_trip::<V2>(&records, false, seal);
        check_round_trip::<V3>(&records, false, seal);
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
    check_round_trip::<V2>(&records, false, true);
    check_round_trip::<V3>(&records, false, true);
}

#[test]
fn an_empty_file_reads_as_no_records_sealed_or_not() {
    for seal in [false, true] {
        check_round_trip::<V2>(&[], false, seal);
        check_round_trip::<V3>(&[], false, seal);
    }
}

fn refuses_offsets_that_do_not_increase<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = F::create(&dir.path().join("data.mak"), &header("t", 0, 5));
    F::append(&mut writer, &simple(5, b"a")).unwrap();
    for offset in [5, 4, -1] {
        let err = F::append(&mut writer, &simple(offset, b"b")).unwrap_err();
        assert!(
            matches!(err, mak::WriteError::OffsetNotIncreasing { .. } | mak::WriteError::NegativeOffset { .. }),
            "{err:?}"
        );
    }
    assert_eq!(F::record_count(&writer), 1);
    F::append(&mut writer, &simple(6, b"c")).unwrap();
    F::close(writer);
}

#[test]
fn append_refuses_offsets_that_do_not_increase() {
    refuses_offsets_that_do_not_increase::<V2>();
    refuses_offsets_that_do_not_increase::<V3>();
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
fn version_detection_goes_by_the_first_byte_then_the_version_field() {
    assert_eq!(Version::detect(b"MAK"), Some(Version::V1));
    assert_eq!(Version::detect(b"\x89MAK\r\n\x1a\n\x00\x02"), Some(Version::V2));
    assert_eq!(Version::detect(b"\x89MAK\r\n\x1a\n\x00\x03"), Some(Version::V3));
    assert_eq!(Version::detect(&[0x89]), Some(Version::V2), "too short to tell: the version 2 reader reports it");
    assert_eq!(Version::detect(b"PK"), None);
    assert_eq!(Version::detect(b""), None);
}

fn appends_stay_in_memory_until_a_sync<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let mut writer = F::create(&path, &header("t", 0, 0));
    let created_len = std::fs::metadata(&path).unwrap().len();
    for offset in 0..100 {
        F::append(&mut writer, &simple(offset, b"small value")).unwrap();
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), created_len, "no write for small appends");
    assert!(F::is_dirty(&writer));
    F::sync(&mut writer);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), F::len(&writer));
    let (_, progress) = F::summary(&std::fs::read(&path).unwrap());
    let (write_position, record_count, _, _) = progress.unwrap();
    assert_eq!((record_count, write_position), (100, F::len(&writer)));
}

#[test]
fn appends_stay_in_the_buffer_until_a_sync_or_a_full_buffer() {
    appends_stay_in_memory_until_a_sync::<V2>();
    appends_stay_in_memory_until_a_sync::<V3>();
}
