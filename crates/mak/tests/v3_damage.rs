//! Version 3 damage: every damaged file gives records or a typed error naming a byte inside the
//! file, never a panic; each kind of damage gets its own error.

mod common;

use common::format::{Format, Read, V3};
use common::v2::{header, simple};
use mak::v2::OwnedRecord;
use mak::v3::{self, HEADER_JSON_AT, PROGRESS_AT, PROGRESS_LEN};
use mak::{BlockProblem, Field, ReadError};
use proptest::prelude::*;

fn records() -> Vec<OwnedRecord> {
    let mut records: Vec<OwnedRecord> = (0..3).map(|i| simple(i * 2, b"value")).collect();
    records[1].headers = vec![("k".into(), None), ("k".into(), Some(vec![0, 255]))];
    records[2].value = None;
    records
}

/// A file of two blocks (a sync after the first record), sealed or not.
fn valid_file(seal: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let mut writer = V3::create(&path, &header("topic", 1, 0));
    for (index, record) in records().iter().enumerate() {
        V3::append(&mut writer, record).unwrap();
        if index == 0 {
            V3::sync(&mut writer);
        }
    }
    if seal {
        V3::close(writer);
    } else {
        V3::sync(&mut writer);
    }
    std::fs::read(&path).unwrap()
}

/// Reads `bytes` both ways; any error must name a byte inside them. Returns the size-limited result.
fn read_checked(bytes: &[u8]) -> Result<Read, ReadError> {
    let limited = V3::read(bytes, true);
    let streamed = V3::read(bytes, false);
    for result in [&limited, &streamed] {
        if let Err(err) = result {
            let position = err.position().expect("every v3 error names a position");
            assert!(position <= bytes.len() as u64, "{err} past the {} bytes", bytes.len());
            assert!(err.to_string().contains("byte"), "{err}");
        }
    }
    if let Ok(read) = &limited {
        assert_eq!(streamed.as_ref().ok(), Some(read), "both ways agree on success");
    }
    limited
}

/// Positions of the first and second block of `valid_file`.
fn blocks(bytes: &[u8]) -> (usize, usize) {
    let first = v3::read_summary(bytes).unwrap().data_start as usize;
    let second = first + 4 + u32::from_be_bytes(bytes[first..first + 4].try_into().unwrap()) as usize;
    (first, second)
}

#[test]
fn every_flipped_byte_is_an_error_or_a_torn_progress_block_that_scanning_repairs() {
    for seal in [false, true] {
        let bytes = valid_file(seal);
        for at in 0..bytes.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] ^= mask;
                if let Ok(read) = read_checked(&damaged) {
                    let block = PROGRESS_AT as usize..(PROGRESS_AT + PROGRESS_LEN) as usize;
                    assert!(block.contains(&at), "byte {at} ^ {mask:#x} went unnoticed");
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
fn a_version_2_reader_meets_a_version_3_file_at_byte_8() {
    let bytes = valid_file(true);
    let err = mak::v2::MakReader::new(&bytes[..]).unwrap_err();
    assert!(matches!(err, ReadError::UnsupportedVersion { version: 3, expected: 2 }), "{err:?}");
    assert_eq!(err.position(), Some(8));
}

#[test]
fn a_changed_header_byte_is_a_header_crc_error() {
    let mut bytes = valid_file(true);
    let (first, _) = blocks(&bytes);
    bytes[HEADER_JSON_AT as usize + 2] ^= 0x20;
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::HeaderCrc { position, .. } if position == first as u64 - 4), "{err:?}");
}

#[test]
fn a_changed_block_byte_is_a_crc_error_naming_the_block() {
    let mut bytes = valid_file(true);
    let (_, second) = blocks(&bytes);
    bytes[second + 30] ^= 1;
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::BlockCrc { position, .. } if position == second as u64), "{err:?}");
}

#[test]
fn a_huge_block_length_is_refused_before_allocating() {
    let mut bytes = valid_file(true);
    let (first, _) = blocks(&bytes);
    bytes[first..first + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = read_checked(&bytes).unwrap_err();
    assert!(
        matches!(err, ReadError::LengthPastEnd { position, field: Field::Block, .. } if position == first as u64),
        "{err:?}"
    );
}

#[test]
fn a_block_too_short_for_any_kind_is_refused() {
    let mut bytes = valid_file(true);
    let (first, _) = blocks(&bytes);
    bytes[first..first + 4].copy_from_slice(&3u32.to_be_bytes());
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::BadBlock { problem: BlockProblem::TooShort { length: 3 }, .. }), "{err:?}");
}

/// Rewrites the block at `at` with `edit` applied to its bytes (length field included) and a CRC
/// that matches again: damage only the format's own rules can catch.
fn edit_block(bytes: &mut [u8], at: usize, edit: impl FnOnce(&mut [u8])) {
    let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let end = at + 4 + len;
    edit(&mut bytes[at..end - 4]);
    let crc = crc32c::crc32c(&bytes[at..end - 4]);
    bytes[end - 4..end].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn a_block_starting_at_or_below_the_previous_offset_is_refused_even_with_a_matching_crc() {
    let mut bytes = valid_file(false);
    let (_, second) = blocks(&bytes);
    edit_block(&mut bytes, second, |block| block[11..19].copy_from_slice(&0i64.to_be_bytes()));
    let err = read_checked(&bytes).unwrap_err();
    assert!(
        matches!(err, ReadError::BlockOffsetNotIncreasing { position, offset: 0, previous: 0 } if position == second as u64),
        "{err:?}"
    );
}

#[test]
fn an_invalid_timestamp_type_is_refused_even_with_a_matching_crc() {
    let mut bytes = valid_file(true);
    let (first, _) = blocks(&bytes);
    edit_block(&mut bytes, first, |block| block[6] = 7);
    let err = read_checked(&bytes).unwrap_err();
    assert!(matches!(err, ReadError::BadBlock { problem: BlockProblem::UnknownTimestampType(7), .. }), "{err:?}");
}

#[test]
fn a_footer_disagreeing_with_the_records_is_refused_down_to_the_largest_timestamp() {
    let sealed = valid_file(true);
    let footer_at = sealed.len() - V3::FOOTER_LEN as usize;
    for (field_at, what) in [(5, "the record count"), (53, "the largest timestamp")] {
        let mut bytes = sealed.clone();
        edit_block(&mut bytes, footer_at, |footer| footer[field_at + 7] ^= 1);
        let err = read_checked(&bytes).unwrap_err();
        assert!(matches!(err, ReadError::SummaryMismatch { position, .. } if position == footer_at as u64), "{err:?}");
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[test]
fn a_sealed_state_without_a_footer_is_refused() {
    let mut bytes = valid_file(false);
    let block = PROGRESS_AT as usize;
    bytes[block + 56..block + 60].copy_from_slice(&1u32.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[block..block + 60]);
    bytes[block + 60..block + 64].copy_from_slice(&crc.to_be_bytes());
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
        let _ = v3::read_all(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_the_magic_never_panic(rest in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = v3::MAGIC.to_vec();
        bytes.extend_from_slice(&[0, 3]);
        bytes.extend_from_slice(&rest);
        let _ = read_checked(&bytes);
    }

    #[test]
    fn a_resigned_block_with_arbitrary_columns_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = valid_file(true);
        let (first, _) = blocks(&bytes);
        edit_block(&mut bytes, first, |block| {
            for (at, value) in edits {
                // Past the length field and kind: the rules, not the CRC, must catch it.
                let at = 5 + at.index(block.len() - 5);
                block[at] = value;
            }
        });
        let _ = read_checked(&bytes);
    }
}
