use object_store::ObjectStoreExt;

use super::*;
use crate::archive::testing::{memory_archive, object_bytes, put_claimed};
use crate::archive::ClaimProblem;
use crate::names::SealedName;

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("t", partition)
}

async fn put(archive: &Archive, key: &str, bytes: Vec<u8>) {
    archive.store().put(&ObjectPath::from(key), bytes.into()).await.unwrap();
}

#[test]
fn contiguous_objects_have_no_gaps_or_overlaps() {
    assert_eq!(coverage([(0, 9), (10, 19), (20, 20)].into_iter()), (vec![], vec![]));
}

#[test]
fn holes_and_double_coverage_are_reported_as_offset_ranges() {
    let (gaps, overlaps) = coverage([(0, 9), (15, 19), (18, 30), (25, 26)].into_iter());
    assert_eq!(gaps, vec![(10, 14)]);
    assert_eq!(overlaps, vec![(18, 19), (25, 26)]);
}

#[tokio::test]
async fn the_archive_is_the_claimed_objects_and_the_originals_in_offset_order_per_partition() {
    let archive = memory_archive();
    put_claimed(&archive, &tp(0), 10, 19).await;
    put_claimed(&archive, &tp(0), 0, 9).await;
    put_claimed(&archive, &tp(1), 0, 4).await;
    // The Python original's object: no claim, its name tells its offsets.
    put(&archive, "p/t/1/t-1_5-9_160811.mak.gz", object_bytes(&tp(1), 5, 9)).await;
    // A crash between an object and its claim, and something that is not ours.
    put(&archive, "p/t/0/t-0_00000000000000000020-00000000000000000029.mak.gz", object_bytes(&tp(0), 20, 29)).await;
    put(&archive, "p/t/0/notes.txt", b"hello".to_vec()).await;

    let catalog = archive.catalog(&Selection::default(), Headers::Skip).await.unwrap();
    let ranges = |p: i32| -> Vec<(i64, i64, bool)> {
        catalog.partitions[&tp(p)].objects.iter().map(|o| (o.name.start, o.name.end, o.claim.is_some())).collect()
    };
    assert_eq!(ranges(0), vec![(0, 9, true), (10, 19, true)]);
    assert_eq!(ranges(1), vec![(0, 4, true), (5, 9, false)], "the original's object joins its partition");
    assert!(catalog.partitions.values().all(PartitionCatalog::is_sound));
    let first = &catalog.partitions[&tp(0)].objects[0];
    assert_eq!((first.name.codec, first.name.encrypted), (mak::codec::Codec::Gzip, false));
    assert_eq!(first.size, archive.store().head(&first.key).await.unwrap().size);
    assert_eq!(catalog.unclaimed, vec![ObjectPath::from("p/t/0/t-0_00000000000000000020-00000000000000000029.mak.gz")]);
    assert_eq!(catalog.foreign, vec!["p/t/0/notes.txt".to_string()]);
}

#[tokio::test]
async fn a_missing_object_leaves_a_gap_and_unsound_claims_are_reported_not_trusted() {
    let archive = memory_archive();
    put_claimed(&archive, &tp(0), 0, 9).await;
    let middle = put_claimed(&archive, &tp(0), 10, 19).await;
    put_claimed(&archive, &tp(0), 20, 29).await;
    archive.store().delete(&middle).await.unwrap();
    put(&archive, "p/t/0/t-0_00000000000000000030.claim", b"not json".to_vec()).await;
    let elsewhere = Claim::new(&SealedName { tp: tp(0), start: 41, end: 45, date: "261206".into() }, ".mak.gz");
    put(&archive, "p/t/0/t-0_00000000000000000040.claim", elsewhere.to_bytes()).await;

    let catalog = archive.catalog(&Selection::default(), Headers::Skip).await.unwrap();
    let partition = &catalog.partitions[&tp(0)];
    assert_eq!(partition.gaps, vec![(10, 19)]);
    assert_eq!((partition.missing.len(), partition.missing[0].first, partition.missing[0].last), (1, 10, 19));
    let problems: Vec<(i64, bool, bool)> = partition
        .bad_claims
        .iter()
        .map(|b| {
            let problem = match &b.error {
                ArchiveError::Claim { problem, .. } => problem,
                other => panic!("{other}"),
            };
            (b.start, matches!(problem, ClaimProblem::NotJson(_)), matches!(problem, ClaimProblem::NotItsKey { .. }))
        })
        .collect();
    assert_eq!(problems, vec![(30, true, false), (40, false, true)]);
    assert!(partition.bad_claims[0]
        .error
        .to_string()
        .starts_with("memory://test/p/t/0/t-0_00000000000000000030.claim: not a claim"));
    assert!(!partition.is_sound());
}

#[tokio::test]
async fn a_selection_lists_only_its_partitions_and_keeps_the_objects_holding_its_offsets() {
    let archive = memory_archive();
    for partition in 0..3 {
        for start in [0, 10, 20] {
            put_claimed(&archive, &tp(partition), start, start + 9).await;
        }
    }
    put_claimed(&archive, &TopicPartition::new("u", 1), 0, 9).await;
    let selection = Selection {
        topics: vec!["t".into()],
        partitions: vec![1, 2],
        from_offset: Some(15),
        to_offset: Some(20),
        ..Selection::default()
    };
    let catalog = archive.catalog(&selection, Headers::Skip).await.unwrap();
    assert_eq!(catalog.partitions.keys().cloned().collect::<Vec<_>>(), vec![tp(1), tp(2)]);
    for partition in catalog.partitions.values() {
        let starts: Vec<i64> = partition.objects.iter().map(|o| o.name.start).collect();
        assert_eq!(starts, vec![10, 20], "the objects holding offsets 15 to 20");
    }
    let by_topic = Selection { topics: vec!["u".into()], ..Selection::default() };
    let catalog = archive.catalog(&by_topic, Headers::Skip).await.unwrap();
    assert_eq!(catalog.partitions.keys().cloned().collect::<Vec<_>>(), vec![TopicPartition::new("u", 1)]);
}

#[tokio::test]
async fn what_the_caller_knows_is_neither_read_nor_reported() {
    let archive = memory_archive();
    for start in [0, 10, 20] {
        put_claimed(&archive, &tp(0), start, start + 9).await;
    }
    // A damaged claim below what is known: never read, so never reported.
    let claim = archive.location().claim_key(&tp(0), 0);
    archive.store().put(&claim, b"not a claim".to_vec().into()).await.unwrap();
    let known = Selection { known_below: [(tp(0), 10)].into(), ..Selection::default() };
    let catalog = archive.catalog(&known, Headers::Skip).await.unwrap();
    let partition = &catalog.partitions[&tp(0)];
    let starts: Vec<i64> = partition.objects.iter().map(|o| o.name.start).collect();
    assert_eq!(starts, vec![10, 20]);
    assert!(partition.bad_claims.is_empty() && catalog.unclaimed.is_empty(), "{catalog:?}");
    let all = archive.catalog(&Selection::default(), Headers::Skip).await.unwrap();
    assert_eq!(all.partitions[&tp(0)].bad_claims.len(), 1, "read when not known");
    // An object starting below what is known but reaching past it is kept, its claim read.
    put_claimed(&archive, &tp(0), 5, 14).await;
    let catalog = archive.catalog(&known, Headers::Skip).await.unwrap();
    let starts: Vec<i64> = catalog.partitions[&tp(0)].objects.iter().map(|o| o.name.start).collect();
    assert_eq!(starts, vec![5, 10, 20]);
}

#[tokio::test]
async fn headers_give_each_objects_range_and_a_time_cut_drops_the_objects_after_its_end() {
    let archive = memory_archive();
    // Record o is stamped 1000 * o ms.
    for start in [0, 10, 20, 30] {
        put_claimed(&archive, &tp(0), start, start + 9).await;
    }
    let catalog = archive.catalog(&Selection::default(), Headers::Read { decryption: None }).await.unwrap();
    let HeaderState::Read(header) = &catalog.partitions[&tp(0)].objects[1].header else {
        panic!("{:?}", catalog.partitions[&tp(0)].objects[1].header);
    };
    assert_eq!((header.start, header.end), (10, 19));
    assert_eq!((header.first_timestamp, header.last_timestamp), (Some(10_000), Some(19_000)));
    // The cut ends before the first record at or after 20 s: offset 20, the third object's first.
    let window = Selection { from_ms: Some(5_000), to_ms: Some(20_000), ..Selection::default() };
    let catalog = archive.catalog(&window, Headers::Read { decryption: None }).await.unwrap();
    let starts: Vec<i64> = catalog.partitions[&tp(0)].objects.iter().map(|o| o.name.start).collect();
    assert_eq!(starts, vec![0, 10], "nothing is dropped at the start: timestamps need not increase");
    let unread = archive.catalog(&window, Headers::Skip).await.unwrap();
    assert_eq!(unread.partitions[&tp(0)].objects.len(), 4, "without headers nothing is proven, nothing dropped");
}

#[tokio::test]
async fn a_damaged_object_is_reported_in_its_header_state() {
    let archive = memory_archive();
    let key = put_claimed(&archive, &tp(0), 0, 9).await;
    archive.store().put(&key, b"not gzip at all".to_vec().into()).await.unwrap();
    let catalog = archive.catalog(&Selection::default(), Headers::Read { decryption: None }).await.unwrap();
    let object = &catalog.partitions[&tp(0)].objects[0];
    assert!(
        matches!(&object.header, HeaderState::Damaged(error) if error.name.ends_with(key.as_ref())),
        "{:?}",
        object.header
    );
}

#[tokio::test]
async fn an_encrypted_object_under_a_plain_name_is_damage_not_a_missing_key() {
    use std::io::Write as _;
    let archive = memory_archive();
    let key = put_claimed(&archive, &tp(0), 0, 9).await;
    let spec = mak::crypt::EncryptionSpec {
        recipients: vec!["age15rzxjhtqrh7yjl5kmhfj38m8qtn5luw5ddn662pvwrfkyqt3vupqdjyyp4".into()],
        ..Default::default()
    };
    let encryption = mak::crypt::Encryption::new(&spec).unwrap();
    let compression = mak::codec::Compression::new(mak::codec::Codec::None, None).unwrap();
    let mut writer = mak::layers::archive_writer(Vec::new(), &compression, Some(&encryption)).unwrap();
    writer.write_all(&object_bytes(&tp(0), 0, 9)).unwrap();
    archive.store().put(&key, writer.finish().unwrap().into()).await.unwrap();
    let catalog = archive.catalog(&Selection::default(), Headers::Read { decryption: None }).await.unwrap();
    let object = &catalog.partitions[&tp(0)].objects[0];
    assert!(matches!(&object.header, HeaderState::Damaged(_)), "{:?}", object.header);
}
