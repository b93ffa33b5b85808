//! End to end under failure: S3 away, a broker that cannot be reached, a group with no offset,
//! and a working directory left by the Python original.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_keeps_files_pauses_commits_and_uploads_everything_when_s3_returns() {
    let env = env();
    let topic = unique("e2e-s3down");
    create_topic(&env, &topic, 2).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 2, 0, 400, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let mut s3_server = PrivateS3::start(&env, &dir.path().join("s3"));
    let s3 = store(&env, &s3_server.endpoint());
    let (group, prefix) = (unique("g"), unique("archive"));
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    config.endpoint = s3_server.endpoint();
    config.write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));
    let first = wait_for_archive(s3.clone(), &prefix, 400, Duration::from_secs(60)).await;
    assert_eq!(first.total(), 400, "log:\n{}", daemon.log_tail());

    // S3 goes away while records keep coming.
    s3_server.down();
    produce(&env, &topic, 2, 400, 400, &mut produced).await;
    let logged = wait_for_log(&daemon.log, "failed: ", Duration::from_secs(30)).await;
    assert!(logged, "upload failures are logged; log:\n{}", daemon.log_tail());
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    assert!(log.contains(&format!("s3://{}/{}/", env.bucket, prefix)), "the error names bucket and key");
    let waiting = walk_files(&dir.path().join("work/tos3"));
    assert!(!waiting.is_empty(), "compressed files wait in tos3 while S3 is down");
    let partitions = partitions_of(&[&topic], 2);
    let during = tokio::task::spawn_blocking({
        let (env, group) = (env.clone(), group.clone());
        move || committed(&env, &group, &partitions)
    })
    .await
    .unwrap();
    for ((topic, partition), offset) in &during {
        let uploaded_end = first.records[&(topic.clone(), *partition)].last().unwrap().offset + 1;
        assert_eq!(*offset, Some(uploaded_end), "{topic}:{partition}: nothing past what is in S3 is committed");
    }

    // S3 returns: the backlog drains with backoff retries, and the archive is whole.
    s3_server.up();
    let archive = wait_for_archive(s3.clone(), &prefix, 800, Duration::from_secs(120)).await;
    assert_exactly_once(&produced, &archive);
    let commits = wait_for_commits(&env, &group, &expected_commits(&produced), Duration::from_secs(20)).await;
    assert_eq!(commits, expected_commits(&produced));
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_is_retried_and_reported_and_shutdown_stays_clean() {
    let env = env();
    let dir = tempfile::tempdir().unwrap();
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = TestEnv { bootstrap: format!("127.0.0.1:{dead_port}"), ..env.clone() };
    DaemonConfig::new(&dead, &dir.path().join("work"), &unique("g"), &["nowhere"], &unique("archive"))
        .write(&dead, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));
    let reported = wait_for_log(&daemon.log, "kafka: no connection to the brokers", Duration::from_secs(20)).await;
    assert!(reported, "an unreachable broker is reported; log:\n{}", daemon.log_tail());
    let cpu_before = cpu_ticks(daemon.pid());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu_used = cpu_ticks(daemon.pid()) - cpu_before;
    // 5 s of wall time is 500 ticks per core: a spinning retry loop would use most of one.
    assert!(cpu_used < 100, "retrying must not spin: {cpu_used} CPU ticks in 5 s");
    let errors = std::fs::read_to_string(&daemon.log).unwrap().matches("kafka: no connection to the brokers").count();
    assert!(errors < 10, "repeated errors are rate-limited ({errors} reports)");
    let (status, took) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_reset_none_stops_with_a_clear_error_when_the_group_has_no_offset() {
    let env = env();
    let topic = unique("e2e-none");
    create_topic(&env, &topic, 1).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 1, 0, 10, &mut produced).await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("kafkatos3.cfg");
    DaemonConfig::new(&env, &dir.path().join("work"), &unique("g"), &[&topic], &unique("archive"))
        .write(&env, &config_path);
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("kafka_auto_offset_reset = earliest", "kafka_auto_offset_reset = none");
    std::fs::write(&config_path, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
        .arg(&config_path)
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "daemon kept running without an offset; log:\n{}",
                std::fs::read_to_string(dir.path().join("daemon.log")).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(!status.success(), "exits non-zero");
    assert!(log.contains("kafka_auto_offset_reset = none"), "the error names the setting; log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_directory_of_the_python_original_is_adopted_and_uploaded() {
    let env = env();
    let topic = unique("e2e-legacy");
    create_topic(&env, &topic, 3).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 3, 0, 90, &mut produced).await;

    // What the original leaves behind: a sealed file waiting for gzip, a gzipped one waiting for
    // upload, an in-progress file, and offsets it committed before uploading any of them.
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let records = |p: i32| produced[&(topic.clone(), p)].clone();
    let write_mak = |path: &std::path::Path, partition: i32, upto: usize| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let header = mak::Header { topic: topic.clone(), partition, start_offset: 0, start_time: 1479000000.0 };
        let mut writer = mak::MakWriter::create(path, &header).unwrap();
        for r in &records(partition)[..upto] {
            writer.append(r.offset, Some(&r.key), Some(&r.value)).unwrap();
        }
        writer.close().unwrap();
    };
    write_mak(&work.join(format!("tocompress/{topic}/0/{topic}-0_0-9_161110.mak")), 0, 10);
    let gz_source = dir.path().join("p1.mak");
    write_mak(&gz_source, 1, 5);
    let gz_target = work.join(format!("tos3/{topic}/1/{topic}-1_0-4_161110.mak.gz"));
    std::fs::create_dir_all(gz_target.parent().unwrap()).unwrap();
    let status = std::process::Command::new("gzip")
        .arg("-c")
        .arg(&gz_source)
        .stdout(std::fs::File::create(&gz_target).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    write_mak(&work.join(format!("inprogress/{topic}/2/data.mak")), 2, 3);
    let group = unique("g");
    commit_offsets(&env, &group, &topic, &[(0, 10), (1, 5), (2, 3)]);

    let prefix = unique("archive");
    DaemonConfig::new(&env, &work, &group, &[&topic], &prefix).write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));
    let s3 = store(&env, &env.s3_endpoint);
    let archive = wait_for_archive(s3.clone(), &prefix, 90, Duration::from_secs(60)).await;
    assert_exactly_once(&produced, &archive);
    for legacy in [
        format!("{prefix}/{topic}/0/{topic}-0_0-9_161110.mak.gz"),
        format!("{prefix}/{topic}/1/{topic}-1_0-4_161110.mak.gz"),
    ] {
        assert!(
            archive.keys.contains(&legacy),
            "{legacy} uploaded under the original's name; keys: {:?}",
            archive.keys
        );
    }
    // The original's files, its in-progress one included (sealed at startup), stay version 1;
    // the files this daemon starts follow the config's default, version 3.
    for (key, version) in &archive.versions {
        let originals_name = matches!(
            kafkatos3::archive::Location::new(&prefix).parse_key(key),
            Some(kafkatos3::archive::ArchiveKey::Object(name)) if name.original
        );
        let expected = if originals_name { mak::Version::V1 } else { mak::Version::V3 };
        assert_eq!(*version, expected, "{key}");
    }
    assert!(archive.versions.values().any(|v| *v == mak::Version::V3), "{:?}", archive.versions);
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
}

/// utime + stime of a process, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_keep_files_pause_at_the_backlog_limit_and_a_fixed_restart_uploads_all() {
    let env = env();
    let topic = unique("e2e-creds");
    create_topic(&env, &topic, 1).await;
    let mut produced = ByPartition::new();
    // 3 MiB of incompressible records against a 1 MiB backlog limit.
    produce_noise(&env, &topic, 0, 30, 100 * 1024, &mut produced).await;

    let (run, daemon) = RefusedUploads::start(&env, &topic, |config| {
        config.extra_s3 = "max_local_backlog_bytes = 1MiB".into();
    });
    let (dir, group, prefix) = (&run.dir, run.group.clone(), run.prefix.clone());
    let refused = wait_for_log(&daemon.log, "upload failed", Duration::from_secs(60)).await;
    assert!(refused, "log:\n{}", daemon.log_tail());
    let paused = wait_for_log(&daemon.log, "pausing consumption", Duration::from_secs(30)).await;
    assert!(paused, "consumption pauses above max_local_backlog_bytes; log:\n{}", daemon.log_tail());
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    // The first request is the store check before any upload: its error names bucket, prefix and key.
    assert!(log.contains(&format!("s3://{}/{prefix}/", env.bucket)), "the error names bucket and key");
    assert!(!log.contains("not-the-secret"), "the secret is never logged");
    // The pause counts files still being compressed too; they reach tos3 and wait there.
    assert!(wait_for_files(&dir.path().join("work/tos3"), Duration::from_secs(30)).await, "files wait in tos3");
    let nothing = committed(&env, &group, &partitions_of(&[&topic], 1));
    // Committing the first offset of the partition (0) states nothing is archived yet.
    assert_eq!(
        nothing.values().next().copied().flatten().unwrap_or(0),
        0,
        "nothing is committed while nothing is in S3"
    );
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
    run.fix_and_check_all_archived(&env, &produced, 30).await;
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root (the test simulates a full disk with it)");
        SmallDisk(path.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_stops_consumption_loses_nothing_and_resumes_when_space_returns() {
    let env = env();
    let topic = unique("e2e-diskfull");
    create_topic(&env, &topic, 1).await;
    let mut produced = ByPartition::new();
    // 10 MiB of records that gzip halves, for a 4 MiB working directory, while S3 is away.
    produce_noisy(&env, &topic, 0, 100, 100 * 1024, 0.5, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("work"), "4m");
    let mut s3_server = PrivateS3::start(&env, &dir.path().join("s3"));
    s3_server.down();
    let (group, prefix) = (unique("g"), unique("archive"));
    let mut config = DaemonConfig::new(&env, &disk.0, &group, &[&topic], &prefix);
    config.endpoint = s3_server.endpoint();
    config.max_age_seconds = 1;
    // Files of 1 MiB: one file never needs more than what is left beside it to be compressed.
    config.extra_consumer = "max_file_bytes = 1MiB".into();
    config.write(&env, &dir.path().join("kafkatos3.cfg"));
    let mut daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));

    let full = wait_for_log(&daemon.log, "out_of_space=true", Duration::from_secs(60)).await;
    assert!(full, "a write hits the full disk; log:\n{}", daemon.log_tail());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(daemon.is_running(), "a full disk is not fatal; log:\n{}", daemon.log_tail());
    let nothing = committed(&env, &group, &partitions_of(&[&topic], 1));
    // Committing the first offset of the partition (0) states nothing is archived yet.
    assert_eq!(nothing.values().next().copied().flatten().unwrap_or(0), 0, "nothing committed while nothing is in S3");

    // Space returns as uploads drain the disk.
    s3_server.up();
    let s3 = store(&env, &s3_server.endpoint());
    let archive = wait_for_archive(s3.clone(), &prefix, 100, Duration::from_secs(150)).await;
    assert_eq!(archive.total(), 100, "log:\n{}", daemon.log_tail());
    assert_exactly_once(&produced, &archive);
    let commits = wait_for_commits(&env, &group, &expected_commits(&produced), Duration::from_secs(20)).await;
    assert_eq!(commits, expected_commits(&produced), "log:\n{}", daemon.log_tail());
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
}
