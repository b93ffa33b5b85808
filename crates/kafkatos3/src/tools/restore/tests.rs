use super::produce::{OffsetRun, PartitionOutcome};
use super::state::{PartitionState, RestoreState, StateError, StateObject};

#[test]
fn the_state_file_survives_a_reload_and_belongs_to_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restore.json");
    assert_eq!(RestoreState::load(&path, "cmd").unwrap(), None, "no file: a first run");
    let mut state = RestoreState::new("cmd".into());
    let object = StateObject { key: "p/a/0/a-0_0.mak.gz".into(), start: 0, end: 99, bytes: 1234, read: None };
    let partition = PartitionState {
        source: "a:0".into(),
        base: 7,
        last_source_offset: 99,
        objects: vec![object],
        offset_map: vec![],
    };
    state.partitions.insert("b:0".into(), partition);
    state.save(&path).unwrap();

    assert_eq!(RestoreState::load(&path, "cmd").unwrap(), Some(state));
    let other = RestoreState::load(&path, "another").unwrap_err();
    assert!(matches!(other, StateError::OtherCommand { .. }), "{other}");
    assert!(other.to_string().contains("run that command to finish it"), "{other}");
    std::fs::write(&path, "not json").unwrap();
    assert!(RestoreState::load(&path, "cmd").unwrap_err().to_string().contains("not a restore state file"));
}

#[test]
fn the_offset_map_starts_a_run_at_each_hole_in_the_source_offsets() {
    let mut outcome = PartitionOutcome::default();
    // Source offsets 10-12, then 15-16 after a compacted hole; target offsets 100 on.
    for (target, source) in [10, 11, 12, 15, 16].into_iter().enumerate() {
        outcome.map(source, 100 + target as i64);
    }
    let run = |source_first, target_first, count| OffsetRun { source_first, target_first, count };
    assert_eq!(outcome.offset_map, [run(10, 100, 3), run(15, 103, 2)]);
}

#[test]
fn a_committed_offset_lands_on_the_first_restored_record_at_or_after_it() {
    use super::groups::translate_offset;
    let run = |source_first, target_first, count| OffsetRun { source_first, target_first, count };
    // Source offsets 10-12 and 15-16 (a compacted hole at 13-14) restored to 100-104.
    let runs = [run(10, 100, 3), run(15, 103, 2)];
    assert_eq!(translate_offset(&runs, 105, 11), 101, "inside a run");
    assert_eq!(translate_offset(&runs, 105, 13), 103, "in the hole: the next record");
    assert_eq!(translate_offset(&runs, 105, 5), 100, "before the restored records: the first");
    assert_eq!(translate_offset(&runs, 105, 17), 105, "after them: the restored end");
    assert_eq!(translate_offset(&[], 42, 7), 42, "nothing restored: the end");
}

#[test]
fn a_rerun_skips_whole_objects_the_target_holds_but_reads_the_one_with_the_last_record_there() {
    use super::produce::OffsetRun;
    use super::resume::skippable;
    use super::state::{ObjectRead, StateObject};
    let object = |start: i64, end: i64, records: u64, target_first: i64, read: bool| StateObject {
        key: format!("p/t/0/t-0_{start}.mak"),
        start,
        end,
        bytes: 100,
        read: read.then(|| ObjectRead {
            records,
            offset_map: vec![OffsetRun { source_first: start, target_first, count: records }],
            opened: true,
        }),
    };
    let objects = [object(0, 9, 10, 0, true), object(10, 19, 10, 10, true), object(20, 29, 10, 20, true)];
    let skipped = skippable(&objects, 25);
    assert_eq!((skipped.objects, skipped.records, skipped.last_offset), (2, 20, Some(19)));
    assert_eq!(skipped.offset_map, [OffsetRun { source_first: 0, target_first: 0, count: 20 }], "runs merged");
    assert!(skipped.opened);
    assert_eq!(skippable(&objects, 20).objects, 1, "record 19 is read back from the second object");
    assert_eq!(skippable(&objects, 0).objects, 0);
    let unread = [object(0, 9, 10, 0, true), object(10, 19, 10, 10, false), object(20, 29, 10, 20, true)];
    assert_eq!(skippable(&unread, 30).objects, 1, "only leading objects an earlier run noted");
    // An object inside an earlier one (its offsets all read already) adds nothing, and the
    // overlap rule goes on from the highest offset read: 99, not the inner object's 80.
    let mut inner = object(50, 80, 0, 0, true);
    inner.read.as_mut().unwrap().offset_map.clear();
    let nested = [object(0, 99, 100, 0, true), inner, object(90, 150, 51, 100, true)];
    let skipped = skippable(&nested, 120);
    assert_eq!((skipped.objects, skipped.records, skipped.last_offset), (2, 100, Some(99)));
}

#[test]
fn a_rate_limit_is_records_or_bytes_per_second() {
    use super::produce::RateLimit;
    assert_eq!(RateLimit::parse("5000"), Ok(RateLimit::RecordsPerSecond(5000.0)));
    assert_eq!(RateLimit::parse("0.5"), Ok(RateLimit::RecordsPerSecond(0.5)));
    assert_eq!(RateLimit::parse("20MB/s"), Ok(RateLimit::BytesPerSecond(20.0 * 1024.0 * 1024.0)));
    assert_eq!(RateLimit::parse("512KiB/s"), Ok(RateLimit::BytesPerSecond(512.0 * 1024.0)));
    assert_eq!(RateLimit::parse("1gb"), Ok(RateLimit::BytesPerSecond(1024.0 * 1024.0 * 1024.0)));
    assert_eq!(RateLimit::parse("100B/s"), Ok(RateLimit::BytesPerSecond(100.0)));
    for bad in ["", "fast", "20XB/s", "0", "0.001", "5k", "1G/s"] {
        assert!(RateLimit::parse(bad).is_err(), "{bad}");
    }
}
