//! Kafka as the tests drive it: topics, produced records and where they landed, committed offsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::TestEnv;

pub async fn create_topic(env: &TestEnv, topic: &str, partitions: i32) {
    create_topic_with(env, topic, partitions, &[]).await;
}

/// A topic with settings (`max.message.bytes`, ...).
pub async fn create_topic_with(env: &TestEnv, topic: &str, partitions: i32, settings: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = env.client().create().expect("admin client");
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (key, value) in settings {
        new = new.set(key, value);
    }
    let results = admin.create_topics(&[new], &AdminOptions::new()).await.expect("create topics request");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("creating topic {name}: {code}"));
    }
}

/// One produced record as Kafka stored it. MAK v1 writes a null key or value as empty, so the
/// comparison uses `Option::unwrap_or_default`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Produced {
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

pub type ByPartition = BTreeMap<(String, i32), Vec<Produced>>;

/// Distinct keys and values, with empty values, binary values and null keys mixed in.
fn record_for(seq: u64) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let key = if seq % 13 == 5 { None } else { Some(format!("key-{seq}").into_bytes()) };
    let value = match seq % 7 {
        3 => Some(Vec::new()),
        4 => Some(vec![0x00, 0xff, 0x0a, (seq % 251) as u8, 0x80, b'"', b'\\']),
        _ => Some(format!("value-{seq}-{}", "x".repeat((seq % 50) as usize)).into_bytes()),
    };
    (key, value)
}

/// Produces `count` records numbered from `first_seq`, spread over the partitions, and records
/// where each landed.
pub async fn produce(env: &TestEnv, topic: &str, partitions: i32, first_seq: u64, count: u64, into: &mut ByPartition) {
    let producer: FutureProducer = env.client().set("linger.ms", "5").create().expect("producer");
    let mut pending = Vec::new();
    for seq in first_seq..first_seq + count {
        let (key, value) = record_for(seq);
        let partition = (seq % partitions as u64) as i32;
        let producer = producer.clone();
        let topic = topic.to_string();
        pending.push(async move {
            let mut record = FutureRecord::<Vec<u8>, Vec<u8>>::to(&topic).partition(partition);
            if let Some(k) = key.as_ref() {
                record = record.key(k);
            }
            if let Some(v) = value.as_ref() {
                record = record.payload(v);
            }
            let delivery = producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("delivery");
            (
                topic.clone(),
                delivery.partition,
                Produced { offset: delivery.offset, key: key.unwrap_or_default(), value: value.unwrap_or_default() },
            )
        });
    }
    for (topic, partition, produced) in futures::future::join_all(pending).await {
        into.entry((topic, partition)).or_default().push(produced);
    }
    for records in into.values_mut() {
        records.sort_by_key(|r| r.offset);
    }
}

/// Offsets the group has committed, per partition.
pub fn committed(env: &TestEnv, group: &str, partitions: &[(String, i32)]) -> BTreeMap<(String, i32), Option<i64>> {
    let consumer: BaseConsumer = env.client().set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in partitions {
        tpl.add_partition(topic, *partition);
    }
    let result = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    let offsets = result
        .elements()
        .iter()
        .map(|e| {
            (
                (e.topic().to_string(), e.partition()),
                match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                },
            )
        })
        .collect();
    // A list from committed() alive when its consumer drops hangs the drop (librdkafka).
    drop(result);
    offsets
}

/// Commits offsets for a group as another client would (the original, or a lost commit's
/// predecessor).
pub fn commit_offsets(env: &TestEnv, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    use rdkafka::consumer::CommitMode;
    let consumer: BaseConsumer = env.client().set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for &(partition, offset) in offsets {
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit offsets");
}

/// Partitions of the given topics, for committed-offset checks.
pub fn partitions_of(topics: &[&str], partitions: i32) -> Vec<(String, i32)> {
    topics.iter().flat_map(|t| (0..partitions).map(move |p| (t.to_string(), p))).collect()
}

/// The offset each partition must have committed once everything produced is archived.
pub fn expected_commits(produced: &ByPartition) -> BTreeMap<(String, i32), Option<i64>> {
    produced.iter().map(|(tp, records)| (tp.clone(), records.last().map(|r| r.offset + 1))).collect()
}

/// Waits until the group's committed offsets equal `expected`.
pub async fn wait_for_commits(
    env: &TestEnv,
    group: &str,
    expected: &BTreeMap<(String, i32), Option<i64>>,
    timeout: Duration,
) -> BTreeMap<(String, i32), Option<i64>> {
    let partitions: Vec<(String, i32)> = expected.keys().cloned().collect();
    let deadline = Instant::now() + timeout;
    loop {
        let got = {
            let env = env.clone();
            let group = group.to_string();
            let partitions = partitions.clone();
            tokio::task::spawn_blocking(move || committed(&env, &group, &partitions)).await.unwrap()
        };
        if &got == expected || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Produces `count` records of `size` incompressible bytes (xorshift noise) to one partition.
pub async fn produce_noise(
    env: &TestEnv,
    topic: &str,
    partition: i32,
    count: u64,
    size: usize,
    into: &mut ByPartition,
) {
    produce_noisy(env, topic, partition, count, size, 1.0, into).await
}

/// Like [`produce_noise`], with only `noise` (0..=1) of each value random and the rest zeros,
/// so gzip shrinks the files to about that fraction.
pub async fn produce_noisy(
    env: &TestEnv,
    topic: &str,
    partition: i32,
    count: u64,
    size: usize,
    noise: f64,
    into: &mut ByPartition,
) {
    let noisy_len = (size as f64 * noise) as usize;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("message.max.bytes", "2000000")
        .create()
        .expect("producer");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ count;
    for seq in 0..count {
        let mut value = noise_bytes(&mut state, noisy_len);
        value.resize(size, 0);
        let key = format!("noise-{seq}").into_bytes();
        let record = FutureRecord::to(topic).partition(partition).key(&key).payload(&value);
        let delivery = producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("delivery");
        into.entry((topic.to_string(), partition)).or_default().push(Produced { offset: delivery.offset, key, value });
    }
}

/// Produces `transactions` committed transactions of `per_transaction` records of `size` noise
/// bytes to `partition`, each followed by a plain record: a commit marker after every
/// transaction. (None is aborted: the test broker hands aborted records to read-committed
/// consumers too.)
pub async fn produce_transactions(
    env: &TestEnv,
    topic: &str,
    partition: i32,
    transactions: usize,
    per_transaction: usize,
    size: usize,
    into: &mut ByPartition,
) {
    use rdkafka::producer::Producer;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("message.max.bytes", "2000000")
        .set("transactional.id", super::unique("e2e-txn"))
        .create()
        .expect("transactional producer");
    producer.init_transactions(Duration::from_secs(30)).expect("init transactions");
    let plain: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("message.max.bytes", "2000000")
        .create()
        .expect("producer");
    let mut seq = 0u64;
    let value_of = |seq: u64| noise_bytes(&mut (0x9e37_79b9_7f4a_7c15 ^ seq ^ (partition as u64) << 32), size);
    let send = |producer: &FutureProducer, seq: u64, value: Vec<u8>| {
        let producer = producer.clone();
        let topic = topic.to_string();
        async move {
            let key = format!("txn-{seq}").into_bytes();
            let record = FutureRecord::to(&topic).partition(partition).key(&key).payload(&value);
            let delivery = producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("delivery");
            Produced { offset: delivery.offset, key, value }
        }
    };
    for _ in 0..transactions {
        producer.begin_transaction().expect("begin transaction");
        let mut sent = Vec::new();
        for _ in 0..per_transaction {
            seq += 1;
            sent.push(send(&producer, seq, value_of(seq)).await);
        }
        producer.commit_transaction(Duration::from_secs(30)).expect("commit transaction");
        into.entry((topic.to_string(), partition)).or_default().extend(sent);
        seq += 1;
        let record = send(&plain, seq, value_of(seq)).await;
        into.entry((topic.to_string(), partition)).or_default().push(record);
    }
}

/// `len` incompressible bytes from a xorshift generator at `state`, which moves on.
fn noise_bytes(state: &mut u64, len: usize) -> Vec<u8> {
    let mut value = Vec::with_capacity(len + 8);
    while value.len() < len {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        value.extend_from_slice(&state.to_le_bytes());
    }
    value.truncate(len);
    value
}
