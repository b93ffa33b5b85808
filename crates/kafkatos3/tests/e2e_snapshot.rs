//! End to end: `kafkatos3 snapshot` against the real broker and S3 server. A snapshot archives
//! every partition up to its end as of its start and exits; it continues the archive where the
//! daemon or an earlier snapshot left it, and the claims keep it from archiving a record twice
//! beside a running daemon.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use support::*;

const PARTITIONS: i32 = 3;

fn snapshot(config: &Path, extra: &[&str], log: &Path) -> Daemon {
    let mut args: Vec<&OsStr> = vec![OsStr::new("snapshot"), OsStr::new("--config"), config.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    Daemon::start_args(&args, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_archives_to_the_end_and_exits_then_the_next_one_and_the_daemon_continue_the_same_archive() {
    let env = env();
    let topic = unique("e2e-snapshot");
    create_topic(&env, &topic, PARTITIONS).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, PARTITIONS, 0, 900, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let config_path = dir.path().join("kafkatos3.cfg");
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    // Ten minutes of age: only the end of each partition seals its file.
    config.max_age_seconds = 600;
    config.write(&env, &config_path);
    let log = dir.path().join("snapshot.log");
    let s3 = store(&env, &env.s3_endpoint);

    let status = snapshot(&config_path, &["--consumers", "2"], &log).wait(Duration::from_secs(90));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "a complete snapshot exits 0, got {status}; log:\n{text}");
    let archive = read_archive(s3.clone(), &prefix).await;
    assert_exactly_once(&produced, &archive);
    let partitions = partitions_of(&[&topic], PARTITIONS);
    let none: std::collections::BTreeMap<_, _> = partitions.iter().map(|tp| (tp.clone(), None)).collect();
    assert_eq!(committed(&env, &group, &partitions), none, "without --commit the group's offsets stay untouched");
    assert!(
        walk_files(&dir.path().join("work/tos3")).is_empty()
            && walk_files(&dir.path().join("work/inprogress")).is_empty(),
        "nothing is left in the working directory"
    );

    // The next snapshot takes only what came after, and commits it.
    produce(&env, &topic, PARTITIONS, 900, 300, &mut produced).await;
    let objects_before = archive.keys.len();
    let status = snapshot(&config_path, &["--commit"], &log).wait(Duration::from_secs(90));
    assert!(status.success(), "got {status}; log:\n{}", std::fs::read_to_string(&log).unwrap());
    let archive = read_archive(s3.clone(), &prefix).await;
    assert_exactly_once(&produced, &archive);
    assert_eq!(
        archive.keys.len(),
        objects_before + PARTITIONS as usize,
        "one object per partition for the new records"
    );
    assert_eq!(committed(&env, &group, &partitions), expected_commits(&produced), "--commit moves the group's offsets");

    // The daemon goes on from there.
    produce(&env, &topic, PARTITIONS, 1200, 150, &mut produced).await;
    config.max_age_seconds = 2;
    config.write(&env, &config_path);
    let daemon = Daemon::start(&config_path, &dir.path().join("daemon.log"));
    let total: usize = produced.values().map(Vec::len).sum();
    let archive = wait_for_archive(s3.clone(), &prefix, total, Duration::from_secs(90)).await;
    assert_exactly_once(&produced, &archive);
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());

    // And a snapshot with nothing new to take archives nothing.
    let status = snapshot(&config_path, &[], &log).wait(Duration::from_secs(60));
    assert!(status.success(), "got {status}; log:\n{}", std::fs::read_to_string(&log).unwrap());
    let after = read_archive(s3, &prefix).await;
    assert_eq!(after.keys, archive.keys, "an archive at the log end gets no new object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_snapshots_beside_a_running_daemon_never_archive_a_record_twice() {
    let env = env();
    let topic = unique("e2e-snapshot-race");
    create_topic(&env, &topic, PARTITIONS).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, PARTITIONS, 0, 30_000, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    // The same group, topic and archive; each its own working directory, as on three machines.
    let mut config = DaemonConfig::new(&env, &dir.path().join("daemon-work"), &group, &[&topic], &prefix);
    config.max_age_seconds = 1;
    config.extra_consumer = "max_file_records = 500".into();
    config.write(&env, &dir.path().join("daemon.cfg"));
    for name in ["a", "b"] {
        config.workdir = dir.path().join(format!("snapshot-{name}-work"));
        config.write(&env, &dir.path().join(format!("snapshot-{name}.cfg")));
    }

    // All three start on the same backlog: the snapshots right away, the daemon once it has
    // joined its group, each resuming where the archive ends when it starts a partition.
    let daemon = Daemon::start(&dir.path().join("daemon.cfg"), &dir.path().join("daemon.log"));
    let snapshots: Vec<(Daemon, std::path::PathBuf)> = ["a", "b"]
        .iter()
        .map(|name| {
            let log = dir.path().join(format!("snapshot-{name}.log"));
            (snapshot(&dir.path().join(format!("snapshot-{name}.cfg")), &[], &log), log)
        })
        .collect();
    produce(&env, &topic, PARTITIONS, 30_000, 1500, &mut produced).await;
    for (snapshot, log) in snapshots {
        let status = snapshot.wait(Duration::from_secs(120));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            status.success(),
            "each snapshot ends with its partitions archived to their end, got {status}; log:\n{text}"
        );
        if std::env::var_os("KAFKATOS3_TEST_SHOW_LOG").is_some() {
            println!("----- {} -----\n{text}", log.display());
        }
    }

    let s3 = store(&env, &env.s3_endpoint);
    let total: usize = produced.values().map(Vec::len).sum();
    let archive = wait_for_archive(s3.clone(), &prefix, total, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
    let after = read_archive(s3, &prefix).await;
    assert_eq!(archive.keys, after.keys, "nothing more once everything is archived");
    assert_exactly_once(&produced, &after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_killed_midway_and_run_again_archives_every_record_once() {
    let env = env();
    let topic = unique("e2e-snapshot-kill");
    create_topic(&env, &topic, PARTITIONS).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, PARTITIONS, 0, 60_000, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let config_path = dir.path().join("kafkatos3.cfg");
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    config.extra_consumer = "max_file_records = 1000".into();
    config.write(&env, &config_path);
    let s3 = store(&env, &env.s3_endpoint);
    let log = dir.path().join("snapshot.log");

    // Killed once its first objects are in S3, with files in every stage behind them.
    let first = snapshot(&config_path, &["--consumers", "1"], &log);
    let started = std::time::Instant::now();
    while read_archive(s3.clone(), &prefix).await.keys.is_empty() && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9();
    let partial = read_archive(s3.clone(), &prefix).await;

    let status = snapshot(&config_path, &[], &log).wait(Duration::from_secs(90));
    assert!(status.success(), "got {status}; log:\n{}", std::fs::read_to_string(&log).unwrap());
    let archive = read_archive(s3, &prefix).await;
    assert_exactly_once(&produced, &archive);
    assert!(
        partial.keys.iter().all(|key| archive.keys.contains(key)),
        "what the first run archived stays, the second continues after it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_a_topic_that_does_not_exist_fails_naming_it() {
    let env = env();
    let topic = unique("e2e-snapshot-missing");
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("kafkatos3.cfg");
    DaemonConfig::new(&env, &dir.path().join("work"), &unique("g"), &[&topic], &unique("archive"))
        .write(&env, &config_path);
    let log = dir.path().join("snapshot.log");
    let status = snapshot(&config_path, &[], &log).wait(Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "log:\n{text}");
    assert!(text.contains(&format!("topic {topic} does not exist")), "the error names the topic:\n{text}");
}
