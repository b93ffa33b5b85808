//! The Kafka side of a restore: what the target topics are (partition counts, settings, end
//! offsets), creating them, and the producer that writes the records.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::kafka::ToolContext;

use crate::names::TopicPartition;

const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the target cluster could not be used; names the topic or partition.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("creating topic {topic}: {reason}")]
    Create { topic: String, reason: String },
    #[error("{tp}: no end of the log after {}s of reading it", METADATA_TIMEOUT.as_secs())]
    NoEnd { tp: TopicPartition },
    #[error("{tp}: {error}")]
    Partition { tp: TopicPartition, error: KafkaError },
    #[error("{tp}: no record at offset {offset} within {}s", METADATA_TIMEOUT.as_secs())]
    NoRecord { tp: TopicPartition, offset: i64 },
}

/// A record read back from the target, for comparison with the archived one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// `fetch_watermarks`, retried for a while: a topic just created has no leader for a moment.
fn watermarks(consumer: &BaseConsumer<ToolContext>, tp: &TopicPartition) -> Result<(i64, i64), TargetError> {
    let deadline = Instant::now() + METADATA_TIMEOUT;
    loop {
        match consumer.fetch_watermarks(&tp.topic, tp.partition, METADATA_TIMEOUT) {
            Ok(marks) => return Ok(marks),
            Err(error) if Instant::now() >= deadline => return Err(TargetError::Partition { tp: tp.clone(), error }),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The target cluster, as the config's `[kafka]` settings (or `--bootstrap`) reach it.
pub struct Target {
    client: ClientConfig,
}

impl Target {
    pub fn new(client: ClientConfig) -> Self {
        Target { client }
    }

    /// The partition count of each topic that exists. Asks for every topic's metadata, since
    /// asking for one by name makes a broker with auto-creation create it.
    pub fn partition_counts(&self) -> Result<BTreeMap<String, i32>, TargetError> {
        let consumer = crate::kafka::consumer(&self.client)?;
        let metadata = consumer.fetch_metadata(None, METADATA_TIMEOUT)?;
        // A topic the broker reports with an error (still being created, being deleted) is not
        // there yet for a restore.
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    }

    /// Creates `topics` (name, partitions) with the broker's default replication.
    pub fn create_topics(
        &self,
        topics: &[(String, i32)],
        runtime: &tokio::runtime::Runtime,
    ) -> Result<(), TargetError> {
        let admin = crate::kafka::admin(&self.client)?;
        let new: Vec<NewTopic> =
            topics.iter().map(|(name, count)| NewTopic::new(name, *count, TopicReplication::Fixed(-1))).collect();
        let results = runtime.block_on(admin.create_topics(&new, &AdminOptions::new()))?;
        for result in results {
            result.map_err(|(topic, code)| TargetError::Create { topic, reason: code.to_string() })?;
        }
        // Created is not yet visible everywhere: wait until the metadata shows every partition.
        let deadline = std::time::Instant::now() + CREATED_VISIBLE_WITHIN;
        loop {
            let counts = self.partition_counts()?;
            let pending = topics.iter().find(|(name, count)| counts.get(name).is_none_or(|have| have < count));
            match pending {
                None => return Ok(()),
                Some((topic, _)) if std::time::Instant::now() >= deadline => {
                    return Err(TargetError::Create {
                        topic: topic.clone(),
                        reason: format!(
                            "created, but not in the metadata after {} s",
                            CREATED_VISIBLE_WITHIN.as_secs()
                        ),
                    })
                }
                Some(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
            }
        }
    }

    /// The settings of `topics` a restore cares about (`message.timestamp.type`, `retention.ms`,
    /// `max.message.bytes`), by topic; what the broker will not describe is left out.
    pub fn topic_settings(
        &self,
        topics: &[String],
        runtime: &tokio::runtime::Runtime,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, TargetError> {
        const WANTED: [&str; 3] = ["message.timestamp.type", "retention.ms", "max.message.bytes"];
        let admin = crate::kafka::admin(&self.client)?;
        let specifiers: Vec<ResourceSpecifier> = topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let results = runtime.block_on(admin.describe_configs(&specifiers, &AdminOptions::new()))?;
        let mut settings = BTreeMap::new();
        for (topic, result) in topics.iter().zip(results) {
            let Ok(resource) = result else { continue };
            let entries = resource
                .entries
                .iter()
                .filter(|e| WANTED.contains(&e.name.as_str()))
                .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                .collect();
            settings.insert(topic.clone(), entries);
        }
        Ok(settings)
    }

    /// The end offset of each partition (the offset its next record gets). Brokers disagree on
    /// what ListOffsets says for the latest offset (one test broker answers with the last batch's
    /// base offset plus one), so the answer is read from the log itself: from there to the end
    /// of the partition, which the fetch responses state.
    pub fn end_offsets(&self, partitions: &[TopicPartition]) -> Result<BTreeMap<TopicPartition, i64>, TargetError> {
        let mut ends = BTreeMap::new();
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        // One topic at a time: the end-of-partition event names only the partition number.
        for (topic, numbers) in by_topic {
            self.topic_ends(topic, &numbers, &mut ends)?;
        }
        Ok(ends)
    }

    /// The first offset each partition still holds (its log start).
    pub fn start_offsets(&self, partitions: &[TopicPartition]) -> Result<BTreeMap<TopicPartition, i64>, TargetError> {
        let consumer = crate::kafka::consumer(&self.client)?;
        let mut starts = BTreeMap::new();
        for tp in partitions {
            let (low, _) = watermarks(&consumer, tp)?;
            starts.insert(tp.clone(), low);
        }
        Ok(starts)
    }

    /// The record at `offset` of `tp`.
    pub fn record_at(&self, tp: &TopicPartition, offset: i64) -> Result<TargetRecord, TargetError> {
        use rdkafka::message::Headers as _;
        let consumer = self.reader()?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset))?;
        consumer.assign(&assignment)?;
        let deadline = Instant::now() + METADATA_TIMEOUT;
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) if message.offset() == offset => {
                    let headers = message.headers().map_or_else(Vec::new, |headers| {
                        headers.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect()
                    });
                    return Ok(TargetRecord {
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec),
                        headers,
                    });
                }
                Some(Ok(_)) | None | Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(error)) => return Err(TargetError::Partition { tp: tp.clone(), error }),
            }
        }
        Err(TargetError::NoRecord { tp: tp.clone(), offset })
    }

    /// A consumer that only reads assigned partitions (no group, no commits).
    fn reader(&self) -> Result<BaseConsumer<ToolContext>, TargetError> {
        let mut client = self.client.clone();
        client
            .set("group.id", "kafkatos3-restore-probe")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_uncommitted")
            // The end of an empty partition is known when a fetch returns: do not let the broker
            // hold the fetch for records that are not coming.
            .set("fetch.wait.max.ms", "10");
        Ok(crate::kafka::consumer(&client)?)
    }

    fn topic_ends(
        &self,
        topic: &str,
        numbers: &[i32],
        ends: &mut BTreeMap<TopicPartition, i64>,
    ) -> Result<(), TargetError> {
        let consumer = self.reader()?;
        let mut assignment = TopicPartitionList::new();
        for &partition in numbers {
            let (low, listed) = watermarks(&consumer, &TopicPartition::new(topic, partition))?;
            let from = listed.max(low);
            ends.insert(TopicPartition::new(topic, partition), from);
            assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
        }
        consumer.assign(&assignment)?;
        let mut open: HashSet<i32> = numbers.iter().copied().collect();
        let deadline = Instant::now() + METADATA_TIMEOUT;
        while let Some(&partition) = open.iter().next() {
            if Instant::now() >= deadline {
                return Err(TargetError::NoEnd { tp: TopicPartition::new(topic, partition) });
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let end = ends.entry(TopicPartition::new(topic, message.partition())).or_insert(0);
                    *end = (*end).max(message.offset() + 1);
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    open.remove(&partition);
                }
                Some(Err(error)) => return Err(error.into()),
                None => {}
            }
        }
        Ok(())
    }
}

/// Counts what the producer delivered and keeps the first failure.
#[derive(Default)]
pub struct Deliveries {
    pub delivered: AtomicU64,
    pub failed: Mutex<Option<(TopicPartition, KafkaError)>>,
    /// Set with `failed`, read by the workers at every record: they stop producing.
    pub any_failed: AtomicBool,
    /// The producer's OAUTHBEARER tokens (Amazon MSK IAM).
    pub tokens: crate::kafka::Tokens,
}

impl ClientContext for Deliveries {
    crate::kafka::answer_token_refreshes!();
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                let mut failed = self.failed.lock().expect("delivery lock");
                if failed.is_none() {
                    *failed = Some((TopicPartition::new(message.topic(), message.partition()), error.clone()));
                }
                self.any_failed.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// How long a created topic may take to show all its partitions in the metadata.
const CREATED_VISIBLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The producer: idempotent, and stopping at its first failed batch (`enable.gapless.guarantee`)
/// so that a target partition only ever holds a prefix of what was sent to it, in order. Records
/// never time out in its queue (`message.timeout.ms = 0`): the gapless guarantee does not cover
/// timed-out records, and records sent after a timed-out one would leave a hole. Batches stay
/// under the smallest target topic's `max.message.bytes` and the producer takes records up to the
/// largest (`limits`: by topic, those the broker told).
pub fn producer(
    client: &ClientConfig,
    limits: &BTreeMap<String, u64>,
) -> Result<ThreadedProducer<Deliveries>, KafkaError> {
    let mut client = client.clone();
    client.set("enable.idempotence", "true").set("enable.gapless.guarantee", "true").set("message.timeout.ms", "0");
    let batch = limits.values().min().map_or(1_000_000, |&limit| limit.clamp(1, 1_000_000));
    let mut settings =
        vec![("linger.ms", "20".to_string()), ("batch.size", batch.to_string()), ("compression.type", "lz4".into())];
    // librdkafka refuses a record over its own limit (1 MB by default) before sending it: a
    // topic that takes larger records must get them back.
    if let Some(&limit) = limits.values().max() {
        settings.push(("message.max.bytes", limit.clamp(1000, 1_000_000_000).to_string()));
    }
    for (key, value) in settings {
        if client.get(key).is_none() {
            client.set(key, value);
        }
    }
    crate::kafka::create_with(&client, |tokens| Deliveries { tokens, ..Deliveries::default() })
}
