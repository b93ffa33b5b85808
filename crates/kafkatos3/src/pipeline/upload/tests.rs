use std::sync::Arc;

use object_store::ObjectStoreExt;

use super::*;
use crate::archive::fence::Upload;
use crate::archive::testing::{memory_archive, put_claimed, FaultyStore, Op};
use crate::names::TopicPartition;
use crate::pipeline::resync::{channel, ResyncInbox};
use crate::pipeline::testing::tos3_file;
use crate::pipeline::wake::Wake;

struct Fixture {
    _dir: tempfile::TempDir,
    work: WorkDir,
    uploader: Arc<Uploader>,
    inbox: ResyncInbox,
}

fn fixture(archive: Archive) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let ledger = Arc::new(Ledger::new(work.clone()));
    let (requests, inbox) = channel(ledger.clone());
    let wake = Arc::new(Notify::new());
    let uploader = Arc::new(Uploader {
        settings: UploadSettings {
            topics: crate::config::topics::TopicSet::parse("t").unwrap(),
            workers: 1,
            check_interval: Duration::from_secs(60),
            limits: PutLimits { multipart_threshold: u64::MAX, part_bytes: 5 << 20 },
        },
        work: work.clone(),
        archive,
        ledger,
        legacy: Arc::new(Legacy::load(&work).unwrap()),
        backlog: Arc::default(),
        resyncs: requests,
        wake: wake.clone(),
        stop: Arc::new(StageStop::new(Arc::new(Wake::default()), wake)),
        shutdown: Arc::default(),
    });
    Fixture { _dir: dir, work, uploader, inbox }
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// A file in tos3/ the ledger tracks as the partition's next upload.
fn waiting_file(f: &Fixture, start: i64, end: i64) -> SealedFile {
    tos3_file(&f.work, &tp(), start, end);
    let file = f.work.list_sealed_for(&tp()).unwrap().into_iter().find(|s| s.name.start == start).unwrap();
    f.uploader.ledger.adopt(&tp(), std::slice::from_ref(&file.name));
    file
}

#[tokio::test]
async fn two_uploads_racing_for_one_offset_have_one_winner_and_the_loser_deletes_its_object() {
    for round in 0..5 {
        let archive = memory_archive();
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let (short, long) = (tos3_file(&work, &tp(), 0, 9), tos3_file(&work, &tp(), 0, 14));
        let name = |end| SealedName { tp: tp(), start: 0, end, date: "261206".into() };
        let (short_name, long_name) = (name(9), name(14));
        let limits = PutLimits { multipart_threshold: u64::MAX, part_bytes: 5 << 20 };
        let upload = |name, path| Upload { archive: &archive, name, path, suffix: ".mak.gz", limits };
        let (a, b) = (upload(&short_name, &short), upload(&long_name, &long));
        let (first, second) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (x, y) = tokio::join!(first.store(), second.store());
        let outcomes = [x.unwrap(), y.unwrap()];
        let winners = outcomes.iter().filter(|o| matches!(o, Stored::Created(_))).count();
        assert_eq!(winners, 1, "round {round}: {outcomes:?}");
        let claim = archive.claim_at(&tp(), 0).await.unwrap().unwrap();
        let Some(Stored::Conflict(seen)) = outcomes.iter().find(|o| matches!(o, Stored::Conflict(_))) else {
            panic!("round {round}: the other gives way: {outcomes:?}");
        };
        assert_eq!(seen, &claim, "the loser saw the winner's claim");
        let loser = if claim.last == 9 { &b } else { &a };
        assert!(archive.store().head(&loser.object_key()).await.is_err(), "the loser's object is gone");
        let winner = if claim.last == 9 { &a } else { &b };
        assert!(archive.store().head(&winner.object_key()).await.is_ok());
        assert_eq!(winner.store().await.unwrap(), Stored::AlreadyThere, "a retry of the winner counts as done");
    }
}

#[tokio::test]
async fn a_confirmed_upload_advances_the_marker_before_the_local_file_goes() {
    let f = fixture(memory_archive());
    let file = waiting_file(&f, 0, 9);
    f.uploader.upload_and_release(&file, false).await.unwrap();
    assert_eq!(f.uploader.ledger.read_marker(&tp()), Some(9));
    assert!(!file.path.exists());
    assert_eq!(f.uploader.archive.claim_at(&tp(), 0).await.unwrap().unwrap().last, 9);
}

#[tokio::test]
async fn losing_the_claim_of_an_owned_partition_holds_its_uploads_and_asks_its_consumer_to_resync() {
    let f = fixture(memory_archive());
    put_claimed(&f.uploader.archive, &tp(), 0, 4).await;
    let file = waiting_file(&f, 0, 9);
    f.uploader.upload_and_release(&file, false).await.unwrap();
    assert!(file.path.exists(), "the consumer drops it when it resyncs");
    assert!(!f.uploader.ledger.awaits_upload(&file.name), "held until resynced");
    assert_eq!(f.inbox.take(|_| true), vec![(tp(), Resync { drop_from: 0, resume_at: None })]);
    assert_eq!(f.uploader.ledger.read_marker(&tp()), None, "nothing of ours was archived");
    assert_eq!(f.uploader.archive.claim_at(&tp(), 0).await.unwrap().unwrap().last, 4, "their claim stays");
}

#[tokio::test]
async fn losing_the_claim_of_a_partition_owned_elsewhere_deletes_the_local_file() {
    let f = fixture(memory_archive());
    put_claimed(&f.uploader.archive, &tp(), 0, 4).await;
    let file = waiting_file(&f, 0, 9);
    f.uploader.backlog.add(&tp(), std::fs::metadata(&file.path).unwrap().len());
    f.uploader.ledger.release(&tp());
    let theirs = f.uploader.archive.claim_at(&tp(), 0).await.unwrap().unwrap();
    f.uploader.give_way(&file, &theirs).unwrap();
    assert!(!file.path.exists(), "its records are archived or read again by the owner");
    assert_eq!(f.uploader.backlog.bytes(), 0);
    assert!(f.inbox.take(|_| true).is_empty());
}

#[tokio::test]
async fn a_store_refusing_the_claim_keeps_the_file_and_names_the_claim() {
    let faulty = FaultyStore::new(Arc::new(object_store::memory::InMemory::new()));
    faulty.fail(Op::Put, ".claim");
    let f = fixture(Archive::new(faulty.clone(), "s3://bucket", "p"));
    let file = waiting_file(&f, 0, 9);
    let error = f.uploader.upload_and_release(&file, false).await.unwrap_err();
    assert!(error.to_string().contains("s3://bucket/p/t/0/t-0_00000000000000000000.claim"), "{error}");
    assert!(file.path.exists() && f.uploader.ledger.awaits_upload(&file.name), "kept for the retry");
    faulty.heal();
    f.uploader.upload_and_release(&file, false).await.unwrap();
    assert!(!file.path.exists());
}

#[tokio::test]
async fn a_partition_started_without_knowing_its_archive_resyncs_to_where_it_ends() {
    let f = fixture(memory_archive());
    put_claimed(&f.uploader.archive, &tp(), 0, 9).await;
    put_claimed(&f.uploader.archive, &tp(), 10, 19).await;
    let file = waiting_file(&f, 0, 4);
    f.uploader.ledger.set_base_unconfirmed(&tp());
    f.uploader.upload_and_release(&file, false).await.unwrap();
    assert_eq!(f.inbox.take(|_| true), vec![(tp(), Resync { drop_from: 0, resume_at: Some(20) })]);
    assert_eq!(f.uploader.archive.claim_at(&tp(), 0).await.unwrap().unwrap().last, 9, "nothing uploaded");
    assert!(f.uploader.ledger.base_unconfirmed(&tp()), "confirmed only once resynced");
}
