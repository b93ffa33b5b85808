//! Version 2 and 3 golden files, written once by each version's `MakWriter` and committed: they
//! must read back as exactly these records forever, so a format change that breaks old files is
//! caught. The writers must also still produce them byte for byte. To regenerate after a
//! deliberate format change (which needs a new version):
//! `cargo test -p mak --test golden_v2_v3 -- --ignored`.

mod common;

use common::format::{Format, V2, V3};
use common::v2::header;
use mak::v2::{Header, OwnedRecord, State, TimestampType};
use mak::AnyReader;

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
    // Offsets with a gap every third record, timestamps that go back and forth.
    let mut many: Vec<OwnedRecord> = (0..300i64)
        .scan(999, |offset, o| {
            *offset += if o % 3 == 0 { 3 } else { 1 };
            Some(rec(*offset, (1_650_000_000_000 + o * 7 % 50, CREATE), Some(b"k"), Some(&[o as u8; 40]), &[]))
        })
        .collect();
    many[150].timestamp_type = APPEND;
    vec![
        Golden {
            file: "tombstones_headers.mak",
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
        Golden { file: "empty_sealed.mak", header: header("empty", 0, 0), records: vec![], sealed: true },
        Golden {
            file: "open.mak",
            header: header("open", 2, 40),
            records: vec![
                rec(40, (1_600_000_000_000, CREATE), Some(b"a"), Some(b"x"), &[]),
                rec(41, (1_600_000_000_001, CREATE), None, None, &[("h", None)]),
            ],
            sealed: false,
        },
        // Version 3: blocks of the writer's default bound, with gaps, mixed types and
        // timestamps out of order.
        Golden { file: "many_records.mak", header: header("many", 5, 1000), records: many, sealed: true },
    ]
}

/// The golden file of `name` for format `F`: `v2_<name>`, `v3_<name>`.
fn golden<F: Format>(name: &str) -> std::path::PathBuf {
    common::golden(&format!("{}_{name}", F::NAME))
}

/// An open file whose progress block covers two records, followed by half of a third frame:
/// what a crash between the write and the next sync leaves.
const TORN_TAIL: &str = "open_torn_tail.mak";

fn write_golden<F: Format>(g: &Golden, path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    F::write_file(path, &g.header, &g.records, false, g.sealed);
}

fn torn_tail_bytes<F: Format>(dir: &std::path::Path) -> Vec<u8> {
    let g = &goldens()[2];
    let path = dir.join("three.mak");
    let _ = std::fs::remove_file(&path);
    let mut writer = F::create(&path, &g.header);
    for record in &g.records {
        F::append(&mut writer, record).unwrap();
    }
    F::sync(&mut writer);
    let two = std::fs::read(&path).unwrap();
    let third = rec(42, (1_600_000_000_002, CREATE), Some(b"torn"), Some(b"never synced"), &[]);
    F::append(&mut writer, &third).unwrap();
    F::sync(&mut writer);
    drop(writer);
    // The progress block of the first sync, and half of what the second one wrote.
    let mut bytes = std::fs::read(&path).unwrap();
    let block = F::PROGRESS_AT as usize..F::PROGRESS_END as usize;
    bytes[block.clone()].copy_from_slice(&two[block]);
    bytes.truncate(two.len() + (bytes.len() - two.len()) / 2);
    bytes
}

/// The goldens of `F`: the many-records file is version 3's only.
fn goldens_of<F: Format>() -> Vec<Golden> {
    goldens().into_iter().filter(|g| F::VERSION == mak::Version::V3 || g.file != "many_records.mak").collect()
}

fn reads_every_golden_file_exactly<F: Format>() {
    for g in goldens_of::<F>() {
        let bytes = std::fs::read(golden::<F>(g.file)).unwrap();
        let read = F::read(&bytes, true).unwrap();
        assert_eq!(read.header, g.header, "{}", g.file);
        assert_eq!(read.records, g.records, "{}", g.file);
        assert_eq!(read.footer.is_some(), g.sealed, "{}", g.file);
        assert_eq!(read.write_position, bytes.len() as u64);
        let mut any = AnyReader::new(&bytes[..]).unwrap();
        assert_eq!(any.version(), F::VERSION);
        let (_, progress) = F::summary(&bytes);
        let (_, record_count, _, state) = progress.unwrap();
        assert_eq!(state, if g.sealed { State::Sealed } else { State::Open });
        assert_eq!(record_count, g.records.len() as u64);
        while any.next_record().unwrap().is_some() {}
    }
}

#[test]
fn reads_every_golden_file_of_both_versions_exactly() {
    reads_every_golden_file_exactly::<V2>();
    reads_every_golden_file_exactly::<V3>();
}

fn reads_the_torn_tail_up_to_its_write_position<F: Format>() {
    let bytes = std::fs::read(golden::<F>(TORN_TAIL)).unwrap();
    let read = F::read(&bytes, true).unwrap();
    assert_eq!(read.records, goldens()[2].records);
    assert!(read.write_position < bytes.len() as u64);
}

#[test]
fn reads_the_torn_tail_golden_file_up_to_its_write_position() {
    reads_the_torn_tail_up_to_its_write_position::<V2>();
    reads_the_torn_tail_up_to_its_write_position::<V3>();
}

fn writer_produces_the_golden_bytes<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    for g in goldens_of::<F>() {
        let path = dir.path().join(g.file);
        write_golden::<F>(&g, &path);
        assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(golden::<F>(g.file)).unwrap(), "{}", g.file);
    }
    assert_eq!(torn_tail_bytes::<F>(dir.path()), std::fs::read(golden::<F>(TORN_TAIL)).unwrap());
}

#[test]
fn the_writers_still_produce_the_golden_bytes() {
    writer_produces_the_golden_bytes::<V2>();
    writer_produces_the_golden_bytes::<V3>();
}

fn write_golden_files<F: Format>() {
    for g in goldens_of::<F>() {
        write_golden::<F>(&g, &golden::<F>(g.file));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(golden::<F>(TORN_TAIL), torn_tail_bytes::<F>(dir.path())).unwrap();
}

#[test]
#[ignore = "regenerates the committed version 3 golden files"]
fn write_v3_golden_files() {
    write_golden_files::<V3>();
}

#[test]
#[ignore = "regenerates the committed version 2 golden files"]
fn write_v2_golden_files() {
    write_golden_files::<V2>();
}

#[test]
fn checksums_are_crc32c_castagnoli() {
    // The standard check value of CRC-32C (RFC 3720, iSCSI), so the polynomial cannot drift.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
}
