//! Resuming a damaged or arbitrary file: `open_append` agrees with the size-limited reader
//! (same records, or `Corrupt` at the same byte), cuts exactly the bytes past the write
//! position, and a record appended after it reads back after the recovered ones.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mak::{MakWriter, WriteError};
use mak_fuzz::{ArbRecord, Mutation, ValidFile};

#[derive(Arbitrary, Debug)]
enum Content {
    Raw(Vec<u8>),
    Damaged { file: ValidFile, mutations: Vec<Mutation> },
}

#[derive(Arbitrary, Debug)]
struct Input {
    content: Content,
    next: ArbRecord,
}

fuzz_target!(|input: Input| {
    let path = mak_fuzz::scratch_path("append.mak");
    let bytes = match &input.content {
        Content::Raw(bytes) => bytes.clone(),
        Content::Damaged { file, mutations } => {
            file.write(&path);
            let mut bytes = std::fs::read(&path).expect("read back");
            for mutation in mutations {
                mutation.apply(&mut bytes);
            }
            bytes
        }
    };
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, &bytes).expect("write input");
    let expected = mak_fuzz::read_limited(&bytes);

    let (opened, peak) = mak_fuzz::measure_peak(|| MakWriter::open_append(&path));
    mak_fuzz::check_heap("open_append", peak, bytes.len());
    let (mut writer, recovered) = match (opened, expected) {
        (Ok(opened), Ok((header, records, write_position))) => {
            let (_, recovered) = &opened;
            assert_eq!(recovered.header, header);
            assert_eq!(recovered.record_count, records.len() as u64);
            assert_eq!(recovered.last_offset, records.last().map(|r| r.0));
            assert_eq!(recovered.truncated_bytes, bytes.len() as u64 - write_position);
            let on_disk = std::fs::read(&path).expect("read truncated");
            assert_eq!(on_disk, bytes[..write_position as usize], "cuts exactly the torn tail");
            (opened.0, records)
        }
        (Err(WriteError::Corrupt { position, source, .. }), Err(err)) => {
            assert_eq!(source.to_string(), err.to_string());
            assert_eq!(Some(position), err.position());
            assert!(position <= bytes.len() as u64);
            // A file that cannot be resumed is left as it was.
            assert_eq!(std::fs::read(&path).expect("read back"), bytes);
            let _ = std::fs::remove_file(&path);
            return;
        }
        (opened, expected) => panic!("open_append {opened:?} disagrees with the reader {expected:?}"),
    };

    let (offset, key, value) = input.next.parts();
    writer.append(offset, key, value.as_deref()).expect("append");
    writer.close().expect("close");
    let after = std::fs::read(&path).expect("read appended");
    let _ = std::fs::remove_file(&path);
    let (_, records, _) = mak_fuzz::read_limited(&after).expect("an appended file reads");
    let mut expected = recovered;
    expected.push((offset, key.unwrap_or_default().to_vec(), value.unwrap_or_default()));
    assert_eq!(records, expected);
});
