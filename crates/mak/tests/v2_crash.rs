//! Version 2 crash consistency: whatever a crash leaves (a progress block from some earlier
//! sync, a tail cut anywhere, a torn progress block, a footer the block never caught up
//! with), `open_append` recovers exactly the frames that were made durable, and the file
//! reads back, and resumes, cleanly.

mod common;

use std::path::Path;

use common::v2::*;
use mak::v2::{self, MakWriter, OwnedRecord, HEADER_LEN_AT, PROGRESS_AT};
use mak::WriteError;

/// A small file written with a sync after every record: the file's bytes after each sync
/// (index 0: just created) and the records.
struct Snapshots {
    after_sync: Vec<Vec<u8>>,
    records: Vec<OwnedRecord>,
}

fn records() -> Vec<OwnedRecord> {
    let mut records: Vec<OwnedRecord> = (0..4).map(|i| simple(10 + i, &[i as u8; 7])).collect();
    records[1].key = None;
    records[2].value = None;
    records[3].headers = vec![("h".into(), None), ("h".into(), Some(b"v".to_vec()))];
    records
}

fn snapshots(dir: &Path) -> Snapshots {
    let path = dir.join("snap.mak");
    let records = records();
    let mut writer = MakWriter::create(&path, &header("t", 0, 10)).unwrap();
    let mut after_sync = vec![std::fs::read(&path).unwrap()];
    for record in &records {
        append(&mut writer, record);
        writer.sync().unwrap();
        after_sync.push(std::fs::read(&path).unwrap());
    }
    drop(writer);
    Snapshots { after_sync, records }
}

/// The file a crash leaves: the progress block of `block_from`, then the data of `data_from`
/// cut at `cut`.
fn crashed(block_from: &[u8], data_from: &[u8], cut: usize) -> Vec<u8> {
    let mut bytes = data_from[..cut].to_vec();
    let block = PROGRESS_AT as usize..HEADER_LEN_AT as usize;
    bytes[block.clone()].copy_from_slice(&block_from[block]);
    bytes
}

fn recover(dir: &Path, bytes: &[u8]) -> (MakWriter, v2::Recovered) {
    let path = dir.join("crashed.mak");
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, bytes).unwrap();
    MakWriter::open_append(&path).unwrap()
}

/// After recovery, appending one more record and sealing gives `kept` plus that record.
fn resume_and_check(dir: &Path, mut writer: MakWriter, kept: &[OwnedRecord]) {
    let next = simple(kept.last().map_or(100, |r| r.offset + 1), b"after the crash");
    append(&mut writer, &next);
    writer.close().unwrap();
    let read = read_slice(&std::fs::read(dir.join("crashed.mak")).unwrap()).unwrap();
    let mut expected = kept.to_vec();
    expected.push(next);
    assert_eq!(read.records, expected);
    assert!(read.footer.is_some());
}

#[test]
fn open_append_keeps_exactly_the_synced_records_whatever_tail_follows() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = snapshots(dir.path());
    let full = snaps.after_sync.last().unwrap();
    for (synced, snapshot) in snaps.after_sync.iter().enumerate() {
        for cut in snapshot.len()..=full.len() {
            let (writer, recovered) = recover(dir.path(), &crashed(snapshot, full, cut));
            assert_eq!(recovered.record_count, synced as u64, "sync {synced}, cut {cut}");
            assert_eq!(recovered.truncated_bytes, (cut - snapshot.len()) as u64);
            assert!(!recovered.scanned);
            resume_and_check(dir.path(), writer, &snaps.records[..synced]);
        }
    }
}

#[test]
fn a_torn_progress_block_falls_back_to_scanning_and_keeps_every_complete_frame() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = snapshots(dir.path());
    let full = snaps.after_sync.last().unwrap();
    let frame_ends: Vec<usize> = snaps.after_sync.iter().map(Vec::len).collect();
    let mut torn = full.clone();
    torn[PROGRESS_AT as usize + 3] ^= 0x40;
    for cut in frame_ends[0]..=full.len() {
        let complete = frame_ends.iter().filter(|&&end| end <= cut).count() - 1;
        let (writer, recovered) = recover(dir.path(), &torn[..cut]);
        assert_eq!(recovered.record_count, complete as u64, "cut {cut}");
        assert!(recovered.scanned);
        assert_eq!(recovered.truncated_bytes, (cut - frame_ends[complete]) as u64);
        resume_and_check(dir.path(), writer, &snaps.records[..complete]);
    }
}

#[test]
fn the_next_sync_rewrites_a_torn_progress_block_even_without_appends() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = snapshots(dir.path());
    let mut torn = snaps.after_sync.last().unwrap().clone();
    torn[PROGRESS_AT as usize] ^= 1;
    assert_eq!(v2::read_summary(&torn[..]).unwrap().progress, None, "a torn block is reported as unknown");
    let (mut writer, _) = recover(dir.path(), &torn);
    writer.sync().unwrap();
    let bytes = std::fs::read(dir.path().join("crashed.mak")).unwrap();
    let progress = v2::read_summary(&bytes[..]).unwrap().progress.expect("block rewritten");
    assert_eq!(progress.record_count, snaps.records.len() as u64);
}

#[test]
fn a_footer_the_progress_block_never_caught_up_with_is_cut_as_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed.mak");
    let records = records();
    write_file(&path, &header("t", 0, 10), &records, false, true);
    let sealed = std::fs::read(&path).unwrap();
    // The block of the last sync before sealing: same records, open, footer not covered.
    let mut before_seal = sealed.clone();
    let block = PROGRESS_AT as usize..HEADER_LEN_AT as usize;
    {
        let path = dir.path().join("unsealed.mak");
        write_file(&path, &header("t", 0, 10), &records, false, false);
        before_seal[block.clone()].copy_from_slice(&std::fs::read(&path).unwrap()[block]);
    }
    let (writer, recovered) = recover(dir.path(), &before_seal);
    assert_eq!(recovered.record_count, records.len() as u64);
    assert_eq!(recovered.truncated_bytes, 53, "the footer frame");
    resume_and_check(dir.path(), writer, &records);
}

#[test]
fn open_append_refuses_a_sealed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed.mak");
    write_file(&path, &header("t", 0, 10), &records(), false, true);
    let err = MakWriter::open_append(&path).unwrap_err();
    assert!(matches!(err, WriteError::Sealed { .. }), "{err:?}");
}

#[test]
fn open_append_reports_a_corrupt_frame_before_the_write_position_and_leaves_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = snapshots(dir.path());
    let mut bytes = snaps.after_sync.last().unwrap().clone();
    let second_frame = snaps.after_sync[1].len();
    bytes[second_frame + 10] ^= 0xff;
    let path = dir.path().join("corrupt.mak");
    std::fs::write(&path, &bytes).unwrap();
    let err = MakWriter::open_append(&path).unwrap_err();
    assert!(matches!(err, WriteError::Corrupt { position, .. } if position == second_frame as u64), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn dropping_a_writer_loses_only_unsynced_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let records = records();
    let mut writer = MakWriter::create(&path, &header("t", 0, 10)).unwrap();
    append(&mut writer, &records[0]);
    writer.sync().unwrap();
    append(&mut writer, &records[1]);
    drop(writer);
    let (writer, recovered) = MakWriter::open_append(&path).unwrap();
    assert_eq!((recovered.record_count, recovered.last_offset), (1, Some(10)));
    writer.suspend().unwrap();
    let (_, again) = MakWriter::open_append(&path).unwrap();
    assert_eq!(again.record_count, 1, "suspend leaves the file open and resumable");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    #[test]
    fn open_append_recovers_the_last_sync_whatever_tail_a_crash_leaves(
        records in records_strategy(12, 200),
        synced in 0usize..13,
        garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
        torn_block: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.mak");
        let synced = synced.min(records.len());
        let mut writer = MakWriter::create(&path, &header("t", 0, 0)).unwrap();
        for record in &records[..synced] {
            append(&mut writer, record);
        }
        writer.sync().unwrap();
        for record in &records[synced..] {
            append(&mut writer, record);
        }
        drop(writer);
        let mut bytes = std::fs::read(&path).unwrap();
        let synced_len = bytes.len() as u64;
        bytes.extend_from_slice(&garbage);
        if torn_block {
            bytes[PROGRESS_AT as usize + 40] ^= 0x10;
        }
        let (writer, recovered) = recover(dir.path(), &bytes);
        proptest::prop_assert_eq!(recovered.record_count, synced as u64);
        proptest::prop_assert_eq!(recovered.scanned, torn_block);
        proptest::prop_assert_eq!(recovered.truncated_bytes, garbage.len() as u64);
        proptest::prop_assert_eq!(writer.len(), synced_len);
        resume_and_check(dir.path(), writer, &records[..synced]);
    }
}
