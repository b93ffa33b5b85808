use mak::v2::{OwnedRecord, TimestampType, NO_HEADERS};

use super::*;
use crate::local::seal::seal_existing;

/// A record without headers or timestamp.
fn plain<'a>(offset: i64, key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> RecordRef<'a> {
    RecordRef { offset, timestamp: -1, timestamp_type: TimestampType::NotAvailable, key, value, headers: NO_HEADERS }
}

/// Records with everything versions 2 and 3 keep: null and empty keys and values, headers with a
/// repeated key and a null value, each timestamp type, binary bytes.
fn varied(first: i64) -> Vec<OwnedRecord> {
    let header = |key: &str, value: Option<&[u8]>| (key.to_string(), value.map(<[u8]>::to_vec));
    let record = |offset, timestamp, timestamp_type, key: Option<&[u8]>, value: Option<&[u8]>, headers| OwnedRecord {
        offset,
        timestamp,
        timestamp_type,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers,
    };
    vec![
        record(first, 1_700_000_000_123, TimestampType::CreateTime, Some(b"k"), Some(b"v"), vec![]),
        record(first + 1, 1_700_000_000_124, TimestampType::CreateTime, None, Some(b""), vec![header("a", None)]),
        record(first + 2, 1_700_000_000_125, TimestampType::LogAppendTime, Some(b""), None, vec![]),
        record(
            first + 3,
            -1,
            TimestampType::NotAvailable,
            Some(&[0x00, 0xff]),
            Some(&[0x80, b'"', b'\n']),
            vec![
                header("trace", Some(b"1")),
                header("trace", Some(b"")),
                header("z", None),
                header("trace", Some(b"\xff")),
            ],
        ),
        record(first + 5, 0, TimestampType::CreateTime, None, None, vec![header("", Some(b"x"))]),
    ]
}

fn append_all(spool: &mut PartitionSpool, records: &[OwnedRecord]) {
    for record in records {
        assert_eq!(spool.append(&record.as_record_ref(), 1.0).unwrap(), Appended::Written);
    }
}

/// Every record of a file of any version, as version 2 records.
fn read_any(path: &std::path::Path) -> (mak::Version, Vec<OwnedRecord>) {
    let mut reader = mak::AnyReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut records = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        records.push(record.to_owned_record());
    }
    (reader.version(), records)
}

fn the_one_sealed_file(work: &WorkDir, tp: &TopicPartition) -> PathBuf {
    let sealed = work.list_sealed_for(tp).unwrap();
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    sealed[0].path.clone()
}

#[test]
fn a_file_is_full_at_its_size_or_its_record_count_whichever_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let mut spool = PartitionSpool::new(&work, TopicPartition::new("t", 0), Some(0), Version::V3);
    assert!(!spool.is_full(1, Some(1)), "an empty file is never full");
    for offset in 0..3 {
        spool.append(&plain(offset, None, Some(b"v")), 1.0).unwrap();
    }
    assert!(!spool.is_full(u64::MAX, None));
    assert!(!spool.is_full(u64::MAX, Some(4)));
    assert!(spool.is_full(u64::MAX, Some(3)));
    assert!(spool.is_full(10, None), "size alone");
}

#[test]
fn version_2_and_3_spools_keep_null_versus_empty_headers_in_order_and_timestamps_and_seal_with_a_footer() {
    for version in [Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 3);
        let mut spool = PartitionSpool::new(&work, tp.clone(), Some(10), version);
        let records = varied(10);
        append_all(&mut spool, &records);
        let (name, size) = spool.seal().unwrap().expect("sealed");
        assert_eq!((name.start, name.end), (10, 15));
        let path = the_one_sealed_file(&work, &tp);
        assert_eq!(size, std::fs::metadata(&path).unwrap().len(), "the size reported includes the footer");

        assert_eq!(read_any(&path), (version, records));
        let mut reader = mak::AnyReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.created_secs(), Some(1.0), "created at now_secs = 1.0");
        let writer = match &reader {
            mak::AnyReader::V2(reader) => reader.header().writer.clone(),
            mak::AnyReader::V3(reader) => reader.header().writer.clone(),
            mak::AnyReader::V1(_) => unreachable!("version {version:?} asked for"),
        };
        assert_eq!(writer.as_deref(), Some(WRITER));
        while reader.next_record().unwrap().is_some() {}
        assert_eq!(reader.sealed_counts(), Some((5, 15)), "{version:?}: sealed with a footer");
    }
}

#[test]
fn version_1_spool_writes_the_originals_format_with_null_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let tp = TopicPartition::new("t", 0);
    let mut spool = PartitionSpool::new(&work, tp.clone(), Some(10), Version::V1);
    let records = varied(10);
    append_all(&mut spool, &records);
    spool.seal().unwrap().expect("sealed");
    let path = the_one_sealed_file(&work, &tp);
    let mut reader = mak::MakReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(reader.header().start_time, 1.0);
    for expected in &records {
        let record = reader.next_record().unwrap().expect("a record");
        assert_eq!(record.offset, expected.offset);
        assert_eq!(record.key, expected.key.as_deref().unwrap_or_default());
        assert_eq!(record.value, expected.value.as_deref().unwrap_or_default());
    }
    assert!(reader.next_record().unwrap().is_none());
}

/// Writes `records` into the partition's in-progress file in `version`, left unsealed as a
/// crash (or an older daemon) would leave it.
fn leave_in_progress(work: &WorkDir, tp: &TopicPartition, version: Version, records: &[OwnedRecord]) {
    let mut spool = PartitionSpool::new(work, tp.clone(), Some(records[0].offset), version);
    append_all(&mut spool, records);
    spool.close().unwrap();
}

#[test]
fn an_in_progress_file_is_resumed_and_sealed_in_its_own_version_and_the_next_file_follows_the_config() {
    for (left, configured) in [(Version::V1, Version::V3), (Version::V2, Version::V3), (Version::V3, Version::V2)] {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 0);
        let records = varied(0);
        leave_in_progress(&work, &tp, left, &records[..2]);
        let (writer, recovered) = AnyWriter::open_append(&work.inprogress_file(&tp)).unwrap();
        assert_eq!((recovered.version, recovered.record_count, recovered.last_offset), (left, 2, Some(1)));
        let mut spool = PartitionSpool::resume(&work, tp.clone(), writer, configured);
        assert_eq!(spool.next_offset(), Some(2));
        append_all(&mut spool, &records[2..]);
        spool.seal().unwrap().expect("sealed");
        let (version, read) = read_any(&the_one_sealed_file(&work, &tp));
        assert_eq!(version, left, "a resumed file keeps its version until sealed");
        assert_eq!(read.len(), records.len());
        if left != Version::V1 {
            assert_eq!(read, records, "a resumed version 2 or 3 file keeps every field");
        }

        let next = plain(100, Some(b"k"), None);
        spool.append(&next, 1.0).unwrap();
        spool.close().unwrap();
        assert_eq!(
            mak::detect_version(&work.inprogress_file(&tp)).unwrap(),
            Some(configured),
            "a new file follows the config"
        );
    }
}

#[test]
fn giving_up_a_partition_leaves_a_version_2_or_3_file_resumable_not_sealed() {
    for version in [Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 0);
        let records = varied(7);
        leave_in_progress(&work, &tp, version, &records);
        assert!(!mak::is_sealed(&work.inprogress_file(&tp)));
        let (_writer, recovered) = AnyWriter::open_append(&work.inprogress_file(&tp)).unwrap();
        assert_eq!((recovered.version, recovered.last_offset), (version, Some(12)));
    }
}

#[test]
fn a_version_2_or_3_in_progress_file_sealed_before_a_crash_is_only_moved_on() {
    for version in [Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 0);
        let records = varied(20);
        let path = work.inprogress_file(&tp);
        let mut spool = PartitionSpool::new(&work, tp.clone(), Some(20), version);
        append_all(&mut spool, &records);
        // The seal's first half: the footer is written, the crash comes before the rename.
        spool.writer.take().unwrap().seal().unwrap();
        assert!(mak::is_sealed(&path));
        let bytes = std::fs::read(&path).unwrap();

        let (name, size) = seal_existing(&work, &tp).unwrap().expect("moved on");
        assert_eq!((name.start, name.end, size), (20, 25, bytes.len() as u64));
        assert!(!path.exists());
        assert_eq!(std::fs::read(the_one_sealed_file(&work, &tp)).unwrap(), bytes, "moved unchanged");
    }
}

#[test]
fn a_sealed_in_progress_file_whose_progress_block_a_crash_tore_is_still_only_moved_on() {
    for version in [Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 0);
        let path = work.inprogress_file(&tp);
        let mut spool = PartitionSpool::new(&work, tp.clone(), Some(20), version);
        append_all(&mut spool, &varied(20));
        spool.writer.take().unwrap().seal().unwrap();
        // The last write of the seal, the progress block saying "sealed", torn.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[mak::v2::PROGRESS_AT as usize + 3] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(!mak::is_sealed(&path), "the progress block no longer says so");

        let (name, _) = seal_existing(&work, &tp).unwrap().expect("moved on");
        assert_eq!((name.start, name.end), (20, 25), "{version:?}: named by its footer");
        assert!(!path.exists());
        assert_eq!(std::fs::read(the_one_sealed_file(&work, &tp)).unwrap(), bytes, "moved unchanged");
    }
}

#[test]
fn seal_existing_seals_a_version_1_file_as_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let tp = TopicPartition::new("t", 0);
    leave_in_progress(&work, &tp, Version::V1, &varied(0));
    let (name, _) = seal_existing(&work, &tp).unwrap().expect("sealed");
    assert_eq!((name.start, name.end), (0, 5));
    assert_eq!(read_any(&the_one_sealed_file(&work, &tp)).0, Version::V1);
}

#[test]
fn an_unreadable_in_progress_file_is_set_aside_and_its_records_fetched_again() {
    for version in [Version::V1, Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 0);
        let mut spool = PartitionSpool::new(&work, tp.clone(), Some(40), version);
        assert_eq!(spool.append(&plain(40, Some(b"k"), Some(b"v")), 1.0).unwrap(), Appended::Written);
        spool.flush().unwrap();
        // The header is destroyed behind the writer's back; the next failure cannot reopen it.
        std::fs::write(work.inprogress_file(&tp), b"MA").unwrap();
        let error =
            SpoolError::Fs { tp: tp.clone(), source: FsError::new("test", dir.path(), std::io::Error::other("x")) };
        let _ = spool.fail(error);
        assert_eq!(spool.take_rewind(), Some(40), "fetch again from the file's start");
        assert!(!work.inprogress_file(&tp).exists());
        let orphaned = dir.path().join("orphaned/t/0");
        assert_eq!(std::fs::read_dir(orphaned).unwrap().count(), 1, "kept, not deleted");
        let again = plain(40, Some(b"k"), Some(b"v"));
        assert_eq!(spool.append(&again, 1.0).unwrap(), Appended::Written, "a fresh file starts");
    }
}

#[test]
fn after_a_failed_write_a_version_2_or_3_file_is_reopened_at_its_last_durable_record() {
    for version in [Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 0);
        let records = varied(0);
        let mut spool = PartitionSpool::new(&work, tp.clone(), Some(0), version);
        append_all(&mut spool, &records[..3]);
        spool.flush().unwrap();
        append_all(&mut spool, &records[3..]);
        let error =
            SpoolError::Fs { tp: tp.clone(), source: FsError::new("test", dir.path(), std::io::Error::other("x")) };
        let _ = spool.fail(error);
        assert_eq!(spool.take_rewind(), Some(3), "{version:?}: unsynced records are fetched again");
        append_all(&mut spool, &records[3..]);
        spool.seal().unwrap().expect("sealed");
        assert_eq!(read_any(&the_one_sealed_file(&work, &tp)), (version, records));
    }
}

#[test]
fn an_idle_partition_holds_no_buffer_after_a_flush_interval_and_keeps_its_records() {
    for version in [Version::V1, Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 0);
        let mut spool = PartitionSpool::new(&work, tp.clone(), Some(0), version);
        assert_eq!(spool.buffer_bytes(), 0, "no file, no buffer");
        spool.set_buffer_capacity(16 * 1024).unwrap();
        spool.append(&plain(0, Some(b"k"), Some(b"v")), 1.0).unwrap();
        // Version 3's open block takes 7/8 of it for keys and values at once, its other columns
        // grow into the rest.
        let budget = 14 * 1024..=16 * 1024;
        assert!(
            budget.contains(&spool.buffer_bytes()),
            "{version:?}: the budget's size, allocated by the first record"
        );
        spool.flush_and_release().unwrap();
        assert_eq!(spool.buffer_bytes(), 0, "{version:?}: released at the flush interval");
        spool.append(&plain(1, None, Some(b"w")), 1.0).unwrap();
        assert!(budget.contains(&spool.buffer_bytes()), "{version:?}: allocated again by the next record");
        spool.set_buffer_capacity(4 * 1024).unwrap();
        assert_eq!(spool.buffer_bytes(), 0, "a smaller budget frees the larger buffer at once");
        spool.seal().unwrap().expect("records to seal");
        let (_, records) = read_any(&the_one_sealed_file(&work, &tp));
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [0, 1], "{version:?}: releasing loses nothing");
    }
}

#[test]
fn an_idle_partition_closes_its_file_at_the_flush_after_its_last_record_and_reopens_it_on_the_next() {
    for version in [Version::V1, Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 0);
        let mut spool = PartitionSpool::new(&work, tp.clone(), Some(0), version);
        spool.append(&plain(0, Some(b"k"), Some(b"v")), 1.0).unwrap();
        assert!(spool.needs_descriptor(), "{version:?}");
        spool.flush_and_release().unwrap();
        assert!(spool.needs_descriptor(), "{version:?}: written to in this interval, kept open");
        spool.flush_and_release().unwrap();
        assert!(!spool.needs_descriptor(), "{version:?}: a whole interval without a record closes it");
        spool.append(&plain(1, None, Some(b"w")), 1.0).unwrap();
        spool.flush_and_release().unwrap();
        assert!(spool.needs_descriptor(), "{version:?}: writing the next record out opened it again");
        spool.flush_and_release().unwrap();
        assert!(!spool.needs_descriptor(), "{version:?}");
        spool.seal().unwrap().expect("records to seal");
        let (_, records) = read_any(&the_one_sealed_file(&work, &tp));
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [0, 1], "{version:?}: closing and reopening loses nothing");
    }
}

#[test]
fn a_resumed_file_is_held_closed_until_its_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let tp = TopicPartition::new("t", 0);
    leave_in_progress(&work, &tp, Version::V3, &varied(0));
    let (writer, _) = mak::AnyWriter::open_append(&work.inprogress_file(&tp)).unwrap();
    let mut spool = PartitionSpool::resume(&work, tp.clone(), writer, Version::V3);
    assert!(!spool.needs_descriptor());
    append_all(&mut spool, &varied(6));
    spool.flush().unwrap();
    assert!(spool.needs_descriptor(), "writing the records out opened it again");
    spool.seal().unwrap().expect("records to seal");
    let (_, records) = read_any(&the_one_sealed_file(&work, &tp));
    assert_eq!(records, [varied(0), varied(6)].concat());
}

#[test]
fn a_snapshot_spool_takes_nothing_at_or_past_its_end_and_knows_when_it_holds_everything_before() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let mut spool = PartitionSpool::new(&work, TopicPartition::new("t", 0), Some(10), Version::V3);
    spool.end_at(13);
    assert!(!spool.reached_end());
    assert_eq!(spool.resume_offset(), Some(10));
    assert_eq!(spool.append(&plain(10, None, Some(b"a")), 1.0).unwrap(), Appended::Written);
    assert_eq!(spool.append(&plain(11, None, Some(b"b")), 1.0).unwrap(), Appended::Written);
    // Offset 12 is a transaction marker, never delivered: the log end reported at 13 says it is passed.
    assert!(!spool.reached_end(), "its own records stop at 11");
    spool.read_to_log_end(13);
    assert!(spool.reached_end(), "read to the log end past the marker");
    assert_eq!(spool.append(&plain(13, None, Some(b"late")), 1.0).unwrap(), Appended::PastEnd);
    assert_eq!(spool.next_offset(), Some(12), "a record past the end is not taken");
    assert_eq!(spool.resume_offset(), Some(12));
    // Records to fetch again: what was read to the log end no longer counts, and a log end
    // reported while they are awaited does not either.
    spool.await_position(11);
    assert_eq!(spool.resume_offset(), Some(11), "a pending rewind is where fetching resumes");
    assert!(!spool.reached_end());
    spool.read_to_log_end(13);
    assert!(!spool.reached_end(), "a log end before the rewind's seek");
    assert_eq!(spool.take_rewind(), Some(11));
    assert_eq!(spool.append(&plain(12, None, Some(b"c")), 1.0).unwrap(), Appended::Written);
    assert!(spool.reached_end(), "written up to the end");
    // A marker at the end, a record past it: the record says the marker is passed.
    let mut marked = PartitionSpool::new(&work, TopicPartition::new("t", 2), Some(10), Version::V3);
    marked.end_at(12);
    assert_eq!(marked.append(&plain(10, None, Some(b"a")), 1.0).unwrap(), Appended::Written);
    assert!(!marked.reached_end());
    assert_eq!(marked.append(&plain(12, None, Some(b"after")), 1.0).unwrap(), Appended::PastEnd);
    assert!(marked.reached_end(), "a record past the end after the marker at 11");
    let mut daemon = PartitionSpool::new(&work, TopicPartition::new("t", 1), Some(0), Version::V3);
    daemon.read_to_log_end(i64::MAX);
    assert!(!daemon.reached_end(), "a daemon's partition has no end");
}
