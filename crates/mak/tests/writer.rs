//! Writer behaviour: round trips, sync visibility, resuming our own files.

mod common;

use std::io::ErrorKind;

use common::*;
use mak::{HeaderProblem, IoAction, MakReader, MakWriter, WriteError};
use proptest::prelude::*;

const BIG: usize = 200 * 1024; // larger than the writer's 64 KiB buffer

#[test]
fn round_trip_with_empty_null_and_binary_keys_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let h = header("orders", 7, 1000, 1479000000.0);
    let big: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    let input: Vec<Input<'_>> = vec![
        (1000, Some(b"k"), Some(b"v")),
        (1001, None, Some(b"null key")),
        (1002, Some(b"null value"), None),
        (1003, None, None),
        (1004, Some(b""), Some(b"")),
        (1005, Some(b"\x00\xff\x00"), Some(b"\xff\xfe\x00\x01")),
        (1007, Some(&big), Some(b"after a gap")),
        (1008, Some(b"small"), Some(&big)),
        (i64::MAX, Some(b"max"), Some(b"offset")),
    ];
    let mut writer = MakWriter::create(&path, &h).unwrap();
    assert!(writer.is_empty());
    assert_eq!(writer.last_offset(), None);
    for &(offset, key, value) in &input {
        writer.append(offset, key, value).unwrap();
    }
    assert_eq!(writer.record_count(), input.len() as u64);
    assert_eq!(writer.last_offset(), Some(i64::MAX));
    let len = writer.len();
    writer.close().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);

    let (read_header, records) = read_file(&path);
    assert_eq!(read_header, h);
    let expected: Vec<Owned> =
        input.iter().map(|&(o, k, v)| rec(o, k.unwrap_or_default(), v.unwrap_or_default())).collect();
    assert_eq!(records, expected);
}

#[test]
fn new_file_has_last_offset_field_equal_to_start_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let writer = MakWriter::create(&path, &header("t", 0, 5, 1.5)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(get_u64(&bytes, 3), 5);
    assert_eq!(get_u64(&bytes, 11), bytes.len() as u64);
    assert_eq!(writer.len(), bytes.len() as u64);
    let (_, records) = read_slice(&bytes).unwrap();
    assert!(records.is_empty());
}

#[test]
fn header_fields_are_updated_only_at_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let mut writer = MakWriter::create(&path, &header("t", 0, 0, 0.0)).unwrap();
    let header_only = std::fs::metadata(&path).unwrap().len();

    writer.append(0, Some(b"a"), Some(b"1")).unwrap();
    assert!(writer.is_dirty());
    // Buffered only: nothing reached the file.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), header_only);
    writer.sync().unwrap();
    assert!(!writer.is_dirty());
    let synced = writer.len();

    // A big record goes to the file at once but stays invisible until the next sync.
    let big = vec![7u8; BIG];
    writer.append(1, None, Some(&big)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() as u64 > synced, "record bytes were written");
    assert_eq!(get_u64(&bytes, 11), synced);
    assert_eq!(get_u64(&bytes, 3), 0);
    let (_, records) = read_slice(&bytes).unwrap();
    assert_eq!(records, vec![rec(0, b"a", b"1")]);

    writer.sync().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(get_u64(&bytes, 3), 1);
    let (_, records) = read_slice(&bytes).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].2, big);
}

#[test]
fn sync_without_appends_leaves_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let mut writer = MakWriter::create(&path, &header("t", 0, 0, 0.0)).unwrap();
    let before = std::fs::read(&path).unwrap();
    writer.sync().unwrap();
    writer.close().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn open_append_truncates_unsynced_tail_of_our_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let mut writer = MakWriter::create(&path, &header("t", 1, 10, 0.0)).unwrap();
    writer.append(10, Some(b"k"), Some(b"durable")).unwrap();
    writer.sync().unwrap();
    let synced = writer.len();
    // Never synced: simulates a crash after the buffer spilled to the file.
    writer.append(11, Some(b"k"), Some(&vec![1u8; BIG])).unwrap();
    drop(writer);
    let spilled = std::fs::metadata(&path).unwrap().len();
    assert!(spilled > synced);

    let (mut writer, recovered) = MakWriter::open_append(&path).unwrap();
    assert_eq!(recovered.record_count, 1);
    assert_eq!(recovered.last_offset, Some(10));
    assert_eq!(recovered.truncated_bytes, spilled - synced);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), synced);
    writer.append(11, Some(b"k"), Some(b"again")).unwrap();
    writer.close().unwrap();
    let (_, records) = read_file(&path);
    assert_eq!(records, vec![rec(10, b"k", b"durable"), rec(11, b"k", b"again")]);
}

#[test]
fn open_append_refuses_file_with_corrupt_record_before_write_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let mut bytes = golden_bytes("original_three_records.mak");
    let data_start = 27 + get_u64(&bytes, 19) as usize;
    put_u64(&mut bytes, data_start, 1 << 40);
    std::fs::write(&path, &bytes).unwrap();
    let err = MakWriter::open_append(&path).unwrap_err();
    match &err {
        WriteError::Corrupt { path: p, position, source } => {
            assert_eq!(p, &path);
            assert_eq!(*position, data_start as u64);
            assert_eq!(source.position(), Some(data_start as u64));
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("byte {data_start}")), "{msg}");
    // Nothing was cut.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn create_refuses_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    std::fs::write(&path, b"precious").unwrap();
    let err = MakWriter::create(&path, &header("t", 0, 0, 0.0)).unwrap_err();
    match err {
        WriteError::Io { action, source, .. } => {
            assert_eq!(action, IoAction::Create);
            assert_eq!(source.kind(), ErrorKind::AlreadyExists);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn create_refuses_invalid_header_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let cases = [
        (header("t", -1, 0, 0.0), HeaderProblem::NegativePartition(-1)),
        (header("t", 0, -5, 0.0), HeaderProblem::NegativeStartOffset(-5)),
    ];
    for (h, problem) in cases {
        match MakWriter::create(&path, &h).unwrap_err() {
            WriteError::InvalidHeader { problem: p, .. } => assert_eq!(p, problem),
            other => panic!("unexpected {other:?}"),
        }
    }
    let err = MakWriter::create(&path, &header("t", 0, 0, f64::NAN)).unwrap_err();
    assert!(matches!(err, WriteError::InvalidHeader { problem: HeaderProblem::NonFiniteStartTime(_), .. }));
    assert!(!path.exists());
}

#[test]
fn append_refuses_negative_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let mut writer = MakWriter::create(&path, &header("t", 0, 0, 0.0)).unwrap();
    let err = writer.append(-1, None, None).unwrap_err();
    assert!(matches!(err, WriteError::NegativeOffset { offset: -1, .. }));
    assert_eq!(writer.record_count(), 0);
    writer.append(0, None, None).unwrap();
    writer.close().unwrap();
    assert_eq!(read_file(&path).1, vec![rec(0, b"", b"")]);
}

#[test]
fn write_error_messages_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.mak");
    let err = MakWriter::open_append(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("failed to open "), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

fn arb_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..300))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn proptest_round_trip_of_arbitrary_records(
        topic in "\\PC{0,20}",
        partition in 0..i32::MAX,
        start_offset in 0..i64::MAX,
        start_time in prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL,
        records in prop::collection::vec((0..i64::MAX, arb_bytes(), arb_bytes(), any::<bool>()), 0..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.mak");
        let h = header(&topic, partition, start_offset, start_time);
        let mut writer = MakWriter::create(&path, &h).unwrap();
        for (offset, key, value, sync) in &records {
            writer.append(*offset, key.as_deref(), value.as_deref()).unwrap();
            if *sync {
                writer.sync().unwrap();
            }
        }
        writer.close().unwrap();

        let bytes = std::fs::read(&path).unwrap();
        let mut reader = MakReader::with_size_limit(&bytes[..], bytes.len() as u64).unwrap();
        prop_assert_eq!(reader.header(), &h);
        let got = collect(&mut reader).unwrap();
        let expected: Vec<Owned> = records
            .iter()
            .map(|(o, k, v, _)| (*o, k.clone().unwrap_or_default(), v.clone().unwrap_or_default()))
            .collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(mak::read_all(&bytes).unwrap(), records.len() as u64);
    }
}
