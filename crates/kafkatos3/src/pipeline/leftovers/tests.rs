use crate::archive::testing::{memory_archive, put_claimed, FaultyStore, Op};
use crate::archive::Archive;
use crate::pipeline::testing::tos3_file;
use crate::pipeline::wake::Wake;

use super::*;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

struct Fixture {
    _dir: tempfile::TempDir,
    /// Runs the leftovers' archive requests (the sweep is a plain thread).
    _runtime: tokio::runtime::Runtime,
    stage: Leftovers,
}

fn fixture(archive: Archive) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let stage = Leftovers {
        timeout: Duration::ZERO,
        compress: CompressSettings {
            compression: mak::codec::Compression::new(mak::codec::Codec::Gzip, None).unwrap(),
            encryption: None,
            workers: 1,
            nice_level: 0,
            check_interval: Duration::from_secs(60),
        },
        limits: PutLimits { multipart_threshold: u64::MAX, part_bytes: 5 << 20 },
        work: work.clone(),
        archive: ArchiveAccess::new(archive, runtime.handle().clone()),
        ledger: Arc::new(Ledger::new(work.clone())),
        legacy: Arc::new(Legacy::load(&work).unwrap()),
        backlog: Arc::default(),
        locks: Arc::default(),
        stop: Arc::new(StageStop::new(Arc::new(Wake::default()), Arc::new(tokio::sync::Notify::new()))),
    };
    Fixture { _dir: dir, _runtime: runtime, stage }
}

fn starts_left(stage: &Leftovers) -> Vec<i64> {
    stage.work.list_sealed_for(&tp()).unwrap().iter().map(|f| f.name.start).collect()
}

fn claimed_end(f: &Fixture, start: i64) -> Option<i64> {
    let archive = &f.stage.archive;
    archive.block_on(Duration::from_secs(5), archive.archive.claim_at(&tp(), start)).unwrap().unwrap().map(|c| c.last)
}

#[test]
fn leftovers_continuing_this_disks_marker_are_uploaded_and_the_others_deleted() {
    let f = fixture(memory_archive());
    f.stage.ledger.write_marker(&tp(), 9).unwrap();
    for (start, end) in [(10, 19), (20, 29), (35, 40)] {
        tos3_file(&f.stage.work, &tp(), start, end);
    }
    f.stage.sweep(&mut HashMap::new());
    assert_eq!((claimed_end(&f, 10), claimed_end(&f, 20)), (Some(19), Some(29)));
    assert_eq!(claimed_end(&f, 35), None, "35-40 does not continue 29: its records are the owner's to read");
    assert_eq!(f.stage.ledger.read_marker(&tp()), Some(29));
    assert!(starts_left(&f.stage).is_empty());
}

#[test]
fn a_leftover_whose_offsets_the_owner_archived_goes_with_every_later_file() {
    let f = fixture(memory_archive());
    let archive = &f.stage.archive;
    archive.block_on(Duration::from_secs(5), put_claimed(&archive.archive, &tp(), 10, 14)).unwrap();
    f.stage.ledger.write_marker(&tp(), 9).unwrap();
    for (start, end) in [(10, 19), (20, 29)] {
        tos3_file(&f.stage.work, &tp(), start, end);
    }
    f.stage.sweep(&mut HashMap::new());
    assert_eq!(claimed_end(&f, 10), Some(14), "the owner's claim stays");
    assert_eq!(claimed_end(&f, 20), None, "20-29 no longer continues the marker");
    assert_eq!(f.stage.ledger.read_marker(&tp()), Some(9));
    assert!(starts_left(&f.stage).is_empty());
}

#[test]
fn a_leftover_stays_while_the_archive_cannot_be_reached_and_goes_up_once_it_can() {
    let faulty = FaultyStore::new(Arc::new(object_store::memory::InMemory::new()));
    let f = fixture(Archive::new(faulty.clone(), "s3://bucket", "p"));
    f.stage.ledger.write_marker(&tp(), 9).unwrap();
    tos3_file(&f.stage.work, &tp(), 10, 19);
    faulty.fail(Op::Put, "t/0/");
    f.stage.sweep(&mut HashMap::new());
    assert_eq!(starts_left(&f.stage), vec![10], "kept: it may be the only copy");
    assert_eq!(f.stage.ledger.read_marker(&tp()), Some(9));
    faulty.heal();
    f.stage.sweep(&mut HashMap::new());
    assert!(starts_left(&f.stage).is_empty());
    assert_eq!(f.stage.ledger.read_marker(&tp()), Some(19));
}

#[test]
fn files_of_an_owned_partition_are_not_leftovers() {
    let f = fixture(memory_archive());
    tos3_file(&f.stage.work, &tp(), 0, 9);
    f.stage.ledger.adopt(&tp(), &[]);
    let mut unowned_since = HashMap::new();
    f.stage.sweep(&mut unowned_since);
    assert_eq!(starts_left(&f.stage), vec![0]);
    assert!(unowned_since.is_empty());
}

#[test]
fn a_partition_is_resolved_only_once_it_has_been_unowned_for_the_timeout() {
    let mut f = fixture(memory_archive());
    f.stage.timeout = Duration::from_secs(3600);
    tos3_file(&f.stage.work, &tp(), 0, 9);
    let mut unowned_since = HashMap::new();
    f.stage.sweep(&mut unowned_since);
    assert_eq!(starts_left(&f.stage), vec![0], "seen unowned just now");
    assert!(unowned_since.contains_key(&tp()));
}
