use std::sync::Arc;

use object_store::ObjectStoreExt;

use super::*;
use object_store::path::Path as ObjectPath;

use crate::archive::testing::{memory_archive, object_bytes, put_claimed, FaultyStore, Op};

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("t", partition)
}

/// The answers of `probe`, by partition.
async fn answers(
    archive: &Archive,
    known: &[(TopicPartition, Option<i64>)],
    limit: Duration,
) -> HashMap<TopicPartition, Result<ArchiveEnd, ProbeError>> {
    probe(archive, known, limit).await.into_iter().map(|(tp, _, answer)| (tp, answer)).collect()
}

#[tokio::test]
async fn a_known_offset_resumes_where_the_chain_from_it_ends() {
    let archive = memory_archive();
    for start in [0, 10, 20] {
        put_claimed(&archive, &tp(0), start, start + 9).await;
    }
    // A commit lost after two uploads (10), the marker of the last one (30), nothing after it.
    let known = [(tp(0), Some(10))];
    assert_eq!(answers(&archive, &known, Duration::from_secs(5)).await[&tp(0)].as_ref().unwrap(), &ArchiveEnd::At(30));
    let known = [(tp(0), Some(30))];
    assert_eq!(answers(&archive, &known, Duration::from_secs(5)).await[&tp(0)].as_ref().unwrap(), &ArchiveEnd::At(30));
}

#[tokio::test]
async fn with_nothing_known_the_partitions_folder_is_listed_and_an_empty_one_starts_a_new_archive() {
    let archive = memory_archive();
    put_claimed(&archive, &tp(0), 100, 109).await;
    put_claimed(&archive, &tp(0), 110, 119).await;
    // An original's object, without claim, ends the archive of partition 2.
    let original = ObjectPath::from("p/t/2/t-2_0-49_160811.mak.gz");
    archive.store().put(&original, object_bytes(&tp(2), 0, 49).into()).await.unwrap();
    let known = [(tp(0), None), (tp(1), None), (tp(2), None)];
    let got = answers(&archive, &known, Duration::from_secs(5)).await;
    assert_eq!(got[&tp(0)].as_ref().unwrap(), &ArchiveEnd::At(120));
    assert_eq!(got[&tp(1)].as_ref().unwrap(), &ArchiveEnd::Empty);
    assert_eq!(got[&tp(2)].as_ref().unwrap(), &ArchiveEnd::At(50));
}

#[tokio::test]
async fn a_partition_the_archive_cannot_answer_for_gets_its_own_error_and_the_others_their_answer() {
    let faulty = FaultyStore::new(Arc::new(object_store::memory::InMemory::new()));
    let archive = Archive::new(faulty.clone(), "s3://bucket", "p");
    put_claimed(&archive, &tp(0), 0, 9).await;
    put_claimed(&archive, &tp(1), 0, 9).await;
    faulty.fail(Op::Get, "t/1/");
    faulty.fail(Op::List, "t/2");
    let known = [(tp(0), Some(0)), (tp(1), Some(0)), (tp(2), None)];
    let got = answers(&archive, &known, Duration::from_secs(5)).await;
    assert_eq!(got[&tp(0)].as_ref().unwrap(), &ArchiveEnd::At(10));
    let error = got[&tp(1)].as_ref().unwrap_err().to_string();
    assert!(error.starts_with("s3://bucket/p/t/1/t-1_00000000000000000000.claim: "), "{error}");
    let error = got[&tp(2)].as_ref().unwrap_err().to_string();
    assert!(error.starts_with("listing s3://bucket/p/t/2/: "), "{error}");
}

#[tokio::test]
async fn a_slow_archive_times_out_partition_by_partition() {
    let faulty = FaultyStore::new(Arc::new(object_store::memory::InMemory::new()));
    let archive = Archive::new(faulty.clone(), "s3://bucket", "p");
    put_claimed(&archive, &tp(0), 0, 9).await;
    faulty.delay(Op::Get, "t/1/", Duration::from_secs(5));
    let known = [(tp(0), Some(0)), (tp(1), Some(0))];
    let got = answers(&archive, &known, Duration::from_millis(200)).await;
    assert_eq!(got[&tp(0)].as_ref().unwrap(), &ArchiveEnd::At(10));
    assert!(matches!(got[&tp(1)], Err(ProbeError::Timeout(_))), "{:?}", got[&tp(1)]);
}
