//! End to end, the local backlog's back-pressure (`[s3] max_local_backlog_bytes`): the
//! partitions furthest ahead pause first, everything pauses at the limit, and a paused partition
//! handed away and back fetches again, and transaction markers fetched before a pause or a
//! rebalance skip no record when it resumes.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_half_the_backlog_limit_only_the_partition_furthest_ahead_pauses_and_the_others_keep_flowing() {
    let env = env();
    let topic = unique("e2e-ahead");
    create_topic(&env, &topic, 2).await;
    let mut produced = ByPartition::new();
    // Partition 0 is far ahead: 3 MiB of records against a 4 MiB limit shared by 2 partitions.
    produce_noise(&env, &topic, 0, 30, 100 * 1024, &mut produced).await;

    // Uploads are refused, so whatever is consumed stays in the backlog.
    let (run, daemon) = RefusedUploads::start(&env, &topic, |config| {
        config.extra_consumer = "max_file_bytes = 1MiB".into();
        config.extra_s3 = "max_local_backlog_bytes = 4MiB".into();
    });
    let ahead =
        wait_for_log(&daemon.log, "pausing consumption of the partitions furthest ahead", Duration::from_secs(60))
            .await;
    assert!(ahead, "log:\n{}", daemon.log_tail());
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    let line = log.lines().find(|l| l.contains("furthest ahead")).unwrap();
    assert!(line.contains(&format!("{topic}:0")) && !line.contains(&format!("{topic}:1")), "only partition 0: {line}");

    // Later records: partition 1's are consumed and spooled, partition 0's wait in Kafka.
    produce_noise(&env, &topic, 0, 10, 100 * 1024, &mut produced).await;
    produce_noise(&env, &topic, 1, 5, 1000, &mut produced).await;
    let work = kafkatos3::local::layout::WorkDir::new(run.dir.path().join("work"));
    let local_end = |partition: i32| {
        let tp = kafkatos3::names::TopicPartition::new(&topic, partition);
        work.list_sealed_for(&tp).unwrap().iter().map(|f| f.name.end).max()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while local_end(1) != Some(4) {
        assert!(std::time::Instant::now() < deadline, "partition 1 keeps flowing; log:\n{}", daemon.log_tail());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(local_end(0).is_some_and(|end| end < 30), "partition 0 stays paused: held through {:?}", local_end(0));
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    assert!(!log.contains("local backlog over its limit"), "the limit itself is never reached");
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
    // The paused records included.
    run.fix_and_check_all_archived(&env, &produced, 45).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_paused_at_the_limit_handed_away_and_back_is_fetched_again() {
    let env = env();
    let topic = unique("e2e-pausedback");
    create_topic(&env, &topic, 2).await;
    let mut produced = ByPartition::new();
    // 1.5 MiB per partition against a 1 MiB limit, while S3 is away: everything pauses.
    for partition in 0..2 {
        produce_noise(&env, &topic, partition, 15, 100 * 1024, &mut produced).await;
    }
    // B joins: each instance now owns one partition, and A's other one leaves it paused.
    let PausedPair { dir: _dir, mut s3_server, group, prefix, a, b } = paused_pair(&env, &topic, "").await;
    // S3 returns: A's backlog drains (its own files uploaded, the other partition's resolved as
    // leftovers, which can already happen before S3 is back) and A leaves the full pause.
    s3_server.up();
    let resumed = wait_for_log(&a.log, "resuming consumption", Duration::from_secs(60)).await;
    assert!(resumed, "log:\n{}", a.log_tail());
    // B leaves: A owns both again, the partition paused under its earlier ownership included.
    let (status, _) = b.terminate(Duration::from_secs(40));
    assert!(status.success());
    for partition in 0..2 {
        produce_noise(&env, &topic, partition, 5, 1000, &mut produced).await;
    }
    let s3 = store(&env, &s3_server.endpoint());
    let archive = wait_for_archive(s3.clone(), &prefix, 40, Duration::from_secs(90)).await;
    assert_exactly_once(&produced, &archive);
    let commits = wait_for_commits(&env, &group, &expected_commits(&produced), Duration::from_secs(30)).await;
    assert_eq!(commits, expected_commits(&produced), "log:\n{}", a.log_tail());
    let (status, _) = a.terminate(Duration::from_secs(40));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_through_full_pauses_and_a_cooperative_rebalance_are_archived_exactly_once() {
    let env = env();
    let topic = unique("e2e-txnpause");
    create_topic(&env, &topic, 4).await;
    let mut produced = ByPartition::new();
    // About 3 MiB per partition against a 1 MiB limit while S3 is away: everything pauses with
    // records and transaction markers fetched, which the pause makes outdated.
    for partition in 0..4 {
        produce_transactions(&env, &topic, partition, 10, 2, 100 * 1024, &mut produced).await;
    }
    // B joins: in a cooperative rebalance A keeps two partitions, which librdkafka pauses for
    // the rebalance and resumes from the position it copied. A small fetch queue, so that a
    // pause may find records and markers queued (not certain: the drain may have taken
    // everything by the tick that pauses).
    let kafka = "partition.assignment.strategy = cooperative-sticky\nqueued.max.messages.kbytes = 1024\n";
    let PausedPair { dir: _dir, mut s3_server, prefix, a, b, .. } = paused_pair(&env, &topic, kafka).await;
    let log = std::fs::read_to_string(&a.log).unwrap();
    let revoked = log.lines().find(|l| l.contains("revoked; handing over")).expect("A handed partitions over");
    assert_eq!(revoked.matches(&format!("{topic}:")).count(), 2, "A kept two partitions: {revoked}");
    s3_server.up();
    for partition in 0..4 {
        produce_transactions(&env, &topic, partition, 3, 2, 1000, &mut produced).await;
    }
    let total: usize = produced.values().map(Vec::len).sum();
    let s3 = store(&env, &s3_server.endpoint());
    let archive = wait_for_archive(s3.clone(), &prefix, total, Duration::from_secs(120)).await;
    assert_exactly_once(&produced, &archive);
    for daemon in [a, b] {
        let (status, _) = daemon.terminate(Duration::from_secs(40));
        assert!(status.success());
    }
}

/// Two instances in one group with a 1 MiB backlog limit: S3 goes away, A starts and pauses
/// everything at the limit, then B joins (S3 stays away).
struct PausedPair {
    dir: tempfile::TempDir,
    s3_server: PrivateS3,
    group: String,
    prefix: String,
    a: Daemon,
    b: Daemon,
}

async fn paused_pair(env: &TestEnv, topic: &str, extra_kafka: &str) -> PausedPair {
    let dir = tempfile::tempdir().unwrap();
    let mut s3_server = PrivateS3::start(env, &dir.path().join("s3"));
    let (group, prefix) = (unique("g"), unique("archive"));
    let config_for = |name: &str| {
        let mut config = DaemonConfig::new(env, &dir.path().join(name), &group, &[topic], &prefix);
        config.endpoint = s3_server.endpoint();
        config.max_age_seconds = 1;
        // Files of a partition handed away count in the backlog until the leftovers stage
        // resolves them, leftover_timeout_seconds after the hand-over.
        config.extra_consumer = "max_file_bytes = 1MiB\nleftover_timeout_seconds = 2".into();
        config.extra_s3 = "max_local_backlog_bytes = 1MiB".into();
        config.extra_kafka = extra_kafka.into();
        let path = dir.path().join(format!("{name}.cfg"));
        config.write(env, &path);
        path
    };
    let (config_a, config_b) = (config_for("a"), config_for("b"));
    s3_server.down();
    let a = Daemon::start(&config_a, &dir.path().join("a.log"));
    let paused = wait_for_log(&a.log, "pausing consumption until uploads catch up", Duration::from_secs(60)).await;
    assert!(paused, "log:\n{}", a.log_tail());
    let b = Daemon::start(&config_b, &dir.path().join("b.log"));
    let joined = wait_for_log(&b.log, "assigned", Duration::from_secs(60)).await;
    assert!(joined, "log:\n{}", b.log_tail());
    PausedPair { dir, s3_server, group, prefix, a, b }
}
