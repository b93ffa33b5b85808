use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};

use super::checkpoint::Checkpoint;
use super::*;
use crate::archive::testing::{
    memory_archive, put_claim, put_claimed, put_claimed_made, put_unclaimed, FaultyStore, Made, Op,
};
use crate::names::TopicPartition;
use crate::tools::progress::Progress;
use crate::tools::selection::{Cut, SelectionArgs};
use partition::Shared;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("orders".to_string(), partition)
}

fn options(select: SelectionArgs) -> Options<'static> {
    Options {
        select: select.select().unwrap(),
        values: ValueFormat::Raw,
        decryption: None,
        parallel: 2,
        follow: None,
        progress_every: None,
        metrics: None,
    }
}

/// An empty destination in memory, `memory://lake/<prefix>`, and its store.
fn lake(prefix: &str) -> (Arc<InMemory>, Destination) {
    let store = Arc::new(InMemory::new());
    (store.clone(), Destination::in_store(store, "memory://lake", prefix))
}

fn run(archive: &Archive, destination: &Destination, options: &Options<'_>, rt: &tokio::runtime::Runtime) -> Report {
    export(archive, destination, options, rt, &AtomicBool::new(false)).unwrap()
}

/// Every Parquet file in `store`: its key, and the (partition, offset) of each row.
fn exported(store: &dyn ObjectStore, rt: &tokio::runtime::Runtime) -> Vec<(String, Vec<(i32, i64)>)> {
    let listed: Vec<_> = rt.block_on(store.list(None).try_collect::<Vec<_>>()).unwrap();
    let mut files = Vec::new();
    for meta in listed.into_iter().filter(|m| m.location.as_ref().ends_with(".parquet")) {
        let bytes = rt.block_on(async { store.get(&meta.location).await.unwrap().bytes().await.unwrap() });
        let mut rows = Vec::new();
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap() {
            let batch = batch.unwrap();
            let partitions = batch.column_by_name("partition").unwrap().as_primitive::<arrow_array::types::Int32Type>();
            let offsets = batch.column_by_name("offset").unwrap().as_primitive::<Int64Type>();
            rows.extend(partitions.values().iter().copied().zip(offsets.values().iter().copied()));
        }
        files.push((meta.location.to_string(), rows));
    }
    files.sort();
    files
}

/// Every exported (partition, offset), sorted, duplicates kept.
fn offsets(store: &dyn ObjectStore, rt: &tokio::runtime::Runtime) -> Vec<(i32, i64)> {
    let mut all: Vec<(i32, i64)> = exported(store, rt).into_iter().flat_map(|(_, rows)| rows).collect();
    all.sort_unstable();
    all
}

fn each_once(partitions: &[(i32, std::ops::RangeInclusive<i64>)]) -> Vec<(i32, i64)> {
    partitions.iter().flat_map(|(p, range)| range.clone().map(move |o| (*p, o))).collect()
}

#[test]
fn every_archived_record_is_exported_once_into_hourly_files_and_a_rerun_adds_nothing() {
    let rt = runtime();
    let archive = memory_archive();
    // Record o is stamped o seconds: offsets 3590.. cross from hour 0 into hour 1.
    rt.block_on(async {
        put_claimed(&archive, &tp(0), 3580, 3599).await;
        put_claimed(&archive, &tp(0), 3600, 3609).await;
        put_claimed(&archive, &tp(1), 0, 9).await;
    });
    let (store, destination) = lake("kafka");
    let report = run(&archive, &destination, &options(SelectionArgs::default()), &rt);
    assert_eq!((report.records, report.files_written, report.files_found), (40, 3, 0));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let files = exported(store.as_ref(), &rt);
    let keys: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "kafka/topic=orders/date=1970-01-01/hour=00/00000-00000000000000003580-00000000000000003599.parquet",
            "kafka/topic=orders/date=1970-01-01/hour=00/00001-00000000000000000000-00000000000000000009.parquet",
            "kafka/topic=orders/date=1970-01-01/hour=01/00000-00000000000000003600-00000000000000003609.parquet",
        ]
    );
    assert_eq!(offsets(store.as_ref(), &rt), each_once(&[(0, 3580..=3609), (1, 0..=9)]));
    let again = run(&archive, &destination, &options(SelectionArgs::default()), &rt);
    assert_eq!((again.records, again.files_written, again.partitions["orders:0"].objects_skipped), (0, 0, 2));
    assert_eq!(again.partitions["orders:0"].exported, [(3580, 3609)]);
}

#[test]
fn a_run_killed_between_its_files_is_finished_by_the_next_whatever_its_selection() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(async {
        // One object across two hours: two files, the second one refused below.
        put_claimed(&archive, &tp(0), 3590, 3609).await;
        put_claimed(&archive, &tp(0), 3610, 3619).await;
    });
    let inner = Arc::new(InMemory::new());
    let faulty = FaultyStore::new(inner.clone());
    faulty.fail(Op::Put, "hour=01/00000-00000000000000003600");
    let destination = Destination::in_store(faulty.clone(), "memory://lake", "");
    let report = run(&archive, &destination, &options(SelectionArgs::default()), &rt);
    assert!(report.failed["orders:0"].contains("hour=01"), "{:?}", report.failed);
    assert_eq!(offsets(inner.as_ref(), &rt), each_once(&[(0, 3590..=3599)]), "the first file is there");
    let key = object_store::path::Path::from(Checkpoint::key(&tp(0)));
    let checkpoint: Checkpoint =
        serde_json::from_slice(&rt.block_on(async { inner.get(&key).await.unwrap().bytes().await.unwrap() })).unwrap();
    assert_eq!(checkpoint.pending.as_ref().map(|p| p.ranges.clone()), Some(vec![(3590, 3609)]));
    faulty.heal();
    // The re-run selects from offset 3600 only: the pending object is still finished as it was
    // begun, and nothing is written twice.
    let select = SelectionArgs { from_offset: vec!["3600".into()], ..SelectionArgs::default() };
    let report = run(&archive, &destination, &options(select), &rt);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.partitions["orders:0"].files_found, 1);
    assert_eq!(offsets(inner.as_ref(), &rt), each_once(&[(0, 3590..=3619)]));
}

#[test]
fn selections_that_overlap_export_each_record_once_and_consecutive_time_windows_tile() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(async {
        put_claimed(&archive, &tp(0), 0, 49).await;
        put_claimed(&archive, &tp(0), 50, 99).await;
    });
    let (store, destination) = lake("");
    let window = |from: i64, to: i64| SelectionArgs {
        from_time: Some(from * 1000),
        to_time: Some(to * 1000),
        ..SelectionArgs::default()
    };
    assert_eq!(run(&archive, &destination, &options(window(10, 30)), &rt).records, 20);
    assert_eq!(run(&archive, &destination, &options(window(30, 60)), &rt).records, 30);
    // Overlapping the windows: only what they left out.
    let offsets_20_to_80 =
        SelectionArgs { from_offset: vec!["20".into()], to_offset: vec!["80".into()], ..SelectionArgs::default() };
    assert_eq!(run(&archive, &destination, &options(offsets_20_to_80), &rt).records, 21);
    assert_eq!(run(&archive, &destination, &options(SelectionArgs::default()), &rt).records, 29);
    assert_eq!(offsets(store.as_ref(), &rt), each_once(&[(0, 0..=99)]));
}

#[test]
fn a_time_windows_rerun_reads_only_what_it_has_not_and_a_new_object_is_picked_up() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(put_claimed(&archive, &tp(0), 0, 49));
    let (store, destination) = lake("");
    let from_20s = SelectionArgs { from_time: Some(20_000), ..SelectionArgs::default() };
    let first = run(&archive, &destination, &options(from_20s.clone()), &rt);
    assert_eq!(first.records, 30);
    rt.block_on(put_claimed(&archive, &tp(0), 50, 59));
    let second = run(&archive, &destination, &options(from_20s), &rt);
    let p = &second.partitions["orders:0"];
    assert_eq!((second.records, p.objects_read, p.objects_skipped), (10, 1, 1));
    assert_eq!(offsets(store.as_ref(), &rt), each_once(&[(0, 20..=59)]));
}

#[test]
fn a_destination_keeps_one_value_format_and_one_archive() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(put_claimed(&archive, &tp(0), 0, 9));
    let (_, destination) = lake("x");
    run(&archive, &destination, &options(SelectionArgs::default()), &rt);
    let mut json = options(SelectionArgs::default());
    json.values = ValueFormat::Json;
    let refused = export(&archive, &destination, &json, &rt, &AtomicBool::new(false)).unwrap_err().to_string();
    assert!(refused.contains("memory://lake/x holds an export with --value-format raw, not json"), "{refused}");
    let other = Archive::new(Arc::new(InMemory::new()), "memory://other", "p");
    let refused = export(&other, &destination, &options(SelectionArgs::default()), &rt, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("with archive memory://test/p, not memory://other/p"), "{refused}");
}

#[test]
fn a_destination_inside_the_archive_is_refused() {
    let rt = runtime();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let archive = Archive::new(store.clone(), "memory://test", "p");
    let inside = Destination::in_store(store, "memory://test", "p/lake");
    let refused = export(&archive, &inside, &options(SelectionArgs::default()), &rt, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("--to memory://test/p/lake is inside the archive memory://test/p"), "{refused}");
}

#[test]
fn a_stop_before_the_first_object_writes_nothing_and_says_so() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(put_claimed(&archive, &tp(0), 0, 9));
    let (store, destination) = lake("");
    let report =
        export(&archive, &destination, &options(SelectionArgs::default()), &rt, &AtomicBool::new(true)).unwrap();
    assert!(report.interrupted && report.records == 0);
    assert!(offsets(store.as_ref(), &rt).is_empty());
    assert!(report.render().contains("interrupted: run the same command again to continue"));
}

#[test]
fn version_1_objects_export_with_null_timestamps_and_no_headers_under_hives_null_partition() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(put_claimed_made(&archive, &tp(0), 0, 4, Made { version: mak::Version::V1, ..Made::default() }));
    let (store, destination) = lake("");
    assert_eq!(run(&archive, &destination, &options(SelectionArgs::default()), &rt).records, 5);
    let files = exported(store.as_ref(), &rt);
    assert_eq!(files.len(), 1);
    let (key, rows) = &files[0];
    assert_eq!(
        key,
        "topic=orders/date=__HIVE_DEFAULT_PARTITION__/hour=__HIVE_DEFAULT_PARTITION__/00000-00000000000000000000-00000000000000000004.parquet"
    );
    assert_eq!(rows, &each_once(&[(0, 0..=4)]));
    let bytes = rt.block_on(async { store.get(&key.as_str().into()).await.unwrap().bytes().await.unwrap() });
    let batch = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap().next().unwrap().unwrap();
    assert_eq!(batch.column_by_name("timestamp").unwrap().null_count(), 5);
    assert_eq!(batch.column_by_name("timestamp_type").unwrap().null_count(), 5);
    let headers = batch.column_by_name("headers").unwrap().as_list::<i32>();
    assert!((0..5).all(|i| headers.value_length(i) == 0), "no headers");
}

#[test]
fn a_second_pass_reads_only_the_claims_of_what_the_first_did_not_settle() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(async {
        put_claimed(&archive, &tp(0), 0, 9).await;
        put_claimed(&archive, &tp(0), 10, 19).await;
        // 20..=29 is a gap (its claim comes later), then 30..=39.
        put_claimed(&archive, &tp(0), 30, 39).await;
    });
    let (store, destination) = lake("");
    let shared_progress = Progress::new("export", "objects exported");
    let stop = AtomicBool::new(false);
    let shared = Shared {
        archive: &archive,
        decryption: None,
        runtime: rt.handle(),
        destination: &destination,
        values: ValueFormat::Raw,
        stop: &stop,
        progress: &shared_progress,
    };
    let catalog = |below: Option<i64>| {
        let known = below.map(|b| [(tp(0), b)].into()).unwrap_or_default();
        let catalog = rt.block_on(Select::default().catalog(&archive, Headers::Skip, &known)).unwrap();
        catalog.partitions.into_values().next().unwrap()
    };
    let first = partition::export_partition(&shared, &tp(0), &catalog(None), Cut::default(), None).unwrap();
    assert_eq!((first.records, first.known_below), (30, Some(20)), "settled up to the gap");
    rt.block_on(put_claimed(&archive, &tp(0), 20, 29));
    let second = catalog(first.known_below);
    assert_eq!(second.objects.iter().map(|o| o.name.start).collect::<Vec<_>>(), [20, 30]);
    let outcome = partition::export_partition(&shared, &tp(0), &second, Cut::default(), first.known_below).unwrap();
    assert_eq!((outcome.records, outcome.objects_skipped, outcome.known_below), (10, 1, Some(40)));
    assert_eq!(offsets(store.as_ref(), &rt), each_once(&[(0, 0..=39)]));
}

/// Passes of `--follow` over `archive`, each as the follow loop runs it: the records each exported.
fn passes(
    archive: &Archive,
    destination: &Destination,
    select: SelectionArgs,
    known: &mut BTreeMap<TopicPartition, i64>,
    rt: &tokio::runtime::Runtime,
) -> u64 {
    let mut report = Report::default();
    pass(archive, destination, &options(select), rt, &AtomicBool::new(false), known, &mut report).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    report.records
}

#[test]
fn a_followed_time_window_keeps_reading_objects_stamped_before_it_once_it_has_opened() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(put_claimed(&archive, &tp(0), 0, 9));
    let (store, destination) = lake("");
    let from_5s = SelectionArgs { from_time: Some(5_000), ..SelectionArgs::default() };
    let mut known = BTreeMap::new();
    assert_eq!(passes(&archive, &destination, from_5s.clone(), &mut known, &rt), 5, "offsets 5-9");
    // A producer with a clock behind: stamped before the window, but after the record that
    // opened it, so inside the cut.
    let early = Made { stamp: |offset| offset, ..Made::default() };
    rt.block_on(put_claimed_made(&archive, &tp(0), 10, 19, early));
    assert_eq!(passes(&archive, &destination, from_5s, &mut known, &rt), 10);
    assert_eq!(offsets(store.as_ref(), &rt), each_once(&[(0, 5..=19)]));
}

#[test]
fn an_object_whose_claim_comes_after_a_later_ones_is_still_exported_by_the_next_pass() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(async {
        put_unclaimed(&archive, &tp(0), 0, 9, Made::default()).await;
        put_claimed(&archive, &tp(0), 10, 19).await;
    });
    let (store, destination) = lake("");
    let mut known = BTreeMap::new();
    assert_eq!(passes(&archive, &destination, SelectionArgs::default(), &mut known, &rt), 10);
    assert_eq!(known.get(&tp(0)), Some(&0), "nothing settled below the claimless object");
    rt.block_on(put_claim(&archive, &tp(0), 0, 9));
    assert_eq!(passes(&archive, &destination, SelectionArgs::default(), &mut known, &rt), 10);
    assert_eq!(known.get(&tp(0)), Some(&20));
    assert_eq!(offsets(store.as_ref(), &rt), each_once(&[(0, 0..=19)]));
}

#[test]
fn records_stamped_across_many_hours_keep_the_builders_within_one_row_groups_bytes() {
    let mut run = layout::RunExport::new("t", 0, ValueFormat::Raw, "t/0/x");
    let value = vec![b'v'; 1024 * 1024];
    // 100 MiB of records, each in an hour of its own: the builders never hold all of it.
    for offset in 0..100 {
        let record = mak::v2::Record {
            offset,
            timestamp: offset * 3_600_000,
            timestamp_type: mak::v2::TimestampType::CreateTime,
            key: None,
            value: Some(&value),
            headers: mak::v2::Headers::EMPTY,
        };
        run.push(&record).unwrap();
        assert!(run.buffered() <= parquet::ROW_GROUP_BYTES + value.len() + 1024, "{}", run.buffered());
    }
    assert_eq!(run.finish().unwrap().len(), 100);
}

#[test]
fn a_damaged_file_where_a_killed_run_wrote_stops_the_partition_naming_it() {
    let rt = runtime();
    let archive = memory_archive();
    rt.block_on(put_claimed(&archive, &tp(0), 3590, 3609));
    let inner = Arc::new(InMemory::new());
    let faulty = FaultyStore::new(inner.clone());
    faulty.fail(Op::Put, "hour=01/");
    let destination = Destination::in_store(faulty.clone(), "memory://lake", "");
    run(&archive, &destination, &options(SelectionArgs::default()), &rt);
    faulty.heal();
    // The first file, as a power cut could leave a file that was not synced.
    let first = exported(inner.as_ref(), &rt).remove(0).0;
    rt.block_on(inner.put(&first.as_str().into(), b"PAR1".to_vec().into())).unwrap();
    let report = run(&archive, &destination, &options(SelectionArgs::default()), &rt);
    let failed = &report.failed["orders:0"];
    assert!(failed.contains(&first) && failed.contains("holds 4 bytes where these records make"), "{failed}");
}
