//! Records with every field a Kafka record has (null versus empty, headers with repeated keys
//! and null values, explicit timestamps), produced and consumed by plain clients.

use std::time::Duration;

use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use super::{unique, TestEnv};

/// One record as produced, every field versions 2 and 3 keep.
#[derive(Clone, Debug, PartialEq)]
pub struct Full {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Records covering what version 1 loses: null versus empty keys and values, tombstones,
/// binary bytes, headers (several, repeated keys, null and empty values), explicit CreateTime
/// timestamps (not in increasing order, some close to 0).
pub fn varied(count: usize) -> Vec<Full> {
    let header = |key: &str, value: Option<&[u8]>| (key.to_string(), value.map(<[u8]>::to_vec));
    (0..count)
        .map(|seq| {
            let key = match seq % 5 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some(vec![0x00, 0xff, 0x0a, seq as u8]),
                _ => Some(format!("key-{seq}").into_bytes()),
            };
            let value = match seq % 7 {
                0 => None, // a tombstone
                1 => Some(Vec::new()),
                2 => Some(vec![0x80, b'"', b'\\', 0x00, (seq % 251) as u8]),
                _ => Some(format!("value-{seq}-{}", "x".repeat(seq % 40)).into_bytes()),
            };
            let headers = match seq % 4 {
                0 => vec![],
                1 => vec![header("trace", Some(b"abc")), header("trace", Some(b"def")), header("null", None)],
                2 => vec![header("empty", Some(b"")), header("bin", Some(&[0xff, 0x00, seq as u8]))],
                _ => vec![header("only-null", None)],
            };
            let timestamp = match seq % 3 {
                0 => 1_600_000_000_000 + seq as i64 * 1000,
                1 => 1_500_000_000_000 - seq as i64,
                _ => seq as i64,
            };
            Full { offset: -1, timestamp, key, value, headers }
        })
        .collect()
}

/// Produces `records` in order to `partition` (one at a time, so offsets follow the list) and
/// fills in their offsets.
pub async fn produce_full(env: &TestEnv, topic: &str, partition: i32, records: &mut [Full]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for record in records.iter_mut() {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &record.headers {
            headers = headers.insert(Header { key, value: value.as_deref() });
        }
        let mut message =
            FutureRecord::<[u8], [u8]>::to(topic).partition(partition).timestamp(record.timestamp).headers(headers);
        if let Some(key) = &record.key {
            message = message.key(key);
        }
        if let Some(value) = &record.value {
            message = message.payload(value);
        }
        let delivery = producer.send(message, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("delivery");
        record.offset = delivery.offset;
    }
}

/// What a plain consumer gets back from the broker: tells a broker that drops fields apart
/// from a daemon that does.
pub fn consume_plain(env: &TestEnv, topic: &str, count: usize) -> Vec<Full> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("group.id", unique("plain"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while got.len() < count && std::time::Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else { continue };
        got.push(full(&message.expect("consume")));
    }
    got
}

/// Every record of one partition, read from its beginning with a plain consumer (assigned, no
/// group): `count` of them, then whatever else arrives within a second and a half, so that a
/// duplicate shows as a longer list.
pub fn consume_partition(env: &TestEnv, topic: &str, partition: i32, count: usize) -> Vec<Full> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("group.id", unique("partition-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Beginning).expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut quiet_until: Option<std::time::Instant> = None;
    loop {
        let now = std::time::Instant::now();
        if now >= deadline || quiet_until.is_some_and(|until| now >= until) {
            break;
        }
        if got.len() >= count && quiet_until.is_none() {
            quiet_until = Some(now + Duration::from_millis(1500));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
        got.push(full(&message.expect("consume")));
    }
    got
}

/// A consumed record, every field.
pub fn full(message: &rdkafka::message::BorrowedMessage<'_>) -> Full {
    use rdkafka::Message;
    let headers = message.headers().map_or_else(Vec::new, |headers| {
        headers.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect()
    });
    Full {
        offset: message.offset(),
        timestamp: message.timestamp().to_millis().unwrap_or(-1),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
    }
}
