//! End to end: the memory budget. Many partitions, a small `memory_limit_bytes` and more data
//! waiting in Kafka than the fetch queue may hold: the daemon archives every record exactly once
//! and its peak RSS stays within the limit plus the fixed base.

mod support;

use std::time::Duration;

use support::*;

const PARTITIONS: i32 = 64;
/// The smallest limit the test config's 2 compressors and 2 uploaders fit in is about 102 MiB.
const LIMIT_MIB: u64 = 112;
/// The process's fixed base (code, thread stacks, runtimes, per-partition state): measured at
/// 15 to 25 MiB idle (docs/benchmarks.md), with room for allocator slack.
const BASE_MIB: u64 = 48;

/// VmHWM (peak resident set) of a live process, in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon's /proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmHWM in kB")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_holds_with_many_partitions_and_a_backlog_larger_than_the_fetch_queue() {
    let env = env();
    let topic = unique("e2e-memory");
    create_topic(&env, &topic, PARTITIONS).await;
    // 48 MiB waiting, twice the fetch queue's bound (40% of 112 MiB, halved): whenever the daemon
    // falls behind, librdkafka stops fetching at that bound. Whether it does here depends on the
    // machine; what this asserts is the limit and exactly once.
    let mut produced = ByPartition::new();
    for partition in 0..PARTITIONS {
        produce_noisy(&env, &topic, partition, 12, 64 * 1024, 0.5, &mut produced).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("memory"));
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    config.extra_main = format!("memory_limit_bytes = {LIMIT_MIB}MiB");
    config.write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));

    let s3 = store(&env, &env.s3_endpoint);
    let total: usize = produced.values().map(Vec::len).sum();
    let archive = wait_for_archive(s3.clone(), &prefix, total, Duration::from_secs(120)).await;
    assert_exactly_once(&produced, &archive);
    let commits = wait_for_commits(&env, &group, &expected_commits(&produced), Duration::from_secs(30)).await;
    assert_eq!(commits, expected_commits(&produced), "every partition committed; log:\n{}", daemon.log_tail());

    let peak_mib = peak_rss_kib(daemon.pid()) / 1024;
    assert!(
        peak_mib <= LIMIT_MIB + BASE_MIB,
        "peak RSS {peak_mib} MiB exceeds the {LIMIT_MIB} MiB limit plus a {BASE_MIB} MiB base; log:\n{}",
        daemon.log_tail()
    );
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "graceful stop exits 0, got {status}");
}
