//! Crash consistency of versions 2 and 3 (each test runs for both): whatever a crash leaves (a
//! progress block from some earlier sync, a tail cut anywhere, a torn progress block, a footer
//! the block never caught up with), `open_append` recovers exactly the frames or blocks that were
//! made durable, and the file reads back, and resumes, cleanly.

mod common;

use std::path::Path;

use common::format::{Format, Found, V2, V3};
use common::v2::{header, records_strategy, simple};
use mak::v2::OwnedRecord;
use mak::WriteError;

/// Runs `test` for both versions.
macro_rules! both {
    ($name:ident, $test:ident) => {
        #[test]
        fn $name() {
            $test::<V2>();
            $test::<V3>();
        }
    };
}

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

fn snapshots<F: Format>(dir: &Path) -> Snapshots {
    let path = dir.join("snap.mak");
    let _ = std::fs::remove_file(&path);
    let records = records();
    let mut writer = F::create(&path, &header("t", 0, 10));
    let mut after_sync = vec![std::fs::read(&path).unwrap()];
    for record in &records {
        F::append(&mut writer, record).unwrap();
        F::sync(&mut writer);
        after_sync.push(std::fs::read(&path).unwrap());
    }
    drop(writer);
    Snapshots { after_sync, records }
}

/// The file a crash leaves: the progress block of `block_from`, then the data of `data_from`
/// cut at `cut`.
fn crashed<F: Format>(block_from: &[u8], data_from: &[u8], cut: usize) -> Vec<u8> {
    let mut bytes = data_from[..cut].to_vec();
    let block = F::PROGRESS_AT as usize..F::PROGRESS_END as usize;
    bytes[block.clone()].copy_from_slice(&block_from[block]);
    bytes
}

fn recover<F: Format>(dir: &Path, bytes: &[u8]) -> (F::Writer, Found) {
    let path = dir.join("crashed.mak");
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, bytes).unwrap();
    F::open_append(&path).unwrap()
}

/// After recovery, appending one more record and sealing gives `kept` plus that record.
fn resume_and_check<F: Format>(dir: &Path, mut writer: F::Writer, kept: &[OwnedRecord]) {
    let next = simple(kept.last().map_or(100, |r| r.offset + 1), b"after the crash");
    F::append(&mut writer, &next).unwrap();
    F::close(writer);
    let read = F::read(&std::fs::read(dir.join("crashed.mak")).unwrap(), true).unwrap();
    let mut expected = kept.to_vec();
    expected.push(next);
    assert_eq!(read.records, expected);
    assert!(read.footer.is_some());
}

both!(open_append_keeps_exactly_the_synced_records_whatever_tail_follows, keeps_the_synced_records);
fn keeps_the_synced_records<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = snapshots::<F>(dir.path());
    let full = snaps.after_sync.last().unwrap();
    for (synced, snapshot) in snaps.after_sync.iter().enumerate() {
        for cut in snapshot.len()..=full.len() {
            let (writer, (count, _, truncated, scanned)) = recover::<F>(dir.path(), &crashed::<F>(snapshot, full, cut));
            assert_eq!(count, synced as u64, "sync {synced}, cut {cut}");
            assert_eq!(truncated, (cut - snapshot.len()) as u64);
            assert!(!scanned);
            resume_and_check::<F>(dir.path(), writer, &snaps.records[..synced]);
        }
    }
}

both!(a_torn_progress_block_falls_back_to_scanning_and_keeps_every_complete_frame, scans_a_torn_block);
fn scans_a_torn_block<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = snapshots::<F>(dir.path());
    let full = snaps.after_sync.last().unwrap();
    let frame_ends: Vec<usize> = snaps.after_sync.iter().map(Vec::len).collect();
    let mut torn = full.clone();
    torn[F::PROGRESS_AT as usize + 3] ^= 0x40;
    for cut in frame_ends[0]..=full.len() {
        let complete = frame_ends.iter().filter(|&&end| end <= cut).count() - 1;
        let (writer, (count, _, truncated, scanned)) = recover::<F>(dir.path(), &torn[..cut]);
        assert_eq!(count, complete as u64, "cut {cut}");
        assert!(scanned);
        assert_eq!(truncated, (cut - frame_ends[complete]) as u64);
        resume_and_check::<F>(dir.path(), writer, &snaps.records[..complete]);
    }
}

both!(the_next_sync_rewrites_a_torn_progress_block_even_without_appends, rewrites_a_torn_block);
fn rewrites_a_torn_block<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = snapshots::<F>(dir.path());
    let mut torn = snaps.after_sync.last().unwrap().clone();
    torn[F::PROGRESS_AT as usize] ^= 1;
    assert_eq!(F::summary(&torn).1, None, "a torn block is reported as unknown");
    let (mut writer, _) = recover::<F>(dir.path(), &torn);
    F::sync(&mut writer);
    let bytes = std::fs::read(dir.path().join("crashed.mak")).unwrap();
    let (_, record_count, _, _) = F::summary(&bytes).1.expect("block rewritten");
    assert_eq!(record_count, snaps.records.len() as u64);
}

both!(a_footer_the_progress_block_never_caught_up_with_is_cut_as_a_torn_tail, cuts_an_uncovered_footer);
fn cuts_an_uncovered_footer<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed.mak");
    let records = records();
    F::write_file(&path, &header("t", 0, 10), &records, false, true);
    let sealed = std::fs::read(&path).unwrap();
    // The block of the last sync before sealing: same records, open, footer not covered.
    let mut before_seal = sealed.clone();
    let block = F::PROGRESS_AT as usize..F::PROGRESS_END as usize;
    {
        let path = dir.path().join("unsealed.mak");
        F::write_file(&path, &header("t", 0, 10), &records, false, false);
        before_seal[block.clone()].copy_from_slice(&std::fs::read(&path).unwrap()[block]);
    }
    let (writer, (count, _, truncated, _)) = recover::<F>(dir.path(), &before_seal);
    assert_eq!(count, records.len() as u64);
    assert_eq!(truncated, F::FOOTER_LEN, "the footer");
    resume_and_check::<F>(dir.path(), writer, &records);
}

both!(open_append_refuses_a_sealed_file, refuses_a_sealed_file);
fn refuses_a_sealed_file<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed.mak");
    F::write_file(&path, &header("t", 0, 10), &records(), false, true);
    let err = F::open_append(&path).err().expect("refused");
    assert!(matches!(err, WriteError::Sealed { .. }), "{err:?}");
}

both!(open_append_reports_a_corrupt_frame_before_the_write_position_and_leaves_the_file, reports_a_corrupt_frame);
fn reports_a_corrupt_frame<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = snapshots::<F>(dir.path());
    let mut bytes = snaps.after_sync.last().unwrap().clone();
    let second_frame = snaps.after_sync[1].len();
    bytes[second_frame + 10] ^= 0xff;
    let path = dir.path().join("corrupt.mak");
    std::fs::write(&path, &bytes).unwrap();
    let err = F::open_append(&path).err().expect("refused");
    assert!(matches!(err, WriteError::Corrupt { position, .. } if position == second_frame as u64), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

both!(dropping_a_writer_loses_only_unsynced_records, drop_loses_only_unsynced);
fn drop_loses_only_unsynced<F: Format>() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let records = records();
    let mut writer = F::create(&path, &header("t", 0, 10));
    F::append(&mut writer, &records[0]).unwrap();
    F::sync(&mut writer);
    F::append(&mut writer, &records[1]).unwrap();
    drop(writer);
    let (writer, (count, last, _, _)) = F::open_append(&path).unwrap();
    assert_eq!((count, last), (1, Some(10)));
    F::suspend(writer);
    let (_, (again, _, _, _)) = F::open_append(&path).unwrap();
    assert_eq!(again, 1, "suspend leaves the file open and resumable");
}

/// A crash after `synced` of `records` were synced and the rest appended, with `garbage` after the
/// data and maybe a torn progress block: recovery keeps exactly the synced records.
fn recovers_the_last_sync<F: Format>(records: &[OwnedRecord], synced: usize, garbage: &[u8], torn_block: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.mak");
    let synced = synced.min(records.len());
    let mut writer = F::create(&path, &header("t", 0, 0));
    for record in &records[..synced] {
        F::append(&mut writer, record).unwrap();
    }
    F::sync(&mut writer);
    for record in &records[synced..] {
        F::append(&mut writer, record).unwrap();
    }
    drop(writer);
    let mut bytes = std::fs::read(&path).unwrap();
    let synced_len = bytes.len() as u64;
    bytes.extend_from_slice(garbage);
    if torn_block {
        bytes[F::PROGRESS_AT as usize + 40] ^= 0x10;
    }
    let (writer, (count, _, truncated, scanned)) = recover::<F>(dir.path(), &bytes);
    assert_eq!(count, synced as u64);
    assert_eq!(scanned, torn_block);
    assert_eq!(truncated, garbage.len() as u64);
    assert_eq!(F::len(&writer), synced_len);
    resume_and_check::<F>(dir.path(), writer, &records[..synced]);
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
        recovers_the_last_sync::<V2>(&records, synced, &garbage, torn_block);
        recovers_the_last_sync::<V3>(&records, synced, &garbage, torn_block);
    }
}
