//! Reader robustness: every malformed input gives a typed error naming a byte position,
//! never a panic or an allocation sized by a corrupt length prefix.

mod common;

use common::*;
use mak::{Field, MakReader, ReadError};
use proptest::prelude::*;

fn three() -> Vec<u8> {
    golden_bytes("original_three_records.mak")
}

fn data_start(bytes: &[u8]) -> usize {
    27 + get_u64(bytes, 19) as usize
}

/// Reads everything, without and with a size limit.
fn read_both(bytes: &[u8]) -> [Result<Vec<Owned>, ReadError>; 2] {
    let unlimited = MakReader::new(bytes).and_then(|mut r| collect(&mut r));
    let limited = read_slice(bytes).map(|(_, records)| records);
    [unlimited, limited]
}

fn assert_message_style(err: &ReadError) {
    let msg = err.to_string();
    assert!(msg.contains("byte"), "{msg}");
    assert!(!msg.ends_with('.'), "{msg}");
    assert!(msg.starts_with(|c: char| !c.is_uppercase()), "{msg}");
}

#[test]
fn reader_stops_at_write_position() {
    let mut bytes = three();
    let write_position = bytes.len() as u64;
    // A complete, valid-looking record past the write position must not be read.
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, b'k', 0, 0, 0, 0, 0, 0, 0, 1, b'v']);
    bytes.extend_from_slice(&9u64.to_be_bytes());
    for result in read_both(&bytes) {
        assert_eq!(result.unwrap().len(), 3);
    }
    let mut reader = MakReader::new(&bytes[..]).unwrap();
    collect(&mut reader).unwrap();
    assert_eq!(reader.position(), write_position);
    assert!(reader.next_record().unwrap().is_none(), "stays at the end");
}

#[test]
fn reader_reuses_buffers_across_records() {
    let bytes = three();
    let mut reader = MakReader::new(&bytes[..]).unwrap();
    let first = reader.next_record().unwrap().unwrap();
    let (key_ptr, value_ptr) = (first.key.as_ptr(), first.value.as_ptr());
    let second = reader.next_record().unwrap().unwrap();
    assert_eq!(second.key.as_ptr(), key_ptr);
    assert_eq!(second.value.as_ptr(), value_ptr);
}

#[test]
fn reader_reports_truncation_at_every_byte_length() {
    for name in ["original_three_records.mak", "original_empty_and_null.mak", "original_escaped_topic.mak"] {
        let bytes = golden_bytes(name);
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            // Streaming, no size limit: the input simply ends early.
            let err = MakReader::new(cut).and_then(|mut r| collect(&mut r)).unwrap_err();
            match err {
                ReadError::Truncated { position, needed, available, .. } => {
                    assert_eq!(position + available, n as u64, "{name} cut at {n}");
                    assert!(available < needed);
                }
                ref other => panic!("{name} cut at {n}: unexpected {other:?}"),
            }
            assert_message_style(&err);
            // With the slice length as size limit the write position is refused up front.
            let err = mak::read_all(cut).unwrap_err();
            assert!(err.position().unwrap() <= n as u64, "{name} cut at {n}: {err}");
            if n >= 27 {
                assert!(
                    matches!(err, ReadError::WritePositionPastEnd { limit, .. } if limit == n as u64),
                    "{name} cut at {n}: {err:?}"
                );
            }
            assert_message_style(&err);
        }
    }
}

#[test]
fn reader_accepts_every_cut_of_a_torn_tail() {
    let bytes = golden_bytes("original_torn_tail.mak");
    let write_position = get_u64(&bytes, 11) as usize;
    for n in write_position..=bytes.len() {
        assert_eq!(mak::read_all(&bytes[..n]).unwrap(), 2);
    }
}

#[test]
fn reader_rejects_bad_magic() {
    let mut bytes = three();
    bytes[2] = b'X';
    for result in read_both(&bytes) {
        let err = result.unwrap_err();
        assert!(matches!(err, ReadError::BadMagic { found } if &found == b"MAX"), "{err:?}");
        assert_message_style(&err);
    }
}

#[test]
fn reader_rejects_bad_header_json() {
    let mut bytes = three();
    bytes[27] = b'[';
    for result in read_both(&bytes) {
        let err = result.unwrap_err();
        assert!(matches!(err, ReadError::BadHeaderJson { position: 27, .. }), "{err:?}");
        assert_message_style(&err);
    }
    let mut bytes = three();
    bytes[40] = 0xff; // not UTF-8
    for result in read_both(&bytes) {
        assert!(matches!(result.unwrap_err(), ReadError::BadHeaderJson { position: 27, .. }));
    }
}

#[test]
fn reader_rejects_write_position_before_data_start() {
    let original = three();
    let start = data_start(&original) as u64;
    // 0 is what the original leaves if it crashed while writing the header.
    for write_position in [0, 10, 27, start - 1] {
        let mut bytes = original.clone();
        put_u64(&mut bytes, 11, write_position);
        for result in read_both(&bytes) {
            let err = result.unwrap_err();
            assert!(
                matches!(err, ReadError::WritePositionBeforeData { write_position: w, data_start: d }
                    if w == write_position && d == start),
                "{err:?}"
            );
            assert_message_style(&err);
        }
    }
}

#[test]
fn reader_rejects_write_position_past_size_limit() {
    let mut bytes = three();
    let len = bytes.len() as u64;
    put_u64(&mut bytes, 11, len + 1);
    let err = mak::read_all(&bytes).unwrap_err();
    assert!(
        matches!(err, ReadError::WritePositionPastEnd { write_position, limit } if write_position == len + 1 && limit == len),
        "{err:?}"
    );
    assert_message_style(&err);
    // Without a limit the reader finds out when the input ends.
    put_u64(&mut bytes, 11, len + 100);
    let err = MakReader::new(&bytes[..]).and_then(|mut r| collect(&mut r)).unwrap_err();
    assert!(
        matches!(err, ReadError::Truncated { position, field: Field::KeyLength, .. } if position == len),
        "{err:?}"
    );
}

#[test]
fn reader_rejects_length_past_end() {
    let original = three();
    let start = data_start(&original);
    for huge in [u64::MAX, 1 << 62, original.len() as u64] {
        // Key length.
        let mut bytes = original.clone();
        put_u64(&mut bytes, start, huge);
        for result in read_both(&bytes) {
            let err = result.unwrap_err();
            assert!(
                matches!(err, ReadError::LengthPastEnd { position, field: Field::Key, length, limit }
                    if position == start as u64 && length == huge && limit == original.len() as u64),
                "{err:?}"
            );
            assert_message_style(&err);
        }
        // Value length of the second record.
        let mut bytes = original.clone();
        let second = start + 24 + 5 + 7;
        put_u64(&mut bytes, second + 8 + 5, huge);
        for result in read_both(&bytes) {
            let err = result.unwrap_err();
            assert!(
                matches!(err, ReadError::LengthPastEnd { position, field: Field::Value, .. }
                    if position == (second + 13) as u64),
                "{err:?}"
            );
        }
    }
}

#[test]
fn reader_rejects_huge_header_length() {
    let mut bytes = three();
    put_u64(&mut bytes, 19, u64::MAX);
    for result in read_both(&bytes) {
        let err = result.unwrap_err();
        assert!(
            matches!(err, ReadError::LengthPastEnd { position: 19, field: Field::HeaderJson, length: u64::MAX, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn reader_without_size_limit_does_not_trust_huge_lengths() {
    // Write position and key length both claim ~4 EiB; only a few bytes follow. The reader
    // must run into the end of input, not try to reserve the claimed size.
    let mut bytes = three();
    let start = data_start(&bytes);
    put_u64(&mut bytes, 11, u64::MAX);
    put_u64(&mut bytes, start, 1 << 62);
    let err = MakReader::new(&bytes[..]).and_then(|mut r| collect(&mut r)).unwrap_err();
    assert!(
        matches!(err, ReadError::Truncated { position, field: Field::Key, needed, .. }
            if position == start as u64 + 8 && needed == 1 << 62),
        "{err:?}"
    );
}

#[test]
fn reader_rejects_record_crossing_write_position() {
    let original = three();
    let start = data_start(&original);
    // Write position inside the first record's key-length field.
    let mut bytes = original.clone();
    put_u64(&mut bytes, 11, start as u64 + 4);
    for result in read_both(&bytes) {
        let err = result.unwrap_err();
        assert!(
            matches!(err, ReadError::FieldPastEnd { position, field: Field::KeyLength, limit }
                if position == start as u64 && limit == start as u64 + 4),
            "{err:?}"
        );
        assert_message_style(&err);
    }
    // Write position inside the first record's offset field.
    let mut bytes = original.clone();
    let offset_at = start + 8 + 5 + 8 + 7;
    put_u64(&mut bytes, 11, offset_at as u64 + 7);
    for result in read_both(&bytes) {
        let err = result.unwrap_err();
        assert!(
            matches!(err, ReadError::FieldPastEnd { position, field: Field::Offset, .. } if position == offset_at as u64),
            "{err:?}"
        );
    }
    // Write position inside a value.
    let mut bytes = original;
    put_u64(&mut bytes, 11, offset_at as u64 - 2);
    for result in read_both(&bytes) {
        assert!(matches!(result.unwrap_err(), ReadError::LengthPastEnd { field: Field::Value, .. }));
    }
}

#[test]
fn reader_rejects_offset_above_i64_max() {
    let mut bytes = three();
    let offset_at = data_start(&bytes) + 8 + 5 + 8 + 7;
    put_u64(&mut bytes, offset_at, 1 << 63);
    for result in read_both(&bytes) {
        let err = result.unwrap_err();
        assert!(
            matches!(err, ReadError::OffsetOutOfRange { position, offset } if position == offset_at as u64 && offset == 1 << 63),
            "{err:?}"
        );
        assert_message_style(&err);
    }
}

#[test]
fn reader_rejects_missing_and_negative_header_fields() {
    let json = br#"{"topic": "t", "partition": -1, "startoffset": 0, "starttime": 1}"#;
    let err = mak::read_all(&file_with_json(json)).unwrap_err();
    assert!(matches!(err, ReadError::InvalidHeader { position: 27, .. }), "{err:?}");
    assert_message_style(&err);
    let json = br#"{"partition": 0, "startoffset": 0, "starttime": 1}"#;
    let err = mak::read_all(&file_with_json(json)).unwrap_err();
    assert!(matches!(err, ReadError::MissingHeaderField { position: 27, field: "topic" }), "{err:?}");
    assert_message_style(&err);
}

#[test]
fn reader_accepts_integer_starttime_and_extra_header_fields() {
    let json = br#"{"topic": "t", "partition": 4, "startoffset": 9, "starttime": 1479000000, "v": 2}"#;
    let bytes = file_with_json(json);
    let (h, records) = read_slice(&bytes).unwrap();
    assert_eq!(h, header("t", 4, 9, 1479000000.0));
    assert!(records.is_empty());
}

#[test]
fn reader_is_poisoned_after_an_error() {
    let mut bytes = three();
    let start = data_start(&bytes);
    put_u64(&mut bytes, start, u64::MAX);
    let mut reader = MakReader::new(&bytes[..]).unwrap();
    assert!(reader.next_record().is_err());
    let err = reader.next_record().unwrap_err();
    assert!(matches!(err, ReadError::Poisoned { .. }), "{err:?}");
}

/// A record-less file with the given header JSON.
fn file_with_json(json: &[u8]) -> Vec<u8> {
    let mut bytes = b"MAK".to_vec();
    bytes.extend_from_slice(&0u64.to_be_bytes());
    bytes.extend_from_slice(&(27 + json.len() as u64).to_be_bytes());
    bytes.extend_from_slice(&(json.len() as u64).to_be_bytes());
    bytes.extend_from_slice(json);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn proptest_reader_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = mak::read_all(&bytes);
        let _ = MakReader::new(&bytes[..]).and_then(|mut r| collect(&mut r));
    }

    #[test]
    fn proptest_reader_never_panics_on_mutated_valid_file(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = golden_bytes("original_empty_and_null.mak");
        for (index, byte) in edits {
            let i = index.index(bytes.len());
            bytes[i] = byte;
        }
        let len = cut.index(bytes.len() + 1);
        bytes.truncate(len);
        for result in read_both(&bytes) {
            if let Err(err) = result {
                prop_assert!(err.position().is_some());
                prop_assert!(err.to_string().contains("byte"));
            }
        }
    }
}
