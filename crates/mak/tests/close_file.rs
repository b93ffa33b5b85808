//! Closing an idle file's descriptor and carrying on: the file opens again by its path on the
//! next operation that needs it, in every version, and a file changed while closed is refused.

use std::io::ErrorKind;

use mak::v2::{RecordRef, TimestampType};
use mak::{AnyReader, AnyWriter, FileStart, Version};

fn start() -> FileStart<'static> {
    FileStart { topic: "t", partition: 3, start_offset: 10, created_secs: 1_700_000_000, writer: Some("test") }
}

fn record(offset: i64, value: &[u8]) -> RecordRef<'_> {
    RecordRef {
        offset,
        timestamp: 1_700_000_000_000 + offset,
        timestamp_type: TimestampType::CreateTime,
        key: Some(b"k"),
        value: Some(value),
        headers: &[],
    }
}

fn offsets_and_values(path: &std::path::Path) -> Vec<(i64, Vec<u8>)> {
    let mut reader = AnyReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        out.push((record.offset, record.value.unwrap_or_default().to_vec()));
    }
    out
}

#[test]
fn a_closed_file_reopens_on_the_next_append_and_seals_whole_in_every_version() {
    for version in [Version::V1, Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.mak");
        let mut writer = AnyWriter::create(&path, version, &start()).unwrap();
        writer.append(&record(10, b"first")).unwrap();
        writer.close_file().unwrap();
        assert!(!writer.is_file_open(), "{version:?}: the descriptor is given back");
        assert_eq!(writer.buffer_bytes(), 0, "{version:?}: and the buffer");
        assert!(!writer.is_dirty(), "{version:?}: closing is a durability point");

        writer.append(&record(11, b"second")).unwrap();
        writer.sync().unwrap();
        assert!(writer.is_file_open(), "{version:?}: the sync needed the file and opened it again");
        writer.close_file().unwrap();
        writer.close_file().unwrap();
        writer.append(&record(12, b"third")).unwrap();
        writer.close_file().unwrap();
        let len = writer.seal().unwrap();

        assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "{version:?}");
        let expected: Vec<(i64, Vec<u8>)> =
            vec![(10, b"first".to_vec()), (11, b"second".to_vec()), (12, b"third".to_vec())];
        assert_eq!(offsets_and_values(&path), expected, "{version:?}");
    }
}

#[test]
fn a_closed_file_resumes_after_a_suspend_with_every_record() {
    for version in [Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.mak");
        let mut writer = AnyWriter::create(&path, version, &start()).unwrap();
        writer.append(&record(10, b"a")).unwrap();
        writer.close_file().unwrap();
        writer.suspend().unwrap();
        let (mut writer, found) = AnyWriter::open_append(&path).unwrap();
        assert_eq!((found.record_count, found.last_offset, found.truncated_bytes), (1, Some(10), 0), "{version:?}");
        writer.append(&record(11, b"b")).unwrap();
        writer.seal().unwrap();
        assert_eq!(offsets_and_values(&path).len(), 2, "{version:?}");
    }
}

#[test]
fn a_file_changed_while_closed_is_refused_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mak");
    let mut writer = AnyWriter::create(&path, Version::V3, &start()).unwrap();
    writer.append(&record(10, b"a")).unwrap();
    writer.close_file().unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().set_len(len + 7).unwrap();

    writer.append(&record(11, b"b")).unwrap();
    let error = writer.sync().unwrap_err();
    let chain = format!("{error}: {}", std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default());
    assert!(chain.contains("p.mak") && chain.contains("were written"), "{chain}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len + 7, "nothing was written into it");

    std::fs::remove_file(&path).unwrap();
    let mut writer = AnyWriter::create(&path, Version::V2, &start()).unwrap();
    writer.close_file().unwrap();
    std::fs::remove_file(&path).unwrap();
    writer.append(&record(10, b"a")).unwrap();
    let error = writer.sync().unwrap_err();
    let io = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(io.map(std::io::Error::kind), Some(ErrorKind::NotFound), "{error}");
}
