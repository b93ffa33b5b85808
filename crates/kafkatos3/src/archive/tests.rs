//! Unit tests of [`super`] (crate::archive).

use super::*;

fn sealed(topic: &str, partition: i32, start: i64, end: i64) -> SealedName {
    SealedName { tp: TopicPartition::new(topic, partition), start, end, date: "261130".into() }
}

#[test]
fn keys_name_the_partition_and_the_zero_padded_offsets() {
    let name = sealed("my-topic_x", 3, 42, 99);
    let at = Location::new("archive/");
    assert_eq!(
        at.object_key(&name, ".mak.zst").as_ref(),
        "archive/my-topic_x/3/my-topic_x-3_00000000000000000042-00000000000000000099.mak.zst"
    );
    assert_eq!(at.claim_key(&name.tp, 42).as_ref(), "archive/my-topic_x/3/my-topic_x-3_00000000000000000042.claim");
    assert_eq!(
        Location::new("").object_key(&sealed("t", 0, 0, 0), ".mak.gz.age").as_ref(),
        "t/0/t-0_00000000000000000000-00000000000000000000.mak.gz.age"
    );
}

#[test]
fn every_naming_parses_and_must_agree_with_its_folder() {
    let at = Location::new("p");
    let tp = TopicPartition::new("t-1", 0);
    let ours = at.parse_key("p/t-1/0/t-1-0_00000000000000000100-00000000000000000199.mak.lz4").unwrap();
    assert_eq!(ours, ArchiveKey::Object(ObjectName { tp: tp.clone(), start: 100, end: 199, original: false }));
    let encrypted = at.parse_key("p/t-1/0/t-1-0_00000000000000000100-00000000000000000199.mak.age").unwrap();
    assert_eq!(encrypted, ours);
    let claim = at.parse_key("p/t-1/0/t-1-0_00000000000000000100.claim").unwrap();
    assert_eq!(claim, ArchiveKey::Claim { tp, start: 100 });
    let original = at.parse_key("p/t/2/t-2_5-9_160811.mak.gz").unwrap();
    let tp = TopicPartition::new("t", 2);
    assert_eq!(original, ArchiveKey::Object(ObjectName { tp, start: 5, end: 9, original: true }));
    assert!(at.parse_key("p/t/1/t-2_5-9_160811.mak.gz").is_none(), "folder disagrees");
    assert!(at.parse_key("q/t/0/t-0_00000000000000000100.claim").is_none(), "other prefix");
    assert!(at.parse_key("p/t/0/t-0_100.claim").is_none(), "unpadded is not ours");
    assert!(at.parse_key("p/t/0/t-0_00000000000000000100-00000000000000000099.mak").is_none(), "end before start");
    assert!(at.parse_key("p/t/0/t-0_00000000000000000100-00000000000000000199.mak.bz2").is_none(), "no such codec");
}

/// A sealed file of `version` with records `start..start + count` of incompressible values,
/// gzipped: larger than the 64 KiB a header read fetches.
fn gzipped_file(version: mak::Version, start: i64, count: i64) -> Vec<u8> {
    use std::io::Write as _;
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
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&std::fs::read(&path).unwrap()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn the_range_of_either_version_is_read_from_the_first_64_kib_of_the_gzipped_object() {
    for version in [mak::Version::V1, mak::Version::V2] {
        let gz = gzipped_file(version, 100, 200);
        assert!(gz.len() as u64 > 2 * HEADER_FETCH, "{} bytes", gz.len());
        let head = mak::codec::Decoder::detect(&gz[..HEADER_FETCH as usize]).unwrap();
        let header = header_from(&AnyReader::new(head).unwrap()).unwrap();
        assert_eq!(header, ObjectHeader { tp: TopicPartition::new("t", 4), start: 100, end: 299 }, "{version:?}");
    }
}

#[test]
fn keys_sort_by_offset() {
    let at = Location::new("p");
    let tp = TopicPartition::new("t", 0);
    let (a, b) = (at.claim_key(&tp, 999), at.claim_key(&tp, 1000));
    assert!(a.as_ref() < b.as_ref());
    let (a, b) = (at.object_key(&sealed("t", 0, 999, 999), ".mak"), at.object_key(&sealed("t", 0, 1000, 1000), ".mak"));
    assert!(a.as_ref() < b.as_ref());
}

#[test]
fn a_claim_round_trips_as_one_line_of_json() {
    let claim = Claim::new(&sealed("t", 1, 5, 9), ".mak.gz");
    let bytes = claim.to_bytes();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        "{\"topic\":\"t\",\"partition\":1,\"first\":5,\"last\":9,\"object\":\"t-1_00000000000000000005-00000000000000000009.mak.gz\"}\n"
    );
    assert_eq!(serde_json::from_slice::<Claim>(&bytes).unwrap(), claim);
}
