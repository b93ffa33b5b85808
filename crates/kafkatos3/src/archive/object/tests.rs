use std::io::Write as _;

use super::*;

/// A sealed file of `version` with records `start..start + count` of incompressible values,
/// stamped with their offset, gzipped: larger than the 64 KiB a header read fetches.
fn gzipped_file(version: mak::Version, start: i64, count: i64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.mak");
    let created = mak::FileStart { topic: "t", partition: 4, start_offset: start, created_secs: 1, writer: None };
    let mut writer = mak::AnyWriter::create(&path, version, &created).unwrap();
    let mut noise = 0x9e37_79b9_u32;
    for offset in start..start + count {
        let value: Vec<u8> = (0..2000)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                noise as u8
            })
            .collect();
        let record = mak::v2::RecordRef {
            offset,
            timestamp: offset,
            timestamp_type: mak::v2::TimestampType::CreateTime,
            key: None,
            value: Some(&value),
            headers: &[("h", None)],
        };
        writer.append(&record).unwrap();
    }
    writer.seal().unwrap();
    gzip(&std::fs::read(&path).unwrap())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn the_range_of_either_version_is_read_from_the_first_64_kib_of_the_gzipped_object() {
    for version in [mak::Version::V1, mak::Version::V2, mak::Version::V3] {
        let gz = gzipped_file(version, 100, 200);
        assert!(gz.len() as u64 > 2 * HEADER_FETCH, "{} bytes", gz.len());
        let head = ObjectReader::open("head", &gz[..HEADER_FETCH as usize], None).unwrap();
        let header = head.header().unwrap();
        let stamped = (version != mak::Version::V1).then_some((Some(100), Some(299)));
        let expected = ObjectHeader {
            version,
            tp: TopicPartition::new("t", 4),
            start: 100,
            end: 299,
            first_timestamp: stamped.and_then(|s| s.0),
            last_timestamp: stamped.and_then(|s| s.1),
            time_range: (version == mak::Version::V3).then_some((100, 299)),
            created_secs: Some(1.0),
        };
        assert_eq!(header, expected, "{version:?}");
    }
}

#[test]
fn a_whole_object_is_read_to_its_end_and_summarised() {
    let gz = gzipped_file(mak::Version::V2, 7, 30);
    let mut reader = ObjectReader::open("whole", &gz[..], None).unwrap();
    let first = reader.next_record().unwrap().unwrap().offset;
    assert_eq!(first, 7);
    assert_eq!(reader.finish().unwrap(), ObjectSummary { records: 30, last: Some(36) });
}

#[test]
fn a_damaged_codec_trailer_fails_after_the_last_record_naming_the_object() {
    let mut gz = gzipped_file(mak::Version::V1, 0, 5);
    // gzip's last 8 bytes: CRC-32 and length of the uncompressed data.
    let at = gz.len() - 8;
    gz[at] ^= 0xff;
    let error = ObjectReader::open("s3://b/k", &gz[..], None).unwrap().finish().unwrap_err();
    assert!(matches!(error.problem, ObjectProblem::Trailer(_)), "{error}");
    assert!(error.to_string().starts_with("s3://b/k: after the last record"), "{error}");
}

#[test]
fn offsets_that_do_not_increase_fail_a_sealed_file_at_the_record_that_breaks_the_order() {
    // Version 1 writers never checked the order; a file written out of order is damaged.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.mak");
    let header = mak::Header { topic: "t".into(), partition: 0, start_offset: 10, start_time: 1.0 };
    let mut writer = mak::MakWriter::create(&path, &header).unwrap();
    for offset in [10, 11, 11, 12] {
        writer.append(offset, Some(b"k"), Some(b"v")).unwrap();
    }
    writer.close().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let error = ObjectReader::open("v1.mak", &bytes[..], None).unwrap().finish_sealed().unwrap_err();
    assert!(matches!(error.problem, ObjectProblem::OutOfOrder { index: 2, offset: 11 }), "{error}");
    let shown = ObjectReader::open("v1.mak", &bytes[..], None).unwrap().finish().unwrap();
    assert_eq!(shown, ObjectSummary { records: 4, last: Some(12) }, "a reader that only shows records shows all");
}

#[test]
fn an_encrypted_object_without_a_key_says_only_the_key_is_missing() {
    let spec = mak::crypt::EncryptionSpec {
        recipients: vec!["age15rzxjhtqrh7yjl5kmhfj38m8qtn5luw5ddn662pvwrfkyqt3vupqdjyyp4".into()],
        ..Default::default()
    };
    let encryption = mak::crypt::Encryption::new(&spec).unwrap();
    let compression = mak::codec::Compression::new(mak::codec::Codec::Zstd, None).unwrap();
    let mut writer = mak::layers::archive_writer(Vec::new(), &compression, Some(&encryption)).unwrap();
    writer.write_all(&gzipped_file(mak::Version::V2, 0, 3)).unwrap();
    let encrypted = writer.finish().unwrap();
    let error = ObjectReader::open("s3://b/k.age", &encrypted[..], None).err().expect("needs a key");
    assert!(error.problem.needs_key(), "{error}");
}

#[test]
fn a_sealed_file_without_records_fails_when_its_header_states_a_last_offset() {
    // Version 1 states the start offset as its last when empty: an archived object never is.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mak");
    let header = mak::Header { topic: "t".into(), partition: 0, start_offset: 10, start_time: 1.0 };
    mak::MakWriter::create(&path, &header).unwrap().close().unwrap();
    let bytes = gzip(&std::fs::read(&path).unwrap());
    let error = ObjectReader::open("empty", &bytes[..], None).unwrap().finish_sealed().unwrap_err();
    assert!(matches!(error.problem, ObjectProblem::NoRecords { stated: 10 }), "{error}");
    assert_eq!(ObjectReader::open("empty", &bytes[..], None).unwrap().finish().unwrap().records, 0);
}
