//! Files written by the original Python writer (see tests/golden/make_golden.py): we read
//! them exactly, write byte-identical ones, and resume them.

mod common;

use std::fs::File;

use common::*;
use mak::{Header, MakReader, MakWriter};

const START_TIME: f64 = 1479000000.0;

struct Golden {
    file: &'static str,
    header: Header,
    records: Vec<Input<'static>>,
}

fn goldens() -> Vec<Golden> {
    vec![
        Golden {
            file: "original_three_records.mak",
            header: header("test", 0, 0, START_TIME),
            records: vec![
                (0, Some(b"key-0"), Some(b"value-0")),
                (1, Some(b"key-1"), Some(b"value-1")),
                (2, Some(b"key-2"), Some(b"value-2")),
            ],
        },
        Golden {
            file: "original_empty_and_null.mak",
            header: header("test", 3, 41, START_TIME),
            records: vec![
                (41, None, Some(b"value with null key")),
                (42, Some(b"key with empty value"), Some(b"")),
                (43, Some(b"\x00\xff\x00bin"), Some(b"\xff\x00\xfe\x01")),
                (44, None, None),
            ],
        },
        Golden { file: "original_no_records.mak", header: header("test", 1, 100, 1479000000.25), records: vec![] },
        Golden {
            file: "original_escaped_topic.mak",
            header: header("we\"ird\\t\u{f3}pic/\n\u{1F600}\u{7f}", 2, 7, START_TIME),
            records: vec![(7, Some(b"k"), Some(b"v"))],
        },
    ]
}

fn expected_records(g: &Golden) -> Vec<Owned> {
    g.records.iter().map(|&(o, k, v)| rec(o, k.unwrap_or_default(), v.unwrap_or_default())).collect()
}

#[test]
fn reads_every_original_golden_file_exactly() {
    for g in goldens() {
        let bytes = golden_bytes(g.file);
        let mut reader = MakReader::with_size_limit(&bytes[..], bytes.len() as u64).unwrap();
        assert_eq!(reader.header(), &g.header, "{}", g.file);
        assert_eq!(reader.write_position(), bytes.len() as u64, "{}", g.file);
        let expected_last = g.records.last().map_or(g.header.start_offset, |r| r.0);
        assert_eq!(reader.last_offset_field(), expected_last as u64, "{}", g.file);
        let json_len = get_u64(&bytes, 19);
        assert_eq!(reader.data_start(), 27 + json_len, "{}", g.file);
        assert_eq!(collect(&mut reader).unwrap(), expected_records(&g), "{}", g.file);
        assert_eq!(reader.position(), bytes.len() as u64);
    }
}

#[test]
fn writer_output_is_byte_identical_to_original_writer() {
    let dir = tempfile::tempdir().unwrap();
    for g in goldens() {
        let path = dir.path().join(g.file);
        let mut writer = MakWriter::create(&path, &g.header).unwrap();
        for &(offset, key, value) in &g.records {
            writer.append(offset, key, value).unwrap();
        }
        writer.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), golden_bytes(g.file), "{} differs from the original's bytes", g.file);
    }
}

#[test]
fn writer_output_is_byte_identical_with_a_sync_after_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let g = &goldens()[1];
    let path = dir.path().join("synced.mak");
    let mut writer = MakWriter::create(&path, &g.header).unwrap();
    for &(offset, key, value) in &g.records {
        writer.append(offset, key, value).unwrap();
        writer.sync().unwrap();
    }
    writer.close().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), golden_bytes(g.file));
}

#[test]
fn reads_gzipped_original_file_as_a_stream() {
    let file = File::open(golden("original_three_records.mak.gz")).unwrap();
    let mut reader = MakReader::new(flate2::read::GzDecoder::new(file)).unwrap();
    assert_eq!(reader.header(), &goldens()[0].header);
    assert_eq!(collect(&mut reader).unwrap(), expected_records(&goldens()[0]));
}

#[test]
fn reader_ignores_torn_tail_of_original_file() {
    let bytes = golden_bytes("original_torn_tail.mak");
    let write_position = get_u64(&bytes, 11);
    assert!(write_position < bytes.len() as u64, "golden file has a tail");
    let (header, records) = read_slice(&bytes).unwrap();
    assert_eq!(header, common::header("test", 0, 10, START_TIME));
    assert_eq!(records, vec![rec(10, b"a", b"first"), rec(11, b"b", b"second")]);
    // Also as a stream without size limit.
    let mut reader = MakReader::new(&bytes[..]).unwrap();
    assert_eq!(collect(&mut reader).unwrap().len(), 2);
    assert_eq!(reader.position(), write_position);
}

#[test]
fn torn_tail_golden_is_original_bytes_up_to_write_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.mak");
    let mut writer = MakWriter::create(&path, &header("test", 0, 10, START_TIME)).unwrap();
    writer.append(10, Some(b"a"), Some(b"first")).unwrap();
    writer.append(11, Some(b"b"), Some(b"second")).unwrap();
    writer.close().unwrap();
    let golden = golden_bytes("original_torn_tail.mak");
    let ours = std::fs::read(&path).unwrap();
    assert_eq!(ours[..], golden[..ours.len()]);
    assert_eq!(get_u64(&golden, 11), ours.len() as u64);
}

#[test]
fn open_append_resumes_original_file_truncating_its_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let golden = golden_bytes("original_torn_tail.mak");
    std::fs::write(&path, &golden).unwrap();
    let write_position = get_u64(&golden, 11);

    let (mut writer, recovered) = MakWriter::open_append(&path).unwrap();
    assert_eq!(recovered.header, header("test", 0, 10, START_TIME));
    assert_eq!(recovered.record_count, 2);
    assert_eq!(recovered.last_offset, Some(11));
    assert_eq!(recovered.truncated_bytes, golden.len() as u64 - write_position);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), write_position);
    assert_eq!(writer.len(), write_position);
    assert_eq!(writer.record_count(), 2);
    assert_eq!(writer.last_offset(), Some(11));
    assert!(!writer.is_dirty());

    writer.append(12, None, Some(b"third")).unwrap();
    writer.append(13, Some(b"d"), None).unwrap();
    assert_eq!(writer.record_count(), 4);
    writer.close().unwrap();

    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(get_u64(&bytes, 3), 13, "last offset field");
    assert_eq!(get_u64(&bytes, 11), bytes.len() as u64, "write position");
    let (_, records) = read_slice(&bytes).unwrap();
    assert_eq!(
        records,
        vec![rec(10, b"a", b"first"), rec(11, b"b", b"second"), rec(12, b"", b"third"), rec(13, b"d", b"")]
    );
}

#[test]
fn open_append_resumes_original_file_without_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    std::fs::copy(golden("original_no_records.mak"), &path).unwrap();
    let (mut writer, recovered) = MakWriter::open_append(&path).unwrap();
    assert_eq!(recovered.record_count, 0);
    assert_eq!(recovered.last_offset, None);
    assert_eq!(recovered.truncated_bytes, 0);
    writer.append(100, Some(b"k"), Some(b"v")).unwrap();
    writer.close().unwrap();
    let (h, records) = read_file(&path);
    assert_eq!(h.start_time, 1479000000.25);
    assert_eq!(records, vec![rec(100, b"k", b"v")]);
}

#[test]
fn open_append_derives_last_offset_from_records_not_header_field() {
    // The original writes the write position before the last offset: a crash between the
    // two leaves the field one record behind.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let mut bytes = golden_bytes("original_three_records.mak");
    put_u64(&mut bytes, 3, 1);
    std::fs::write(&path, &bytes).unwrap();

    let (writer, recovered) = MakWriter::open_append(&path).unwrap();
    assert_eq!(recovered.last_offset, Some(2));
    assert_eq!(recovered.record_count, 3);
    // Closing without appending repairs the stale field.
    writer.close().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), golden_bytes("original_three_records.mak"));
}
