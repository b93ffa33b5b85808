//! Damaged files: valid files with flipped bytes, cut anywhere, extended with garbage, and
//! plain garbage. Every read gives the records or a typed error naming a byte inside the
//! input, never a panic; bytes past the write position never matter; `open_append` agrees
//! with the reader and cuts exactly the torn tail. The fuzz targets in `crates/mak/fuzz`
//! push the same properties much further (and check the heap); these keep them in CI.

mod common;

use std::sync::OnceLock;

use common::*;
use mak::{MakReader, MakWriter, ReadError, WriteError};
use proptest::prelude::*;

/// A valid file and what a reader must find in it.
struct Valid {
    name: &'static str,
    bytes: Vec<u8>,
    records: Vec<Owned>,
    write_position: usize,
}

/// A failing case names the file, not its bytes.
impl std::fmt::Debug for Valid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The golden files of the original writer, and one of ours with a torn tail of unsynced
/// records that outgrew the append buffer.
fn valid_files() -> &'static [Valid] {
    static FILES: OnceLock<Vec<Valid>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut files: Vec<Valid> = [
            "original_three_records.mak",
            "original_empty_and_null.mak",
            "original_escaped_topic.mak",
            "original_no_records.mak",
            "original_torn_tail.mak",
        ]
        .into_iter()
        .map(|name| {
            let bytes = golden_bytes(name);
            let (_, records) = read_slice(&bytes).unwrap();
            let write_position = get_u64(&bytes, 11) as usize;
            Valid { name, bytes, records, write_position }
        })
        .collect();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.mak");
        let mut writer = MakWriter::create(&path, &header("ours", 2, 40, 1479000000.5)).unwrap();
        writer.append(40, Some(b"k"), None).unwrap();
        writer.append(41, None, Some(b"a value")).unwrap();
        writer.append(45, Some(b"\x00\xff"), Some(b"")).unwrap();
        writer.sync().unwrap();
        // Larger than the 64 KiB append buffer, so it reaches the file without a sync: a torn tail.
        writer.append(46, Some(b"unsynced"), Some(&[7u8; 70 * 1024])).unwrap();
        drop(writer);
        let bytes = std::fs::read(&path).unwrap();
        let write_position = get_u64(&bytes, 11) as usize;
        assert!(bytes.len() > write_position, "the unsynced record left a torn tail");
        let records = vec![rec(40, b"k", b""), rec(41, b"", b"a value"), rec(45, b"\x00\xff", b"")];
        files.push(Valid { name: "ours_with_torn_tail", bytes, records, write_position });
        files
    })
}

/// Reads `bytes` with their length as size limit and as a stream of unknown length. Both
/// must agree; an error must name a byte inside the input.
fn read_checked(bytes: &[u8]) -> Result<Vec<Owned>, ReadError> {
    let limited = read_slice(bytes).map(|(_, records)| records);
    let streaming = MakReader::new(bytes).and_then(|mut reader| collect(&mut reader));
    for result in [&limited, &streaming] {
        if let Err(err) = result {
            let position = err.position().expect("every error about bad data has a position");
            assert!(position <= bytes.len() as u64, "error past the {} input bytes: {err}", bytes.len());
            assert!(err.to_string().contains("byte"), "{err}");
        }
    }
    match (&limited, &streaming) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("size-limited {limited:?} and streaming {streaming:?} reads disagree"),
    }
    limited
}

#[test]
fn cut_anywhere_reads_all_records_or_fails_inside_the_cut() {
    for file in valid_files() {
        // Every cut of the small files; of the one with a 70 KiB tail, every cut up to the
        // write position and a stride through the tail keep the test fast.
        let cuts = (0..=file.write_position).chain((file.write_position..=file.bytes.len()).step_by(97));
        for n in cuts.chain([file.bytes.len()]) {
            let result = read_checked(&file.bytes[..n]);
            if n >= file.write_position {
                assert_eq!(result.unwrap(), file.records, "{} cut at {n}", file.name);
            } else {
                assert!(result.is_err(), "{} cut at {n} before the write position reads", file.name);
            }
        }
    }
}

/// Writes `bytes` to a fresh file, resumes it, and checks `open_append` against the reader:
/// the same records, or `Corrupt` at the byte the reader names (the file left untouched); on
/// success exactly the bytes past the write position are cut.
fn check_open_append(bytes: &[u8]) -> Result<mak::Recovered, WriteError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    std::fs::write(&path, bytes).unwrap();
    let expected = read_slice(bytes);
    let opened = MakWriter::open_append(&path);
    let on_disk = std::fs::read(&path).unwrap();
    match (&opened, &expected) {
        (Ok((_, recovered)), Ok((header, records))) => {
            let write_position = get_u64(bytes, 11) as usize;
            assert_eq!(&recovered.header, header);
            assert_eq!(recovered.record_count, records.len() as u64);
            assert_eq!(recovered.last_offset, records.last().map(|r| r.0));
            assert_eq!(recovered.truncated_bytes, (bytes.len() - write_position) as u64);
            assert_eq!(on_disk, bytes[..write_position], "cuts exactly the torn tail");
        }
        (Err(WriteError::Corrupt { position, source, .. }), Err(err)) => {
            assert_eq!(source.to_string(), err.to_string());
            assert_eq!(Some(*position), err.position());
            assert_eq!(on_disk, bytes, "a file that cannot be resumed is left as it was");
        }
        _ => panic!("open_append {opened:?} disagrees with the reader {expected:?}"),
    }
    opened.map(|(_, recovered)| recovered)
}

#[test]
fn open_append_after_garbage_tail_appends_after_the_recovered_records() {
    for file in valid_files() {
        let mut bytes = file.bytes.clone();
        bytes.extend_from_slice(b"\x00\x00\x00\x00\x00\x00\x00\x09garbage past the end");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.mak");
        std::fs::write(&path, &bytes).unwrap();
        let (mut writer, recovered) = MakWriter::open_append(&path).unwrap();
        assert_eq!(recovered.truncated_bytes, (bytes.len() - file.write_position) as u64, "{}", file.name);
        writer.append(1 << 40, Some(b"after"), Some(b"recovery")).unwrap();
        writer.close().unwrap();
        let (_, records) = read_file(&path);
        let mut expected = file.records.clone();
        expected.push(rec(1 << 40, b"after", b"recovery"));
        assert_eq!(records, expected, "{}", file.name);
    }
}

/// A file of the given shape: `MAK`, the three header fields, then `rest` (garbage that
/// gets past the magic and length checks more often than uniform bytes do).
fn shaped(last_offset: u64, write_position: u64, header_len: u64, rest: &[u8]) -> Vec<u8> {
    let mut bytes = b"MAK".to_vec();
    for field in [last_offset, write_position, header_len] {
        bytes.extend_from_slice(&field.to_be_bytes());
    }
    bytes.extend_from_slice(rest);
    bytes
}

fn valid_file() -> impl Strategy<Value = &'static Valid> {
    (0..valid_files().len()).prop_map(|i| &valid_files()[i])
}

proptest! {
    // Cases are capped so the whole file stays well under a second in release mode (0.1-0.4 s measured).
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn flipped_bytes_give_records_or_an_error_inside_the_file(
        file in valid_file(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..6),
    ) {
        let mut bytes = file.bytes.clone();
        let mut lowest = usize::MAX;
        for (index, mask) in flips {
            let at = index.index(bytes.len());
            bytes[at] ^= mask;
            lowest = lowest.min(at);
        }
        let result = read_checked(&bytes);
        if lowest >= file.write_position {
            prop_assert_eq!(result.unwrap(), file.records.clone(), "damage only in the torn tail");
        }
    }

    #[test]
    fn overwritten_length_fields_give_records_or_an_error_inside_the_file(
        file in valid_file(),
        at in any::<prop::sample::Index>(),
        value in prop_oneof![any::<u64>(), 0..100_000u64, (0..64u32).prop_map(|s| 1u64 << s)],
    ) {
        // Length prefixes and header fields are u64s: a plausible or huge one anywhere.
        let mut bytes = file.bytes.clone();
        let at = at.index(bytes.len() - 7);
        put_u64(&mut bytes, at, value);
        let _ = read_checked(&bytes);
    }

    #[test]
    fn garbage_after_the_write_position_is_never_read(
        file in valid_file(),
        cut in any::<prop::sample::Index>(),
        garbage in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        // Keep any part of the existing torn tail, then add garbage.
        let tail = file.bytes.len() - file.write_position;
        let mut bytes = file.bytes[..file.write_position + cut.index(tail + 1)].to_vec();
        bytes.extend_from_slice(&garbage);
        prop_assert_eq!(read_checked(&bytes).unwrap(), file.records.clone());
    }

    #[test]
    fn random_garbage_gives_an_error_inside_it(
        garbage in prop::collection::vec(any::<u8>(), 0..400),
        fields in (any::<u64>(), 0..500u64, 0..300u64),
        shape in any::<bool>(),
    ) {
        let bytes = if shape { shaped(fields.0, fields.1, fields.2, &garbage) } else { garbage };
        let _ = read_checked(&bytes);
    }
}

proptest! {
    // Each case writes a file: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn open_append_cuts_exactly_a_torn_tail(
        file in valid_file(),
        garbage in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = file.bytes.clone();
        bytes.extend_from_slice(&garbage);
        let recovered = check_open_append(&bytes).unwrap();
        prop_assert_eq!(recovered.truncated_bytes, (bytes.len() - file.write_position) as u64);
        prop_assert_eq!(recovered.record_count, file.records.len() as u64);
    }

    #[test]
    fn open_append_agrees_with_the_reader_on_damaged_files(
        file in valid_file(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..3),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = file.bytes.clone();
        for (index, mask) in flips {
            let at = index.index(bytes.len());
            bytes[at] ^= mask;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = check_open_append(&bytes);
    }
}
