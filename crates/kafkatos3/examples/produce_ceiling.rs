//! produce_ceiling - what a plain librdkafka producer does with the records a restore sends: the
//! ceiling of `kafkatos3 restore`'s throughput (bench/restore.py).
//!
//! Reads every record of TOPIC from BOOTSTRAP into memory (not timed), creates TARGET with as many
//! partitions, then produces them, timed, to the same partitions with exactly the restore's producer settings
//! (`tools::restore::target::producer`: idempotent, gapless, lz4, linger 20 ms, 1 MB batches)
//! and waits until every one is acknowledged. Prints one JSON line: records, seconds.
//!
//! ```text
//! cargo build --release --example produce_ceiling
//! target/release/examples/produce_ceiling BOOTSTRAP TOPIC TARGET
//! ```

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

struct Owned {
    partition: i32,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, bootstrap, topic, target] = &args[..] else {
        eprintln!("usage: produce_ceiling BOOTSTRAP TOPIC TARGET");
        std::process::exit(2);
    };
    let (records, partitions) = read_all(bootstrap, topic);
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", bootstrap);
    // The target gets the source's partition count, as the restore's --create-topics gives it.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    kafkatos3::tools::restore::target::Target::new(client.clone())
        .create_topics(&[(target.clone(), partitions as i32)], &runtime)
        .expect("create the target topic");
    let producer = kafkatos3::tools::restore::target::producer(&client, &Default::default()).expect("producer");
    let started = Instant::now();
    for record in &records {
        let mut message: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(target).partition(record.partition);
        if !record.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header { key, value: value.as_deref() });
            }
            message = message.headers(headers);
        }
        if let Some(key) = &record.key {
            message = message.key(key);
        }
        if let Some(value) = &record.value {
            message = message.payload(value);
        }
        if let Some(timestamp) = record.timestamp {
            message = message.timestamp(timestamp);
        }
        loop {
            match producer.send(message) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => panic!("produce: {error}"),
            }
        }
    }
    producer.flush(Duration::from_secs(600)).expect("flush");
    let seconds = started.elapsed().as_secs_f64();
    println!("{{\"records\": {}, \"seconds\": {seconds:.3}}}", records.len());
}

/// Every record of `topic`, read from each partition's start to its end, and its partition count.
fn read_all(bootstrap: &str, topic: &str) -> (Vec<Owned>, usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "produce-ceiling")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30)).expect("metadata");
    let partitions = metadata.topics()[0].partitions().len();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let (mut records, mut ended) = (Vec::new(), 0);
    while ended < partitions {
        match consumer.poll(Duration::from_secs(1)) {
            Some(Ok(message)) => records.push(Owned {
                partition: message.partition(),
                timestamp: message.timestamp().to_millis(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers: message.headers().map_or_else(Vec::new, |headers| {
                    headers.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect()
                }),
            }),
            Some(Err(KafkaError::PartitionEOF(_))) => ended += 1,
            Some(Err(error)) => panic!("consume: {error}"),
            None => {}
        }
    }
    (records, partitions)
}
