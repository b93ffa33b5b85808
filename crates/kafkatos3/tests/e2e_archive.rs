//! End to end: the real daemon against the real broker and S3 server. Every test ends with the
//! archive read back from S3 holding every produced record exactly once, in offset order.

mod support;

use std::time::Duration;

use support::*;

const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_every_record_exactly_once_across_topics_and_partitions() {
    let env = env();
    let (topic_a, topic_b) = (unique("e2e-a"), unique("e2e-b"));
    create_topic(&env, &topic_a, PARTITIONS).await;
    create_topic(&env, &topic_b, PARTITIONS).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic_a, PARTITIONS, 0, 900, &mut produced).await;
    produce(&env, &topic_b, PARTITIONS, 10_000, 600, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic_a, &topic_b], &prefix);
    config.consumer_processes = 2;
    config.write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));

    // More records while it runs: they land in later files of the same partitions.
    tokio::time::sleep(Duration::from_secs(6)).await;
    produce(&env, &topic_a, PARTITIONS, 900, 300, &mut produced).await;

    let s3 = store(&env, &env.s3_endpoint);
    let total: usize = produced.values().map(Vec::len).sum();
    let archive = wait_for_archive(s3.clone(), &prefix, total, Duration::from_secs(90)).await;
    assert_exactly_once(&produced, &archive);
    let commits = wait_for_commits(&env, &group, &expected_commits(&produced), Duration::from_secs(20)).await;
    assert_eq!(
        commits,
        expected_commits(&produced),
        "committed offsets are end+1 of what is in S3; log:\n{}",
        daemon.log_tail()
    );

    let (status, took) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "graceful stop exits 0, got {status}");
    assert!(took < Duration::from_secs(35), "stop took {took:?}");
    let leftovers: Vec<_> = walk_files(&dir.path().join("work/tos3"))
        .into_iter()
        .chain(walk_files(&dir.path().join("work/tocompress")))
        .collect();
    assert!(leftovers.is_empty(), "uploaded files are deleted locally: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_sealed_at_the_end_of_the_log_while_a_quiet_partition_waits_for_its_age() {
    let env = env();
    let topic = unique("e2e-log-end");
    create_topic(&env, &topic, 2).await;
    // Partition 0: a backlog of ~30 KB; partition 1: one small record.
    let mut produced = ByPartition::new();
    produce(&env, &topic, 1, 0, 300, &mut produced).await;
    produce_full(&env, &topic, 1, &mut varied(1)).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    config.max_age_seconds = 600;
    config.extra_consumer = "seal_at_end_bytes = 4KiB".into();
    config.write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));

    // Ten minutes before its age would seal it, the backlog is in S3 once it has been read.
    let s3 = store(&env, &env.s3_endpoint);
    let archive = wait_for_archive(s3.clone(), &prefix, 300, Duration::from_secs(60)).await;
    assert_exactly_once(&produced, &archive);
    assert!(
        !archive.records.contains_key(&(topic.clone(), 1)),
        "the quiet partition's file is under seal_at_end_bytes: it waits for its age"
    );
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "graceful stop exits 0, got {status}");
    let archive = read_archive(s3, &prefix).await;
    assert_eq!(archive.records.get(&(topic.clone(), 1)).map(Vec::len), Some(1), "sealed and uploaded at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_last_file_of_a_backlog_that_filled_files_is_sealed_at_the_log_end_too() {
    let env = env();
    let topic = unique("e2e-log-end-rest");
    create_topic(&env, &topic, 1).await;
    // About 2 MB of file: one sealed at max_file_bytes (1 MiB), then a rest far below seal_at_end_bytes.
    let mut produced = ByPartition::new();
    produce(&env, &topic, 1, 0, 45_000, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    config.max_age_seconds = 600;
    config.extra_consumer = "max_file_bytes = 1MiB\nseal_at_end_bytes = 64MiB".into();
    config.write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));

    let s3 = store(&env, &env.s3_endpoint);
    let archive = wait_for_archive(s3, &prefix, 45_000, Duration::from_secs(60)).await;
    assert_exactly_once(&produced, &archive);
    assert!(archive.keys.len() >= 2, "a full file and the rest: {:?}", archive.keys);
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "graceful stop exits 0, got {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_sealed_when_it_reaches_the_high_watermark_without_waiting_for_the_brokers_fetch_wait() {
    let env = env();
    let topic = unique("e2e-high-watermark");
    create_topic(&env, &topic, 1).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 1, 0, 300, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    config.max_age_seconds = 600;
    config.extra_consumer = "seal_at_end_bytes = 4KiB".into();
    // The broker answers a fetch at the end of the log only after this wait: the end-of-log
    // event would come 60 s after the last record. The fetch response that brought the last
    // record already said where the log ends.
    config.extra_kafka = "fetch.wait.max.ms = 60000\nsocket.timeout.ms = 90000\n".into();
    config.write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));

    let s3 = store(&env, &env.s3_endpoint);
    let archive = wait_for_archive(s3, &prefix, 300, Duration::from_secs(40)).await;
    // Had it waited for the end-of-log event, nothing would be archived by now.
    assert_exactly_once(&produced, &archive);
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "graceful stop exits 0, got {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_loses_and_duplicates_nothing() {
    let env = env();
    let topic = unique("e2e-kill");
    create_topic(&env, &topic, PARTITIONS).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, PARTITIONS, 0, 600, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let config_path = dir.path().join("kafkatos3.cfg");
    DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix).write(&env, &config_path);
    let s3 = store(&env, &env.s3_endpoint);

    let daemon = Daemon::start(&config_path, &dir.path().join("daemon.log"));
    // Let it archive some files, then keep records flowing and kill it without warning.
    wait_for_archive(s3.clone(), &prefix, 1, Duration::from_secs(60)).await;
    produce(&env, &topic, PARTITIONS, 600, 600, &mut produced).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    daemon.kill9();
    produce(&env, &topic, PARTITIONS, 1200, 300, &mut produced).await;

    let daemon = Daemon::start(&config_path, &dir.path().join("daemon.log"));
    let total: usize = produced.values().map(Vec::len).sum();
    let archive = wait_for_archive(s3.clone(), &prefix, total, Duration::from_secs(90)).await;
    // Give a duplicate, if the daemon were to write one, the time to show up.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let archive_after = read_archive(s3.clone(), &prefix).await;
    assert_eq!(archive.keys, archive_after.keys, "nothing more is uploaded once everything is archived");
    assert_exactly_once(&produced, &archive_after);
    let commits = wait_for_commits(&env, &group, &expected_commits(&produced), Duration::from_secs(20)).await;
    assert_eq!(commits, expected_commits(&produced), "log:\n{}", daemon.log_tail());
    if std::env::var_os("KAFKATOS3_TEST_SHOW_LOG").is_some() {
        println!("{}", std::fs::read_to_string(&daemon.log).unwrap());
    }
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_in_one_group_share_partitions_and_one_stops_midway() {
    let env = env();
    let topic = unique("e2e-two");
    let partitions = 4;
    create_topic(&env, &topic, partitions).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, partitions, 0, 800, &mut produced).await;

    let (group, prefix) = (unique("g"), unique("archive"));
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    for dir in [&dir_a, &dir_b] {
        // Long max age: the hand-over on revoke, not rotation, must move the open files.
        let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
        config.max_age_seconds = 3600;
        config.write(&env, &dir.path().join("kafkatos3.cfg"));
    }
    let daemon_a = Daemon::start(&dir_a.path().join("kafkatos3.cfg"), &dir_a.path().join("daemon.log"));
    let daemon_b = Daemon::start(&dir_b.path().join("kafkatos3.cfg"), &dir_b.path().join("daemon.log"));
    tokio::time::sleep(Duration::from_secs(12)).await;
    produce(&env, &topic, partitions, 800, 400, &mut produced).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A leaves mid-way: its open files are sealed, uploaded and committed before B takes over.
    let (status, _) = daemon_a.terminate(Duration::from_secs(45));
    assert!(
        status.success(),
        "log A:\n{}",
        std::fs::read_to_string(dir_a.path().join("daemon.log")).unwrap_or_default()
    );
    produce(&env, &topic, partitions, 1200, 400, &mut produced).await;

    // B now owns everything; stopping it seals and uploads the rest.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (status, _) = daemon_b.terminate(Duration::from_secs(45));
    assert!(status.success());

    let s3 = store(&env, &env.s3_endpoint);
    let total: usize = produced.values().map(Vec::len).sum();
    let archive = wait_for_archive(s3.clone(), &prefix, total, Duration::from_secs(10)).await;
    assert_exactly_once(&produced, &archive);
    let commits = wait_for_commits(&env, &group, &expected_commits(&produced), Duration::from_secs(10)).await;
    assert_eq!(commits, expected_commits(&produced));
    let log_a = std::fs::read_to_string(dir_a.path().join("daemon.log")).unwrap();
    let log_b = std::fs::read_to_string(dir_b.path().join("daemon.log")).unwrap();
    assert!(log_a.contains("assigned") && log_b.contains("assigned"), "both daemons took part in the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_above_the_multipart_threshold_are_uploaded_in_parts() {
    let env = env();
    // Short names: s3s-fs keeps a multipart upload's metadata in a file named after the base64 of
    // bucket and key, which exceeds the file system's 255 bytes for keys over ~120 characters
    // (500 InternalError). Real S3 takes keys up to 1024 bytes.
    let topic = unique("big");
    create_topic(&env, &topic, 1).await;
    let mut produced = ByPartition::new();
    // ~6.5 MiB of incompressible values: the compressed file stays above the 5 MiB threshold.
    produce_noise(&env, &topic, 0, 65, 100 * 1024, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("mp"));
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    config.extra_s3 = "multipart_threshold_bytes = 5MiB".into();
    config.write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));
    let s3 = store(&env, &env.s3_endpoint);
    let archive = wait_for_archive(s3.clone(), &prefix, 65, Duration::from_secs(90)).await;
    assert_exactly_once(&produced, &archive);
    assert_eq!(archive.keys.len(), 1, "one file: {:?}", archive.keys);
    let meta = object_store::ObjectStoreExt::head(s3.as_ref(), &archive.keys[0].as_str().into()).await.unwrap();
    assert!(meta.size > 5 * 1024 * 1024, "object of {} bytes", meta.size);
    let etag = meta.e_tag.unwrap_or_default();
    assert!(etag.contains('-'), "a multipart upload's ETag is <md5>-<parts>, got {etag}");
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_ls_report_a_clean_archive_then_the_gap_and_the_unreadable_object_they_are_given() {
    let env = env();
    let topic = unique("e2e-verify");
    create_topic(&env, &topic, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix)
        .write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));
    let s3 = store(&env, &env.s3_endpoint);
    // Three batches a max age apart: three objects in one partition.
    let mut produced = ByPartition::new();
    let produced_from_ms = now_ms();
    for batch in 0..3 {
        produce(&env, &topic, 1, batch * 100, 100, &mut produced).await;
        wait_for_archive(s3.clone(), &prefix, (batch as usize + 1) * 100, Duration::from_secs(60)).await;
    }
    let produced_to_ms = now_ms();
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
    let archive = read_archive(s3.clone(), &prefix).await;
    assert_exactly_once(&produced, &archive);
    assert_eq!(archive.keys.len(), 3, "{:?}", archive.keys);

    let verify_with = |extra: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3"));
        command.args(["verify", "--config"]).arg(dir.path().join("kafkatos3.cfg")).args(extra);
        let out = command.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let verify = |deep: bool| verify_with(if deep { &["--deep"] } else { &[] });
    let (code, out, err) = verify(true);
    assert_eq!(code, Some(0), "clean archive: {out}{err}");
    assert!(out.contains(&format!("{topic}:0: offsets 0-299 in 3 objects, 300 records, clean")), "{out}");
    // With --config it also asks the broker what it still holds.
    assert!(out.lines().any(|l| l.starts_with(&format!("  {topic}:0: kafka"))), "{out}");
    // The same as one JSON document.
    let (code, out, err) = verify_with(&["--deep", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["clean"], true);
    let partition = &report["partitions"][0];
    assert_eq!((partition["topic"].as_str(), partition["partition"].as_i64()), (Some(topic.as_str()), Some(0)));
    assert_eq!((partition["objects"].as_i64(), partition["records"].as_i64()), (Some(3), Some(300)));
    assert_eq!((partition["first_offset"].as_i64(), partition["last_offset"].as_i64()), (Some(0), Some(299)));
    assert!(partition["kafka_log_end"].as_i64().is_some(), "{out}");

    // ls: the same partition from the objects' headers; the producer stamped the records.
    let ls = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
            .args(["ls", "--config"])
            .arg(dir.path().join("kafkatos3.cfg"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let listing: serde_json::Value = serde_json::from_str(&ls(&["--json", "--objects"])).unwrap();
    let partition = &listing["partitions"][0];
    assert_eq!((partition["topic"].as_str(), partition["partition"].as_i64()), (Some(topic.as_str()), Some(0)));
    assert_eq!(partition["objects"], 3);
    assert_eq!((partition["first_offset"].as_i64(), partition["last_offset"].as_i64()), (Some(0), Some(299)));
    let (min_ms, max_ms) = (partition["min_timestamp"].as_i64().unwrap(), partition["max_timestamp"].as_i64().unwrap());
    assert!(produced_from_ms <= min_ms && min_ms <= max_ms && max_ms <= produced_to_ms, "{partition}");
    assert_eq!(partition["time_range_exact"], true, "v3 objects state their smallest and largest timestamp");
    let mut stored_bytes = 0;
    for key in &archive.keys {
        let key = object_store::path::Path::from(key.as_str());
        stored_bytes += object_store::ObjectStoreExt::head(s3.as_ref(), &key).await.unwrap().size;
    }
    assert_eq!(partition["bytes"].as_u64(), Some(stored_bytes));
    assert_eq!(partition["object_list"].as_array().map(Vec::len), Some(3));
    assert!(ls(&["--topic", "no-such-topic"]).contains(": 0 topics, 0 partitions, 0 objects, 0 B"));

    // Take the middle object away and add a corrupt one: both are reported, exit status 1.
    let middle: object_store::path::Path = archive.keys[1].as_str().into();
    object_store::ObjectStoreExt::delete(s3.as_ref(), &middle).await.unwrap();
    let corrupt: object_store::path::Path = format!("{prefix}/{topic}/0/{topic}-0_300-310_261125.mak.gz").into();
    object_store::ObjectStoreExt::put(s3.as_ref(), &corrupt, b"not gzip at all".to_vec().into()).await.unwrap();
    for deep in [false, true] {
        let (code, out, _) = verify(deep);
        assert_eq!(code, Some(1), "problems found (deep = {deep}): {out}");
        assert!(out.contains("GAP offsets 100-199"), "{out}");
        assert!(out.contains(&format!("MISSING {}", middle.as_ref().rsplit('/').next().unwrap())), "{out}");
        assert!(out.contains(&format!("UNREADABLE {corrupt}")), "{out}");
    }
    let (code, out, _) = verify_with(&["--json"]);
    assert_eq!(code, Some(1), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["clean"], false);
    let partition = &report["partitions"][0];
    assert_eq!(partition["gaps"], serde_json::json!([[100, 199]]), "{out}");
    assert_eq!(partition["missing"][0]["first_offset"], 100, "{out}");
    assert_eq!(partition["unreadable"][0]["key"], corrupt.as_ref(), "{out}");
    let text = ls(&[]);
    let line = text.lines().find(|l| l.starts_with(&format!("{topic} "))).expect(&text);
    // The corrupt object has the original's naming (no claim needed): listed, its header unread.
    assert!(line.contains(" 0-310 "), "{text}");
    assert!(line.ends_with("1 gap, 1 missing object, 1 header unread, 1 original object"), "{text}");
    assert!(text.contains("  GAP offsets 100-199: in no object"), "{text}");
    assert!(text.contains(&format!("  HEADER UNREAD s3://{}/{corrupt}: ", env.bucket)), "{text}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
