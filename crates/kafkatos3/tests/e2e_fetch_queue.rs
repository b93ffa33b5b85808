//! Against the real broker, the consumer's take (`kafka::fetch_queue`): librdkafka's
//! position after a take is the next record's, whatever errors the take carried, so a pause
//! and resume (the daemon's back-pressure, or librdkafka's own during a cooperative rebalance)
//! fetches on from there. `rd_kafka_consume_batch_queue` moved it past an end-of-partition
//! event's offset (librdkafka issue 4844), and the resume skipped the next record produced.
//! A transaction marker fetched before a seek does move it: a seek after every pause puts
//! the resume back where the records continue.

mod support;

use std::time::{Duration, Instant};

use kafkatos3::kafka::fetch_queue::{seek, FetchError, FetchQueue, Fetched};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use support::*;

/// Takes from `queue` (serving the consumer's own queue in between) until `until` says so or
/// 30 s have passed: the offsets taken, and the log ends that end-of-partition events of
/// `topic` reported with them.
fn take_until(
    consumer: &BaseConsumer,
    queue: &FetchQueue,
    topic: &str,
    offsets: &mut Vec<i64>,
    until: impl Fn(&[i64], usize) -> bool,
) -> Vec<i64> {
    let mut ends = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !until(offsets, ends.len()) {
        assert!(Instant::now() < deadline, "took {offsets:?} and log ends {ends:?} in 30 s");
        if let Some(Err(error)) = consumer.poll(Duration::ZERO) {
            panic!("consumer error: {error}");
        }
        queue.take(Duration::from_millis(100), &mut |record| match record {
            Ok(record) => offsets.push(record.offset()),
            Err(FetchError { error: KafkaError::PartitionEOF(0), topic: Some(of), offset, .. }) if of == topic => {
                ends.push(offset)
            }
            Err(error) => panic!("fetch error: {error:?}"),
        });
    }
    ends
}

/// A consumer of partition 0 of `topic` from its first offset, routed to a fetch queue (the
/// queue is dropped first, as it must be).
fn routed_from_the_start(env: &TestEnv, topic: &str) -> (BaseConsumer, FetchQueue) {
    let consumer: BaseConsumer = env
        .client()
        .set("group.id", unique("fetchq"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let queue = FetchQueue::new(&consumer);
    assert!(queue.route(&consumer, topic, 0), "the partition is routed to the fetch queue");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).expect("assign");
    (consumer, queue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_paused_at_its_end_and_resumed_after_more_records_fetches_every_one_of_them() {
    let env = env();
    let topic = unique("e2e-fetchq-resume");
    create_topic(&env, &topic, 1).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 1, 0, 10, &mut produced).await;

    let (consumer, queue) = routed_from_the_start(&env, &topic);

    // All ten, then the end of the log: the event carries the log end's offset (10).
    let mut offsets = Vec::new();
    let ends = take_until(&consumer, &queue, &topic, &mut offsets, |offsets, ends| offsets.len() == 10 && ends > 0);
    assert_eq!(offsets, (0..10).collect::<Vec<i64>>());
    assert_eq!(ends, [10], "the end event names its partition and the log end");

    let mut paused = TopicPartitionList::new();
    paused.add_partition(&topic, 0);
    consumer.pause(&paused).expect("pause");
    produce(&env, &topic, 1, 10, 5, &mut produced).await;
    // Paused: nothing of the new records arrives.
    std::thread::sleep(Duration::from_millis(500));
    queue.take(Duration::from_millis(300), &mut |record| {
        assert!(record.is_err(), "a record arrived while its partition was paused");
    });

    // The resume fetches from the position: the next record, 10, and on.
    consumer.resume(&paused).expect("resume");
    take_until(&consumer, &queue, &topic, &mut offsets, |offsets, _| offsets.len() >= 15);
    // Anything else would have come with the same fetch.
    take_until(&consumer, &queue, &topic, &mut offsets, |_, ends| ends > 0);
    assert_eq!(offsets, (0..15).collect::<Vec<i64>>(), "every offset once, in order, none skipped");
    let expected: Vec<i64> = produced[&(topic.clone(), 0)].iter().map(|r| r.offset).collect();
    assert_eq!(offsets, expected);
    drop(queue);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_hands_over_every_record_queued_in_order_and_the_next_take_waits_for_new_ones() {
    let env = env();
    let topic = unique("e2e-fetchq-batch");
    create_topic(&env, &topic, 1).await;
    let mut produced = ByPartition::new();
    let count = 3 * 1024 + 17;
    produce(&env, &topic, 1, 0, count, &mut produced).await;

    let (_consumer, queue) = routed_from_the_start(&env, &topic);

    // Once the whole topic is fetched into the queue (and its end reported), one take hands all
    // of it over, in order, and the queue is empty after it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue.len() < count as usize + 1 {
        assert!(Instant::now() < deadline, "{} of {count} records and the end queued in 30 s", queue.len());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The length counts librdkafka's other ops too (a version barrier): give the end event time.
    std::thread::sleep(Duration::from_millis(500));
    let mut offsets = Vec::new();
    let mut ends = 0;
    let taken = queue.take(Duration::from_millis(100), &mut |record| match record {
        Ok(record) => {
            assert_eq!((record.topic(), record.partition()), (topic.as_str(), 0));
            offsets.push(record.offset());
        }
        Err(FetchError { error: KafkaError::PartitionEOF(0), offset, .. }) => {
            assert_eq!(offset, count as i64, "the log end");
            ends += 1
        }
        Err(error) => panic!("fetch error: {error:?}"),
    });
    assert_eq!((taken, ends), (count as usize + 1, 1), "every record and the end event in one take");
    assert_eq!(offsets, (0..count as i64).collect::<Vec<i64>>(), "in order, each once");
    assert!(queue.is_empty());

    // Nothing queued: the next take waits its time for a first record and hands over nothing.
    let started = Instant::now();
    assert_eq!(
        queue.take(Duration::from_millis(200), &mut |record| panic!("nothing was produced: {:?}", record.err())),
        0
    );
    assert!(started.elapsed() >= Duration::from_millis(150), "waited {:?}", started.elapsed());
    drop(queue);
}

/// Offsets 0-4 plain, 5-7 in a committed transaction whose marker takes offset 8, 9-10 plain.
async fn produce_around_a_transaction(env: &TestEnv, topic: &str) {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let mut produced = ByPartition::new();
    produce(env, topic, 1, 0, 5, &mut produced).await;
    let transactional: ThreadedProducer<_> =
        env.client().set("transactional.id", unique("e2e-fetchq-txn")).create().expect("transactional producer");
    transactional.init_transactions(Duration::from_secs(30)).expect("init transactions");
    transactional.begin_transaction().expect("begin");
    for n in 0..3u8 {
        let value = [n; 10];
        let message: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(0).payload(&value);
        transactional.send(message).map_err(|(e, _)| e).expect("send");
    }
    transactional.commit_transaction(Duration::from_secs(30)).expect("commit transaction");
    produce(env, topic, 1, 5, 2, &mut produced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_after_each_pause_resumes_where_the_records_continue_though_a_stale_marker_was_served() {
    let env = env();
    let topic = unique("e2e-fetchq-marker");
    create_topic(&env, &topic, 1).await;
    produce_around_a_transaction(&env, &topic).await;

    let (consumer, queue) = routed_from_the_start(&env, &topic);
    // Every record and the marker are fetched into the queue, none taken yet.
    std::thread::sleep(Duration::from_secs(2));

    // The daemon's rewind: a seek (to offset 1) and a pause, with the seek that follows every
    // pause (`pipeline::consume::hold`). The take serves what was queued, now outdated: the
    // records are dropped, the marker moves librdkafka's position to 9.
    let mut partition = TopicPartitionList::new();
    partition.add_partition(&topic, 0);
    let hold = || assert!(seek(&consumer, &[(topic.as_str(), 0, 1)], Duration::from_secs(10)).is_empty(), "seek");
    consumer.seek(&topic, 0, Offset::Offset(1), Duration::from_secs(10)).expect("seek");
    consumer.pause(&partition).expect("pause");
    hold();
    queue.take(Duration::from_millis(300), &mut |record| {
        assert!(record.is_err(), "a record fetched before the seek was handed over");
    });
    // A pause now copies that position (librdkafka's own, at a rebalance): the rebalance
    // callback's seek puts it back. Without it, the resume fetched 9 and 10 only.
    consumer.pause(&partition).expect("pause again");
    hold();
    consumer.resume(&partition).expect("resume");

    // The resume fetches from the seek's offset: every record after it, none skipped.
    let mut after = Vec::new();
    take_until(&consumer, &queue, &topic, &mut after, |after, _| after.last() == Some(&10));
    assert_eq!(after, [1, 2, 3, 4, 5, 6, 7, 9, 10], "the marker leaves a hole at 8, nothing else");
    drop(queue);
}
