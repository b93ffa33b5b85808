//! Version 2 damage: every damaged file gives records or a typed error naming a byte inside
//! the file, never a panic; each kind of damage gets its own error.

mod common;

use common::v2::*;
use mak::v2::{self, OwnedRecord, HEADER_JSON_AT, PROGRESS_AT};
use mak::{Field, FrameProblem, ReadError};
use proptest::prelude::*;

fn records() -> Vec<OwnedRecord> {
    let mut records: Vec<OwnedRecord> = (0..3).map(|i| simple(i * 2, b"value")).collect();
    records[1].headers = vec![("k".into(), None), ("k".into(), Some(vec![0, 255]))];
    records[2].value = None;
    records
}

fn valid_file(seal: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    write_file(&path, &header("topic", 1, 0), &records(), false, seal);
    std::fs::read(&path).unwrap()
}

/// Reads `bytes` both ways; any error must name a byte inside them. Returns the size-limited result.
fn read_checked(bytes: &[u8]) -> Result<Read, ReadError> {
    let limited = read_slice(bytes);
    let streamed = read_stream(bytes);
    for result in [&limited, &streamed] {
        if let Err(err) = result {
            let position = err.position().expect("every v2 error names a position");
            assert!(position <= bytes.len() as u64, "{err} past the {} bytes", bytes.len());
            assert!(err.to_string().contains("byte"), "{err}");
        }
    }
    if let Ok(read) = &limited {
        assert_eq!(streamed.as_ref().ok(), Some(read), "both ways agree on success");
    }
    limited
}

/// Position of the first frame of `valid_file`.
fn data_start(bytes: &[u8]) -> usize {
    v2::read_summary(bytes).unwrap().data_start as usize
}

#[test]
fn every_flipped_byte_is_an_error_or_a_torn_progress_block_that_scanning_repairs() {
    for seal in [false, true] {
        let bytes = valid_file(seal);
        for at in 0..bytes.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] ^= mask;
                // read_checked holds an error to a position inside the file.
                if let Ok(read) = read_checked(&damaged) {
                    assert!((PROGRESS_AT as usize..PROGRESS_AT as usize + 48).contains(&at), "byte {at}");
                    assert_eq!(read.records, records());
                }
            }
        }
    }
}

#[test]
fn a_cut_anywhere_before_the_write_position_is_an_error_inside_the_file() {
    let bytes = valid_file(true);
    for cut in 0..bytes.len() {
        let err = read_checked(&bytes[..cut]).unwrap_err();
        assert!(err.position().unwrap() <= cut as u64);
    }
}

#[test]
fn an_unknown_version_names_byte_8() {
    let mut bytes = valid_file(true);
    bytes[9] = 3;
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::UnsupportedVersion { version: 3, .. }), "{err:?}");
    assert_eq!(err.position(), Some(8));
}

#[test]
fn an_unknown_flag_names_byte_10() {
    let mut bytes = valid_file(true);
    bytes[11] = 4;
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::UnknownFlags { flags: 4 }), "{err:?}");
    assert_eq!(err.position(), Some(10));
}

#[test]
fn a_version_1_file_is_a_bad_magic_for_the_version_2_reader() {
    let bytes = std::fs::read(common::golden("original_three_records.mak")).unwrap();
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::BadMagicV2 { .. }), "{err:?}");
}

#[test]
fn a_changed_header_byte_is_a_header_crc_error() {
    let mut bytes = valid_file(true);
    let crc_at = data_start(&bytes) as u64 - 4;
    bytes[HEADER_JSON_AT as usize + 2] ^= 0x20;
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::HeaderCrc { position, .. } if position == crc_at), "{err:?}");
}

#[test]
fn a_changed_frame_byte_is_a_crc_error_naming_the_frame() {
    let mut bytes = valid_file(true);
    let first = data_start(&bytes);
    bytes[first + 20] ^= 1;
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::FrameCrc { position, .. } if position == first as u64), "{err:?}");
}

#[test]
fn a_huge_frame_length_is_refused_before_allocating() {
    let mut bytes = valid_file(true);
    let first = data_start(&bytes);
    bytes[first..first + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = read_checked(&bytes).unwrap_err();
    assert!(
        matches!(err, ReadError::LengthPastEnd { position, field: Field::Frame, .. } if position == first as u64),
        "{err:?}"
    );
}

#[test]
fn a_frame_too_short_for_any_kind_is_refused() {
    let mut bytes = valid_file(true);
    let first = data_start(&bytes);
    bytes[first..first + 4].copy_from_slice(&3u32.to_be_bytes());
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::BadFrame { problem: FrameProblem::TooShort { length: 3 }, .. }), "{err:?}");
}

/// Rewrites the frame at `at` with `edit` applied to its bytes, and a CRC that matches again:
/// damage only the format's own rules can catch.
fn edit_frame(bytes: &mut [u8], at: usize, edit: impl FnOnce(&mut [u8])) {
    let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let end = at + 4 + len;
    edit(&mut bytes[at..end - 4]);
    let crc = crc32c::crc32c(&bytes[at..end - 4]);
    bytes[end - 4..end].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn an_offset_not_above_the_previous_one_is_refused_even_with_a_matching_crc() {
    let mut bytes = valid_file(false);
    let first = data_start(&bytes);
    let second = first + 4 + u32::from_be_bytes(bytes[first..first + 4].try_into().unwrap()) as usize;
    edit_frame(&mut bytes, second, |frame| frame[5..13].copy_from_slice(&0i64.to_be_bytes()));
    let err = read_checked(&bytes).unwrap_err();
    assert!(
        matches!(err, ReadError::OffsetNotIncreasing { position, offset: 0, previous: 0 } if position == second as u64),
        "{err:?}"
    );
}

#[test]
fn an_unknown_timestamp_type_is_refused_even_with_a_matching_crc() {
    let mut bytes = valid_file(true);
    let first = data_start(&bytes);
    edit_frame(&mut bytes, first, |frame| frame[21] = 7);
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::BadFrame { problem: FrameProblem::UnknownTimestampType(7), .. }), "{err:?}");
}

#[test]
fn a_footer_disagreeing_with_the_records_is_refused() {
    let mut bytes = valid_file(true);
    let footer_at = bytes.len() - 53;
    edit_frame(&mut bytes, footer_at, |frame| frame[5..13].copy_from_slice(&9u64.to_be_bytes()));
    let err = read_checked(&bytes).unwrap_err();
    assert!(
        matches!(err, ReadError::SummaryMismatch { position, stated: 9, actual: 3, .. } if position == footer_at as u64),
        "{err:?}"
    );
}

#[test]
fn a_sealed_state_without_a_footer_is_refused() {
    let mut bytes = valid_file(false);
    let block = PROGRESS_AT as usize;
    bytes[block + 40..block + 44].copy_from_slice(&1u32.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[block..block + 44]);
    bytes[block + 44..block + 48].copy_from_slice(&crc.to_be_bytes());
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::StateMismatch { sealed: true }), "{err:?}");
    assert_eq!(err.position(), Some(PROGRESS_AT));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_overwrites_and_cuts_never_panic(
        seal: bool,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut bytes = valid_file(seal);
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        let cut = cut.index(bytes.len() + 1);
        bytes.truncate(cut);
        bytes.extend_from_slice(&garbage);
        let _ = read_checked(&bytes);
        let _ = v2::read_all(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_the_magic_never_panic(rest in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = v2::MAGIC.to_vec();
        bytes.extend_from_slice(&[0, 2]);
        bytes.extend_from_slice(&rest);
        let _ = read_checked(&bytes);
    }
}
