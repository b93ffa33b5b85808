//! Kafka faults the test broker cannot produce on demand - request errors and a broker going
//! down - from librdkafka's in-process mock cluster (the real Kafka protocol over TCP), with
//! the real daemon and the real S3 server.

mod support;

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_fetch_errors_a_broker_outage_and_kill_9_lose_and_duplicate_nothing() {
    let env = env();
    let cluster = MockCluster::new(3).expect("mock cluster");
    let kafka = TestEnv { bootstrap: cluster.bootstrap_servers(), ..env.clone() };
    let topic = unique("mock");
    cluster.create_topic(&topic, 2, 1).expect("create topic");
    let mut produced = ByPartition::new();
    produce(&kafka, &topic, 2, 0, 200, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let config = dir.path().join("kafkatos3.cfg");
    DaemonConfig::new(&kafka, &dir.path().join("work"), &group, &[&topic], &prefix).write(&kafka, &config);
    // The first commits fail (a commit that fails must be sent again, or the group's offset
    // would stay behind what S3 holds) and the first fetches are refused.
    use RDKafkaRespErr::*;
    cluster.request_errors(RDKafkaApiKey::OffsetCommit, &[RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 6]);
    cluster.request_errors(RDKafkaApiKey::Fetch, &[RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 4]);
    let daemon = Daemon::start(&config, &dir.path().join("first.log"));
    let s3 = store(&env, &env.s3_endpoint);
    let archive = wait_for_archive(s3.clone(), &prefix, 200, Duration::from_secs(90)).await;
    assert_exactly_once(&produced, &archive);
    let commits = wait_for_commits(&kafka, &group, &expected_commits(&produced), Duration::from_secs(60)).await;
    assert_eq!(commits, expected_commits(&produced), "failed commits are sent again:\n{}", daemon.log_tail());

    // The leader of partition 0 goes down for a while with records waiting.
    cluster.partition_leader(&topic, 0, Some(1)).expect("move the leader");
    produce(&kafka, &topic, 2, 200, 100, &mut produced).await;
    cluster.broker_down(1).expect("broker down");
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.broker_up(1).expect("broker up");
    let archive = wait_for_archive(s3.clone(), &prefix, 300, Duration::from_secs(90)).await;
    assert_exactly_once(&produced, &archive);

    // kill -9 with uncommitted work in flight, more records, a restart on the same disk.
    produce(&kafka, &topic, 2, 300, 100, &mut produced).await;
    daemon.kill9();
    let daemon = Daemon::start(&config, &dir.path().join("second.log"));
    let archive = wait_for_archive(s3.clone(), &prefix, 400, Duration::from_secs(90)).await;
    let commits = wait_for_commits(&kafka, &group, &expected_commits(&produced), Duration::from_secs(60)).await;
    // Anything archived twice would show as more records once the daemon has settled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = read_archive(s3.clone(), &prefix).await;
    let log = daemon.log_tail();
    daemon.terminate(Duration::from_secs(30));
    assert_eq!(archive.total(), settled.total(), "{log}");
    assert_exactly_once(&produced, &settled);
    assert_eq!(commits, expected_commits(&produced), "{log}");
}
