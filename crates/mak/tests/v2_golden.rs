//! Version 2 golden files, written once by `MakWriter` and committed: they must read back as
//! exactly these records forever, so a format change that breaks old files is caught. The
//! writer must also still produce them byte for byte. To regenerate after a deliberate
//! format change (which needs a new version): `cargo test -p mak --test v2_golden -- --ignored`.

mod common;

use common::v2::*;
use mak::v2::{Header, OwnedRecord, State, TimestampType, HEADER_LEN_AT, PROGRESS_AT};
use mak::{AnyReader, Version};

struct Golden {
    file: &'static str,
    header: Header,
    records: Vec<OwnedRecord>,
    sealed: bool,
}

fn rec(
    offset: i64,
    timestamp: (i64, TimestampType),
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) -> OwnedRecord {
    OwnedRecord {
        offset,
        timestamp: timestamp.0,
        timestamp_type: timestamp.1,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec))).collect(),
    }
}

const CREATE: TimestampType = TimestampType::CreateTime;
const APPEND: TimestampType = TimestampType::LogAppendTime;
const NONE: (i64, TimestampType) = (-1, TimestampType::NotAvailable);

fn goldens() -> Vec<Golden> {
    vec![
        Golden {
            file: "v2_tombstones_headers.mak",
            header: header("orders.v2", 7, 100),
            records: vec![
                rec(100, (1_700_000_000_000, CREATE), Some(b"k1"), Some(b"first"), &[]),
                rec(101, (1_700_000_000_005, CREATE), Some(b"k1"), None, &[("deleted-by", Some(b"gc"))]),
                rec(
                    105,
                    (1_700_000_000_010, APPEND),
                    None,
                    Some(b""),
                    &[("a", None), ("a", Some(b"")), ("a", Some(b"2"))],
                ),
                rec(106, NONE, Some(b""), Some(b"\x00\xff\x00binary\xfe"), &[("\u{e9}t\u{e9}", Some(b"\x00\x01"))]),
                rec(200, (-5, CREATE), Some(b"\xff"), None, &[]),
            ],
            sealed: true,
        },
        Golden { file: "v2_empty_sealed.mak", header: header("empty", 0, 0), records: vec![], sealed: true },
        Golden {
            file: "v2_open.mak",
            header: header("open", 2, 40),
            records: vec![
                rec(40, (1_600_000_000_000, CREATE), Some(b"a"), Some(b"x"), &[]),
                rec(41, (1_600_000_000_001, CREATE), None, None, &[("h", None)]),
            ],
            sealed: false,
        },
    ]
}

/// An open file whose progress block covers two records, followed by half of a third frame:
/// what a crash between the write and the next sync leaves.
const TORN_TAIL: &str = "v2_open_torn_tail.mak";

fn write_golden(g: &Golden, path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    write_file(path, &g.header, &g.records, false, g.sealed);
}

fn torn_tail_bytes(dir: &std::path::Path) -> Vec<u8> {
    let g = &goldens()[2];
    let two = dir.join("two.mak");
    write_golden(g, &two);
    let mut three = g.records.clone();
    three.push(rec(42, (1_600_000_000_002, CREATE), Some(b"torn"), Some(b"never synced"), &[]));
    let path = dir.join("three.mak");
    write_file(&path, &g.header, &three, false, false);
    let two = std::fs::read(&two).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let block = PROGRESS_AT as usize..HEADER_LEN_AT as usize;
    bytes[block.clone()].copy_from_slice(&two[block]);
    bytes.truncate(two.len() + (bytes.len() - two.len()) / 2);
    bytes
}

#[test]
fn reads_every_v2_golden_file_exactly() {
    for g in goldens() {
        let bytes = std::fs::read(common::golden(g.file)).unwrap();
        let read = read_slice(&bytes).unwrap();
        assert_eq!(read.header, g.header, "{}", g.file);
        assert_eq!(read.records, g.records, "{}", g.file);
        assert_eq!(read.footer.is_some(), g.sealed, "{}", g.file);
        assert_eq!(read.write_position, bytes.len() as u64);
        let mut any = AnyReader::new(&bytes[..]).unwrap();
        assert_eq!(any.version(), Version::V2);
        let progress = mak::v2::read_summary(&bytes[..]).unwrap().progress.unwrap();
        assert_eq!(progress.state, if g.sealed { State::Sealed } else { State::Open });
        assert_eq!(progress.record_count, g.records.len() as u64);
        while any.next_record().unwrap().is_some() {}
    }
}

#[test]
fn reads_the_torn_tail_golden_file_up_to_its_write_position() {
    let bytes = std::fs::read(common::golden(TORN_TAIL)).unwrap();
    let read = read_slice(&bytes).unwrap();
    assert_eq!(read.records, goldens()[2].records);
    assert!(read.write_position < bytes.len() as u64);
}

#[test]
fn the_writer_still_produces_the_v2_golden_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for g in goldens() {
        let path = dir.path().join(g.file);
        write_golden(&g, &path);
        assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(common::golden(g.file)).unwrap(), "{}", g.file);
    }
    assert_eq!(torn_tail_bytes(dir.path()), std::fs::read(common::golden(TORN_TAIL)).unwrap());
}

#[test]
#[ignore = "regenerates the committed golden files"]
fn write_v2_golden_files() {
    for g in goldens() {
        write_golden(&g, &common::golden(g.file));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(common::golden(TORN_TAIL), torn_tail_bytes(dir.path())).unwrap();
}

#[test]
fn checksums_are_crc32c_castagnoli() {
    // The standard check value of CRC-32C (RFC 3720, iSCSI), so the polynomial cannot drift.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
}
