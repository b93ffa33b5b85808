//! End to end for `kafkatos3 restore`: records archived by the real daemon from the real broker
//! into the real S3 server, restored by the real binary into new topics, and read back with a
//! plain consumer, field by field.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::*;

const PARTITIONS: i32 = 3;
const PER_PARTITION: usize = 60;

fn restore(config: &Path, state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
        .args(["restore", "--config"])
        .arg(config)
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).to_string()
}

/// The records as a restore must reproduce them: every field but the offset.
fn fields(records: &[Full]) -> Vec<Full> {
    records.iter().map(|r| Full { offset: 0, ..r.clone() }).collect()
}

/// How many records the topic's partitions hold as far as the broker's offsets say (0 while
/// the topic does not exist yet).
fn records_in(env: &TestEnv, topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &env.bootstrap).create().expect("consumer");
    (0..PARTITIONS)
        .filter_map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(5)).ok())
        .map(|(low, high)| high - low)
        .sum()
}

/// The first record a consumer of `group` reads from `topic`'s `partition` (it joins the group).
fn first_record_of_group(env: &TestEnv, group: &str, topic: &str, partition: i32) -> Full {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else { continue };
        let message = message.expect("consume");
        if rdkafka::Message::partition(&message) == partition {
            return full(&message);
        }
    }
    panic!("{group} read nothing from {topic}:{partition}");
}

/// Starts `restore` with `args` and kills it with SIGKILL once `topic` holds `landed` records
/// (or after 30 s).
async fn kill_restore_once_landed(env: &TestEnv, config: &Path, state: &Path, args: &[&str], topic: &str, landed: i64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
        .args(["restore", "--config"])
        .arg(config)
        .arg("--state")
        .arg(state)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while records_in(env, topic) < landed && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Waits until the daemon says it stored a group snapshot.
async fn wait_for_group_snapshot(daemon: &Daemon) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !daemon.log_tail().contains("group offsets snapshot stored") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(daemon.log_tail().contains("group offsets snapshot stored"), "no snapshot:\n{}", daemon.log_tail());
}

/// `topic` archived by the daemon until `count` records are in S3, then stopped: the temp dir
/// (keep it alive) and the config naming the archive.
async fn archived(env: &TestEnv, topic: &str, count: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kafkatos3.cfg");
    let (group, prefix) = (unique("g"), unique("archive"));
    DaemonConfig::new(env, &dir.path().join("work"), &group, &[topic], &prefix).write(env, &config);
    let daemon = Daemon::start(&config, &dir.path().join("daemon.log"));
    wait_for_archive(store(env, &env.s3_endpoint), &prefix, count, Duration::from_secs(90)).await;
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "{}", daemon_log(&dir));
    (dir, config)
}

fn daemon_log(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default()
}

/// Kafka's offsets-for-times cut, written out independently of the restore's: from the first
/// record stamped at or after `from`, to the last one before the first stamped at or after `to`.
fn time_cut(records: &[Full], from: i64, to: i64) -> Vec<Full> {
    let start = records.iter().position(|r| r.timestamp >= from).unwrap_or(records.len());
    let end = records[start..].iter().position(|r| r.timestamp >= to).map_or(records.len(), |i| start + i);
    records[start..end].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_puts_back_every_field_continues_after_kill_9_and_cuts_time_windows() {
    let env = env();
    let topic = unique("e2e-restore");
    create_topic(&env, &topic, PARTITIONS).await;
    let all = varied(PER_PARTITION * PARTITIONS as usize);
    // Contiguous slices: each partition has every kind of key, value, header and timestamp.
    let mut produced: Vec<Vec<Full>> = all.chunks(PER_PARTITION).map(<[Full]>::to_vec).collect();
    for (partition, records) in produced.iter_mut().enumerate() {
        produce_full(&env, &topic, partition as i32, records).await;
    }
    // A group of the source's consumers, with its commits: the daemon keeps them in the archive.
    let consumers = unique("e2e-consumers");
    commit_offsets(&env, &consumers, &topic, &[(0, 25), (1, 0), (2, PER_PARTITION as i64)]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kafkatos3.cfg");
    let (group, prefix) = (unique("g"), unique("archive"));
    let mut daemon_config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    daemon_config.extra_sections =
        format!("[groups]\narchive_groups = {}|nothing-else\narchive_groups_interval_seconds = 1\n", consumers);
    daemon_config.write(&env, &config);
    let daemon = Daemon::start(&config, &dir.path().join("daemon.log"));
    let s3 = store(&env, &env.s3_endpoint);
    wait_for_archive(s3.clone(), &prefix, all.len(), Duration::from_secs(90)).await;
    wait_for_group_snapshot(&daemon).await;
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
    // The snapshots are the archive's own: verify takes them for neither data nor foreign keys.
    let out = Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
        .args(["verify", "--offline", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!text(&out.stdout).contains("_kafkatos3"), "{}", text(&out.stdout));
    // ls says what a restore --groups would carry over.
    let out = Command::new(env!("CARGO_BIN_EXE_kafkatos3")).args(["ls", "--config"]).arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let line = format!("1 group ({consumers})");
    assert!(text(&out.stdout).contains("consumer groups: newest snapshot taken "), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(&line), "{line}\n{}", text(&out.stdout));

    // Into the archived topic itself: the daemon would archive the records again.
    let out = restore(&config, &dir.path().join("loop.json"), &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("(a loop)"), "{}", text(&out.stderr));

    // A round trip into a new topic: every field, in order, at the same partition.
    let copy = unique("e2e-restored");
    let map = format!("{topic}={copy}");
    let report_path = dir.path().join("report.json");
    let report_arg = report_path.to_str().unwrap();
    let args = ["--topic-map", &map, "--create-topics", "--report", report_arg];
    let out = restore(&config, &dir.path().join("copy.json"), &args);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    for (partition, records) in produced.iter().enumerate() {
        let restored = consume_partition(&env, &copy, partition as i32, records.len());
        assert_eq!(fields(&restored), fields(records), "partition {partition}");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["records"], all.len());
    let first = &report["partitions"][0];
    assert_eq!(first["target"], format!("{copy}:0"));
    let run = serde_json::json!([{"source_first": 0, "target_first": 0, "count": PER_PARTITION}]);
    assert_eq!(first["offset_map"], run, "consecutive offsets on both sides: one run");

    // The group's commits carried over by the same command run again (complete: it only
    // translates and commits). First from a file, only planned; then from the archive's snapshot.
    let offsets_file = dir.path().join("groups.json");
    let from_file = serde_json::json!({ &consumers: { &topic: {"0": 10} } });
    std::fs::write(&offsets_file, from_file.to_string()).unwrap();
    let planned =
        [&args[..], &["--groups", &consumers, "--groups-plan", "--group-offsets", offsets_file.to_str().unwrap()]]
            .concat();
    let out = restore(&config, &dir.path().join("copy.json"), &planned);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains(&format!("group {consumers}: {topic}:0 at 10 -> {copy}:0 at 10 (to commit (plan only))")),
        "{}",
        text(&out.stdout)
    );
    let with_groups = [&args[..], &["--groups", "e2e-consumers-.*"]].concat();
    let out = restore(&config, &dir.path().join("copy.json"), &with_groups);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("group {consumers}: {topic}:0 at 25 -> {copy}:0 at 25 (committed)")),
        "{}",
        text(&out.stdout)
    );
    let group = consumers;
    let on_target = committed(&env, &group, &partitions_of(&[&copy], PARTITIONS));
    let expected = [(0, 25), (1, 0), (2, PER_PARTITION as i64)].map(|(p, o)| ((copy.clone(), p), Some(o)));
    assert_eq!(on_target, expected.into_iter().collect());
    let first_read = first_record_of_group(&env, &group, &copy, 0);
    assert_eq!(fields(&[first_read]), fields(&produced[0][25..26]), "the group continues at the translated offset");

    // kill -9 in the middle, then the same command: every record exactly once.
    // Created here: the broker creates a topic it is asked about, and the test asks early.
    let resumed = unique("e2e-resumed");
    create_topic(&env, &resumed, PARTITIONS).await;
    let map = format!("{topic}={resumed}");
    let state = dir.path().join("resumed.json");
    let args = ["--topic-map", &map, "--rate-limit", "40", "--parallel", "3", "--settle-ms", "500"];
    // Killed twice: once the first records are in the target, and once more have come after a
    // re-run started (at 40 records/s the whole takes 4.5 s).
    for landed in [1, 60] {
        kill_restore_once_landed(&env, &config, &state, &args, &resumed, landed).await;
    }
    let out = restore(&config, &state, &args);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("of them by an earlier run"), "{}", text(&out.stdout));
    for (partition, records) in produced.iter().enumerate() {
        let restored = consume_partition(&env, &resumed, partition as i32, records.len());
        assert_eq!(fields(&restored), fields(records), "partition {partition} after kill -9 and re-run");
    }
    let out = restore(&config, &state, &args);
    assert!(text(&out.stdout).contains("already complete"), "{}", text(&out.stdout));

    // A time window: records stamped before its start but after its first record stay inside.
    // varied() stamps every third record 1_600_000_000_000 + 1000 * seq, the others far before.
    let (from, to) = (1_600_000_000_000 + 10_000, 1_600_000_000_000 + 40_000);
    let expected = time_cut(&produced[0], from, to);
    assert!(expected.iter().any(|r| r.timestamp < from), "the window holds out-of-order records");
    assert!(expected.len() < produced[0].len(), "the window cuts");
    let window = unique("e2e-window");
    let map = format!("{topic}={window}");
    let (from_arg, to_arg) = (from.to_string(), to.to_string());
    let args =
        ["--topic-map", &map, "--create-topics", "--partitions", "0", "--from-time", &from_arg, "--to-time", &to_arg];
    let out = restore(&config, &dir.path().join("window.json"), &args);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(fields(&consume_partition(&env, &window, 0, expected.len())), fields(&expected));
}

/// Where `--repartition key` must put each record of `sequence` (the archived partitions one
/// after the other): Kafka's murmur2 partition for a key, turns for records without one.
fn placed_by_key(sequence: &[Full], partitions: i32) -> Vec<Vec<Full>> {
    use kafkatos3::tools::restore::repartition::murmur2;
    let mut placed = vec![Vec::new(); partitions as usize];
    let mut turn = 0;
    for record in sequence {
        let partition = match &record.key {
            Some(key) => (murmur2(key) & 0x7fff_ffff) % partitions,
            None => {
                turn += 1;
                (turn - 1) % partitions
            }
        };
        placed[partition as usize].push(record.clone());
    }
    placed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repartition_spreads_records_by_key_or_in_turns_and_a_killed_run_continues_exactly_once() {
    let env = env();
    let topic = unique("e2e-repartition");
    create_topic(&env, &topic, PARTITIONS).await;
    let all = varied(PER_PARTITION * PARTITIONS as usize);
    let mut produced: Vec<Vec<Full>> = all.chunks(PER_PARTITION).map(<[Full]>::to_vec).collect();
    for (partition, records) in produced.iter_mut().enumerate() {
        produce_full(&env, &topic, partition as i32, records).await;
    }
    let (dir, config) = archived(&env, &topic, all.len()).await;
    // The sequence every repartitioning run reads: partition 0, then 1, then 2, each in order.
    let sequence: Vec<Full> = produced.concat();

    // Fewer partitions without --repartition: refused, naming both counts.
    let single = unique("e2e-single");
    create_topic(&env, &single, 1).await;
    let map = format!("{topic}={single}");
    let out = restore(&config, &dir.path().join("refused.json"), &["--topic-map", &map]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains(&format!("target topic {single} has 1 partitions")), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("3 needed"), "{}", text(&out.stderr));

    // Round-robin into one partition: the whole sequence, in order.
    let out = restore(&config, &dir.path().join("single.json"), &["--topic-map", &map, "--repartition", "round-robin"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(fields(&consume_partition(&env, &single, 0, sequence.len())), fields(&sequence));

    // Round-robin into a topic it creates (the archive's 3 partitions): record i on partition i mod 3.
    let created = unique("e2e-created");
    let map = format!("{topic}={created}");
    let args = ["--topic-map", &map, "--repartition", "round-robin", "--create-topics"];
    let out = restore(&config, &dir.path().join("created.json"), &args);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    for partition in 0..PARTITIONS {
        let expected: Vec<Full> =
            sequence.iter().skip(partition as usize).step_by(PARTITIONS as usize).cloned().collect();
        let restored = consume_partition(&env, &created, partition, expected.len());
        assert_eq!(fields(&restored), fields(&expected), "partition {partition}");
    }

    // By key into two partitions, killed with SIGKILL once records have landed, then the same
    // command again: each partition holds exactly its records, once, in order.
    let keyed = unique("e2e-keyed");
    create_topic(&env, &keyed, 2).await;
    let map = format!("{topic}={keyed}");
    let state = dir.path().join("keyed.json");
    let args = ["--topic-map", &map, "--repartition", "key", "--rate-limit", "40", "--settle-ms", "500"];
    kill_restore_once_landed(&env, &config, &state, &args, &keyed, 40).await;
    let out = restore(&config, &state, &args);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("of them by an earlier run"), "{}", text(&out.stdout));
    let expected = placed_by_key(&sequence, 2);
    assert!(expected.iter().all(|p| !p.is_empty()), "both partitions receive records");
    for (partition, records) in expected.iter().enumerate() {
        let restored = consume_partition(&env, &keyed, partition as i32, records.len());
        assert_eq!(fields(&restored), fields(records), "partition {partition} after kill -9 and re-run");
    }
    // The run checked each partition's end against its count (read from the log, not from
    // ListOffsets, which the test broker under-reports): nothing more than the sequence is there.
    for (partition, records) in expected.iter().enumerate() {
        let line = format!("{keyed}:{partition}: {} records at offsets 0-{}", records.len(), records.len() - 1);
        assert!(text(&out.stdout).contains(&line), "{line}\n{}", text(&out.stdout));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_max_message_bytes_stops_the_restore_naming_it_and_settings_that_would_undo_a_restore_are_warned()
{
    let env = env();
    let topic = unique("e2e-large");
    create_topic(&env, &topic, 1).await;
    let mut records = varied(5);
    records[3].value = Some(vec![b'x'; 5000]);
    produce_full(&env, &topic, 0, &mut records).await;
    let (dir, config) = archived(&env, &topic, records.len()).await;

    let small = unique("e2e-small");
    create_topic_with(&env, &small, 1, &[("max.message.bytes", "2000")]).await;
    let map = format!("{topic}={small}");
    let out = restore(&config, &dir.path().join("small.json"), &["--topic-map", &map]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{topic}:0 offset 3 is ")), "{stderr}");
    assert!(stderr.contains(&format!("bytes, over the max.message.bytes (2000) of {small}:0's topic")), "{stderr}");
    assert_eq!(
        fields(&consume_partition(&env, &small, 0, 3)),
        fields(&records[..3]),
        "the records before it are there"
    );

    // Settings that would undo a restore are named before anything is produced.
    let undoing = unique("e2e-undoing");
    let settings = [("message.timestamp.type", "LogAppendTime"), ("retention.ms", "60000")];
    create_topic_with(&env, &undoing, 1, &settings).await;
    let map = format!("{topic}={undoing}");
    let out = restore(&config, &dir.path().join("undoing.json"), &["--topic-map", &map, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("warning: topic {undoing} has message.timestamp.type=LogAppendTime")), "{stderr}");
    assert!(stderr.contains(&format!("warning: topic {undoing} has retention.ms=60000")), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_committed_on_a_transaction_marker_continues_on_the_target_at_the_next_record() {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let env = env();
    let topic = unique("e2e-txn");
    create_topic(&env, &topic, 1).await;
    // Offsets 0-1 plain, 2-3 in a transaction whose commit marker takes offset 4, 5 plain.
    let mut records = varied(6);
    produce_full(&env, &topic, 0, &mut records[..2]).await;
    let transactional: ThreadedProducer<_> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("transactional.id", unique("e2e-txn-producer"))
        .create()
        .expect("transactional producer");
    transactional.init_transactions(Duration::from_secs(30)).expect("init transactions");
    transactional.begin_transaction().expect("begin");
    for record in &records[2..4] {
        let mut message: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&topic).partition(0);
        if let Some(key) = &record.key {
            message = message.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            message = message.payload(value.as_slice());
        }
        transactional.send(message.timestamp(record.timestamp)).map_err(|(e, _)| e).expect("send");
    }
    transactional.commit_transaction(Duration::from_secs(30)).expect("commit transaction");
    produce_full(&env, &topic, 0, &mut records[5..]).await;
    let source_offsets: Vec<i64> = consume_partition(&env, &topic, 0, 5).iter().map(|r| r.offset).collect();
    assert_eq!(source_offsets, [0, 1, 2, 3, 5], "the marker leaves a hole at offset 4");

    // A consumer group that has read up to the marker: its next record is offset 5.
    let consumers = unique("e2e-txn-consumers");
    commit_offsets(&env, &consumers, &topic, &[(0, 4)]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kafkatos3.cfg");
    let (group, prefix) = (unique("g"), unique("archive"));
    let mut daemon_config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    daemon_config.extra_sections = format!("[groups]\narchive_groups = {consumers}\n");
    daemon_config.write(&env, &config);
    let daemon = Daemon::start(&config, &dir.path().join("daemon.log"));
    wait_for_archive(store(&env, &env.s3_endpoint), &prefix, 5, Duration::from_secs(90)).await;
    wait_for_group_snapshot(&daemon).await;
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());

    // Restored, the five records take offsets 0-4: the commit at the marker becomes 4, where the
    // record that was offset 5 now is.
    let copy = unique("e2e-txn-copy");
    let map = format!("{topic}={copy}");
    let out = restore(
        &config,
        &dir.path().join("txn.json"),
        &["--topic-map", &map, "--create-topics", "--groups", &consumers],
    );
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let line = format!("group {consumers}: {topic}:0 at 4 -> {copy}:0 at 4 (committed)");
    assert!(text(&out.stdout).contains(&line), "{line}\n{}", text(&out.stdout));
    let first_read = first_record_of_group(&env, &consumers, &copy, 0);
    assert_eq!(fields(&[first_read]), fields(&records[5..]), "the group continues at the record after the marker");
}
