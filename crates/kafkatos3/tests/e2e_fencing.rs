//! The fence against double archiving, against the real S3 server and broker: conditional
//! creates, the S3 frontier, and whole daemons racing for the same offsets.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kafkatos3::archive::fence::{PutLimits, Stored, Upload, UploadError};
use kafkatos3::archive::Archive;
use kafkatos3::names::{SealedName, TopicPartition};
use mak::codec::{Codec, Compression};
use object_store::ObjectStore;
use support::*;

/// The daemon's own client, under a fresh prefix: conditional puts and conditional copies
/// configured as in production.
fn daemon_archive(env: &TestEnv, label: &str) -> Archive {
    kafkatos3::archive::store::S3Target {
        bucket: &env.bucket,
        access: kafkatos3::archive::store::S3Access {
            endpoint: Some(&env.s3_endpoint),
            region: Some("us-east-1"),
            credentials: Some((&env.access_key, &env.secret_key)),
            options: None,
        },
    }
    .archive(&unique(label))
    .expect("s3 client")
}

/// A sealed file holding offsets `start..=end` of `tp`, compressed with `codec`.
struct Sealed {
    name: SealedName,
    path: PathBuf,
    suffix: String,
}

fn sealed_with(dir: &Path, tp: &TopicPartition, start: i64, end: i64, codec: Codec) -> Sealed {
    let name = SealedName { tp: tp.clone(), start, end, date: "261130".into() };
    let mak = dir.join(format!("{}.{}.mak", name.stem(), codec.name()));
    let header = mak::Header { topic: tp.topic.clone(), partition: tp.partition, start_offset: start, start_time: 1.0 };
    let mut writer = mak::MakWriter::create(&mak, &header).unwrap();
    for offset in start..=end {
        writer.append(offset, Some(b"k"), Some(format!("value {offset}").as_bytes())).unwrap();
    }
    writer.close().unwrap();
    let suffix = format!(".mak{}", codec.suffix());
    let path = dir.join(format!("{}{suffix}.{}", name.stem(), codec.name()));
    let mut encoder = Compression::new(codec, None).unwrap().encoder(std::fs::File::create(&path).unwrap()).unwrap();
    encoder.write_all(&std::fs::read(&mak).unwrap()).unwrap();
    encoder.finish().unwrap();
    Sealed { name, path, suffix }
}

fn sealed_file(dir: &Path, tp: &TopicPartition, start: i64, end: i64) -> Sealed {
    sealed_with(dir, tp, start, end, Codec::Gzip)
}

fn upload<'a>(archive: &'a Archive, file: &'a Sealed, threshold: u64) -> Upload<'a> {
    Upload {
        archive,
        name: &file.name,
        path: &file.path,
        suffix: &file.suffix,
        limits: PutLimits { multipart_threshold: threshold, part_bytes: 5 << 20 },
    }
}

async fn store_as(archive: &Archive, file: &Sealed, multipart_threshold: u64) -> Result<Stored, UploadError> {
    upload(archive, file, multipart_threshold).store().await
}

async fn exists(store: &dyn ObjectStore, key: &object_store::path::Path) -> bool {
    match object_store::ObjectStoreExt::head(store, key).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(error) => panic!("head {key}: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_counts_its_twin_as_done_and_gives_way_to_other_offsets_or_codecs_single_and_multipart() {
    let env = env();
    for (label, threshold) in [("single", u64::MAX), ("multipart", 1)] {
        let dir = tempfile::tempdir().unwrap();
        let archive = daemon_archive(&env, label);
        let (store, at) = (archive.store(), archive.location());
        let tp = TopicPartition::new("t", 0);
        let ours = sealed_file(dir.path(), &tp, 0, 9);
        let Stored::Created(_) = store_as(&archive, &ours, threshold).await.unwrap() else {
            panic!("{label}: first upload creates the object");
        };
        assert_eq!(store_as(&archive, &ours, threshold).await.unwrap(), Stored::AlreadyThere, "{label}");
        let longer = sealed_file(dir.path(), &tp, 0, 14);
        let other_codec = sealed_with(dir.path(), &tp, 0, 9, Codec::Zstd);
        for loser in [&longer, &other_codec] {
            let Stored::Conflict(winner) = store_as(&archive, loser, threshold).await.unwrap() else {
                panic!("{label} {}: the first claim stays", loser.suffix);
            };
            assert_eq!((winner.first, winner.last), (0, 9), "{label}: the winner's claim is reported");
            let key = upload(&archive, loser, threshold).object_key();
            assert!(!exists(store, &key).await, "{label}: the loser deleted its unclaimed {key}");
        }
        let claim = archive.read_claim(&at.claim_key(&tp, 0)).await.unwrap().unwrap();
        assert_eq!((claim.last, claim.object.ends_with(".mak.gz")), (9, true), "{label}: the claim was not replaced");
        assert!(exists(store, &at.object_key(&ours.name, ".mak.gz")).await, "{label}: the claimed object stays");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_object_at_our_claim_key_is_an_error_naming_the_key_and_is_left_alone() {
    let env = env();
    let archive = daemon_archive(&env, "fence-foreign");
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 1);
    let key = archive.location().claim_key(&tp, 0);
    object_store::ObjectStoreExt::put(archive.store(), &key, b"not a claim".to_vec().into()).await.unwrap();
    let error = store_as(&archive, &sealed_file(dir.path(), &tp, 0, 3), u64::MAX).await.unwrap_err();
    assert!(matches!(error, UploadError::Foreign { .. }), "{error}");
    assert!(error.to_string().contains(&format!("s3://{}/{key}", env.bucket)), "{error}");
    let body = object_store::ObjectStoreExt::get(archive.store(), &key).await.unwrap().bytes().await.unwrap();
    assert_eq!(&body[..], b"not a claim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frontier_follows_the_chain_and_a_listing_finds_it_without_a_starting_point() {
    let env = env();
    let archive = daemon_archive(&env, "fence-frontier");
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 2);
    assert_eq!(archive.listed_end(&tp).await.unwrap(), None, "nothing archived yet");
    assert_eq!(archive.frontier(&tp, 0).await.unwrap(), 0);
    for (start, end) in [(0, 9), (10, 19), (20, 29)] {
        store_as(&archive, &sealed_file(dir.path(), &tp, start, end), u64::MAX).await.unwrap();
    }
    for from in [0, 10, 20, 30] {
        assert_eq!(archive.frontier(&tp, from).await.unwrap(), 30, "from {from}");
    }
    assert_eq!(archive.listed_end(&tp).await.unwrap(), Some(30));
    let other = TopicPartition::new("t", 3);
    assert_eq!(archive.listed_end(&other).await.unwrap(), None, "partitions are apart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_and_a_lost_disk_do_not_archive_anything_twice() {
    let env = env();
    let topic = unique("e2e-lostcommit");
    create_topic(&env, &topic, 2).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 2, 0, 200, &mut produced).await;
    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let config = dir.path().join("kafkatos3.cfg");
    DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix).write(&env, &config);
    let s3 = store(&env, &env.s3_endpoint);

    let daemon = Daemon::start(&config, &dir.path().join("first.log"));
    let archive = wait_for_archive(s3.clone(), &prefix, 200, Duration::from_secs(60)).await;
    assert_exactly_once(&produced, &archive);
    daemon.terminate(Duration::from_secs(30));

    // The commits are lost (as if the daemon died between upload and commit) and so is the
    // machine's disk: only S3 knows how far the archive goes.
    commit_offsets(&env, &group, &topic, &[(0, 0), (1, 0)]);
    std::fs::remove_dir_all(dir.path().join("work")).unwrap();
    produce(&env, &topic, 2, 200, 100, &mut produced).await;
    let daemon = Daemon::start(&config, &dir.path().join("second.log"));
    let archive = wait_for_archive(s3.clone(), &prefix, 300, Duration::from_secs(60)).await;
    // Let a re-archiving daemon show itself: more than the 300 records would appear.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let archive_after = read_archive(s3.clone(), &prefix).await;
    let log = daemon.log_tail();
    daemon.terminate(Duration::from_secs(30));
    assert_eq!(archive.total(), archive_after.total(), "{log}");
    assert_exactly_once(&produced, &archive_after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_archivers_racing_on_one_prefix_with_different_rotation_archive_each_offset_once() {
    let env = env();
    let topic = unique("e2e-race");
    create_topic(&env, &topic, 2).await;
    let mut produced = ByPartition::new();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("archive");
    // Two groups: both read every record, both try to archive it, with files cut at different
    // points. Only one object may ever hold an offset.
    let daemons: Vec<Daemon> = [(1u64, "a"), (3, "b")]
        .into_iter()
        .map(|(age, name)| {
            let config = dir.path().join(format!("{name}.cfg"));
            let mut settings = DaemonConfig::new(&env, &dir.path().join(name), &unique("g"), &[&topic], &prefix);
            settings.max_age_seconds = age;
            settings.write(&env, &config);
            Daemon::start(&config, &dir.path().join(format!("{name}.log")))
        })
        .collect();
    for round in 0..6 {
        produce(&env, &topic, 2, round * 50, 50, &mut produced).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let archive = wait_for_archive(s3_of(&env), &prefix, 300, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let archive_after = read_archive(s3_of(&env), &prefix).await;
    let logs: String = daemons.iter().map(Daemon::log_tail).collect();
    for daemon in daemons {
        daemon.terminate(Duration::from_secs(30));
    }
    assert_eq!(archive.total(), archive_after.total(), "{logs}");
    assert_exactly_once(&produced, &archive_after);
}

fn s3_of(env: &TestEnv) -> Arc<dyn ObjectStore> {
    store(env, &env.s3_endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_partitions_owned_elsewhere_are_uploaded_when_they_continue_our_uploads_else_deleted() {
    let env = env();
    let (topic, gone) = (unique("e2e-owned"), unique("e2e-gone"));
    create_topic(&env, &topic, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let gone0 = TopicPartition::new(&gone, 0);
    // Files this disk kept of partitions it no longer owns: the marker says 0-9 is in S3; 10-19
    // (sealed) and 20-29 (compressed) continue it, 35-40 does not (a gap), and partition 1 has
    // an open file but nothing uploaded from this disk.
    let state = work.join(format!("state/{gone}/0"));
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("uploaded_through"), "9\n").unwrap();
    let place = |stage: &str, file: Sealed, suffix: &str| {
        let target = work.join(format!("{stage}/{gone}/{}/{}{suffix}", file.name.tp.partition, file.name.stem()));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        if suffix == ".mak" {
            let mut decoded = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(std::fs::File::open(&file.path).unwrap()),
                &mut decoded,
            )
            .unwrap();
            std::fs::write(&target, decoded).unwrap();
        } else {
            std::fs::copy(&file.path, &target).unwrap();
        }
    };
    place("tocompress", sealed_file(dir.path(), &gone0, 10, 19), ".mak");
    place("tos3", sealed_file(dir.path(), &gone0, 20, 29), ".mak.gz");
    place("tos3", sealed_file(dir.path(), &gone0, 35, 40), ".mak.gz");
    let open = work.join(format!("inprogress/{gone}/1/data.mak"));
    std::fs::create_dir_all(open.parent().unwrap()).unwrap();
    let header = mak::Header { topic: gone.clone(), partition: 1, start_offset: 5, start_time: 1.0 };
    let mut writer = mak::MakWriter::create(&open, &header).unwrap();
    writer.append(5, None, Some(b"v")).unwrap();
    writer.close().unwrap();
    std::fs::create_dir_all(work.join("state")).unwrap();

    let prefix = unique("archive");
    let config = dir.path().join("kafkatos3.cfg");
    let mut settings = DaemonConfig::new(&env, &work, &unique("g"), &[&topic], &prefix);
    settings.extra_consumer = "leftover_timeout_seconds = 2".into();
    settings.write(&env, &config);
    let daemon = Daemon::start(&config, &dir.path().join("daemon.log"));
    let leftovers = || -> Vec<PathBuf> {
        ["inprogress", "tocompress", "tos3"]
            .iter()
            .flat_map(|area| walk_files(&work.join(area)))
            .filter(|p| p.to_string_lossy().contains(&gone))
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while !leftovers().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let log = daemon.log_tail();
    daemon.terminate(Duration::from_secs(30));
    let s3 = store(&env, &env.s3_endpoint);
    let archive = read_archive(s3.clone(), &prefix).await;
    let offsets: Vec<i64> = archive.records.get(&(gone.clone(), 0)).unwrap().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (10..=29).collect::<Vec<_>>(), "the files continuing the marker are uploaded: {log}");
    assert!(!archive.records.contains_key(&(gone.clone(), 1)), "nothing continued partition 1's uploads");
    let left = leftovers();
    assert!(left.is_empty(), "every leftover resolved, left: {left:?}\n{log}");
    assert_eq!(std::fs::read_to_string(state.join("uploaded_through")).unwrap().trim(), "29");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_streams_an_archived_object_straight_from_s3() {
    let env = env();
    let archive = daemon_archive(&env, "parse-s3");
    let at = archive.location();
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 0);
    let file = sealed_with(dir.path(), &tp, 100, 104, Codec::Zstd);
    store_as(&archive, &file, u64::MAX).await.unwrap();
    let url = format!("s3://{}/{}", env.bucket, at.object_key(&file.name, &file.suffix));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3_parse"))
        .args([&url, "--json", "--endpoint", &env.s3_endpoint, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", &env.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &env.secret_key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let offsets: Vec<i64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, (100..=104).collect::<Vec<_>>());

    let missing = format!("s3://{}/{}", env.bucket, at.claim_key(&tp, 999));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3_parse"))
        .args([&missing, "--endpoint", &env.s3_endpoint])
        .env("AWS_ACCESS_KEY_ID", &env.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &env.secret_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&missing) && stderr.lines().count() == 1, "one line naming the object: {stderr}");
}
