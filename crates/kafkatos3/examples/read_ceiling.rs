//! read_ceiling - the read ceiling of `bench/run.py`: the least a librdkafka consumer can do with a
//! topic. A plain `BaseConsumer` (librdkafka defaults, no group membership, no commits) is assigned
//! every partition from the beginning and counts records and key+value bytes until it has seen the
//! number of records it was told the topic holds; the payload goes nowhere (the /dev/null of the
//! benchmark). Prints one JSON line on stdout.
//!
//! ```text
//! cargo build --release --example read_ceiling
//! target/release/examples/read_ceiling BOOTSTRAP TOPIC EXPECTED_RECORDS [TIMEOUT_S] [librdkafka.key=value ...]
//! ```
//!
//! Exit status 0 when every expected record was read, 1 on timeout or error.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: read_ceiling BOOTSTRAP TOPIC EXPECTED_RECORDS [TIMEOUT_S] [key=value ...]");
        std::process::exit(2);
    }
    let (bootstrap, topic) = (&args[1], &args[2]);
    let expected: u64 = args[3].parse().expect("EXPECTED_RECORDS: a whole number");
    let timeout = Duration::from_secs_f64(args.get(4).map_or(600.0, |s| s.parse().expect("TIMEOUT_S: seconds")));

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // A group id is needed by librdkafka's consumer, but nothing joins or commits: assign() only.
        .set("group.id", "kafkatos3-read-ceiling")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for extra in args.iter().skip(5) {
        let (key, value) = extra.split_once('=').expect("extra settings are key=value");
        config.set(key, value);
    }
    let consumer: BaseConsumer = config.create().expect("create consumer");

    let started = Instant::now();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30)).expect("metadata");
    let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p as i32, Offset::Beginning).expect("add partition");
    }
    consumer.assign(&assignment).expect("assign");

    let (mut records, mut bytes) = (0u64, 0u64);
    let mut first_record_s = None;
    while records < expected {
        if started.elapsed() > timeout {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                first_record_s.get_or_insert_with(|| started.elapsed().as_secs_f64());
                records += 1;
                bytes += (message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len)) as u64;
            }
            Some(Err(error)) => eprintln!("read_ceiling: {error}"),
            None => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"records\": {records}, \"bytes\": {bytes}, \"partitions\": {partitions}, \"seconds\": {seconds:.3}, \
         \"first_record_s\": {:.3}, \"complete\": {}}}",
        first_record_s.unwrap_or(-1.0),
        records >= expected
    );
    std::process::exit(if records >= expected { 0 } else { 1 });
}
