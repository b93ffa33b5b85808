//! Group snapshots, beside the pipeline: every `archive_groups_interval_seconds` the committed
//! offsets of the groups `[groups] archive_groups` matches, on the archived topics, are read from
//! the cluster and stored in the archive ([`crate::archive::groups`]) when they differ from this
//! instance's last snapshot. A restore then carries the groups over to the restored topics.
//!
//! Nothing here touches the records or the daemon's own offsets: a failed reading or upload is
//! logged and tried again at the next interval.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::archive::{GroupOffsets, GroupSnapshot};
use crate::config::{Config, GroupsConfig};
use crate::pipeline::stop::StageStop;
use crate::pipeline::ArchiveAccess;

/// Longest one broker request or the snapshot's upload may take (a shutdown waits for at most
/// one of them: the thread looks at the stop flag between groups).
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
enum SnapshotError {
    #[error("{what}: {error}")]
    Kafka { what: String, error: KafkaError },
    #[error("{0}")]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("storing the snapshot timed out after {} s", REQUEST_LIMIT.as_secs())]
    Timeout,
}

/// What the snapshot thread works with.
pub struct GroupKeeper {
    pub settings: GroupsConfig,
    /// `[kafka]` and the bootstrap servers: the daemon's cluster, as its consumers reach it.
    pub client: ClientConfig,
    /// The archived topics (`topic_whitelist`): the only partitions whose commits are kept.
    pub topics: crate::config::topics::TopicSet,
    pub archive: ArchiveAccess,
    /// Names this instance's snapshots.
    pub instance: String,
    pub stop: Arc<StageStop>,
}

impl GroupKeeper {
    pub fn from_config(config: &Config, settings: GroupsConfig, archive: ArchiveAccess, stop: Arc<StageStop>) -> Self {
        let mut client = crate::config::kafka::security_config(config);
        client.set("bootstrap.servers", &config.consumer.kafka_bootstrap);
        if !config.kafka_sets("client.id") {
            client.set("client.id", "kafkatos3-groups");
        }
        let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
        GroupKeeper {
            settings,
            client,
            topics: config.consumer.topic_whitelist.clone(),
            archive,
            instance: format!("{host}-{}", std::process::id()),
            stop,
        }
    }

    /// The committed offsets now, of every matching group on every archived partition; None when
    /// the daemon stops meanwhile. A group whose offsets cannot be read keeps those of `last`
    /// (logged): one group the daemon may not read never hides all the others.
    fn read(&self, last: Option<&GroupSnapshot>) -> Result<Option<GroupSnapshot>, SnapshotError> {
        let kafka = |what: &str| {
            let what = what.to_string();
            move |error| SnapshotError::Kafka { what, error }
        };
        let admin = crate::kafka::consumer(&self.client).map_err(kafka("creating a client"))?;
        let metadata = admin.fetch_metadata(None, REQUEST_LIMIT).map_err(kafka("reading the topics"))?;
        let topics: BTreeMap<String, i32> = metadata
            .topics()
            .iter()
            .filter(|t| self.topics.matches(t.name()) && !t.partitions().is_empty())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect();
        let listed = admin.fetch_group_list(None, REQUEST_LIMIT).map_err(kafka("listing the groups"))?;
        let mut names: Vec<String> = listed
            .groups()
            .iter()
            .map(|g| g.name().to_string())
            .filter(|name| self.settings.archive_groups.is_match(name))
            .collect();
        names.sort();
        names.dedup();
        let mut groups = GroupOffsets::new();
        for name in names {
            if self.stop.is_stopped() {
                return Ok(None);
            }
            let offsets = match self.committed(&name, &topics) {
                Ok(offsets) => offsets,
                Err(error) => {
                    tracing::warn!(group = %name, %error, "reading a group's committed offsets failed; its last known ones are kept");
                    last.and_then(|l| l.groups.get(&name).cloned()).unwrap_or_default()
                }
            };
            if !offsets.is_empty() {
                groups.insert(name, offsets);
            }
        }
        let taken_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        Ok(Some(GroupSnapshot {
            format: crate::archive::groups::SNAPSHOT_FORMAT,
            taken_ms: taken_ms as i64,
            instance: self.instance.clone(),
            topics,
            groups,
        }))
    }

    /// One group's commits on `topics` (OffsetFetch: the group is not joined).
    fn committed(
        &self,
        group: &str,
        topics: &BTreeMap<String, i32>,
    ) -> Result<BTreeMap<String, BTreeMap<i32, i64>>, SnapshotError> {
        let kafka = |error| SnapshotError::Kafka { what: format!("reading the offsets of group {group}"), error };
        let mut client = self.client.clone();
        client.set("group.id", group).set("enable.auto.commit", "false");
        let consumer = crate::kafka::consumer(&client).map_err(kafka)?;
        let mut wanted = TopicPartitionList::new();
        for (topic, &count) in topics {
            for partition in 0..count {
                wanted.add_partition(topic, partition);
            }
        }
        let mut offsets = BTreeMap::<String, BTreeMap<i32, i64>>::new();
        {
            // Dropped before the consumer: a list from committed() outliving it hangs the drop.
            let committed = consumer.committed_offsets(wanted, REQUEST_LIMIT).map_err(kafka)?;
            for element in committed.elements() {
                if let Offset::Offset(offset) = element.offset() {
                    offsets.entry(element.topic().to_string()).or_default().insert(element.partition(), offset);
                }
            }
        }
        Ok(offsets)
    }

    /// Reads, and stores the reading unless it is what `last` already holds.
    fn snapshot(&self, last: &mut Option<GroupSnapshot>) -> Result<(), SnapshotError> {
        let Some(snapshot) = self.read(last.as_ref())? else {
            return Ok(());
        };
        let unchanged =
            last.as_ref().is_some_and(|last| last.groups == snapshot.groups && last.topics == snapshot.topics);
        if unchanged {
            return Ok(());
        }
        let key = self
            .archive
            .block_on(REQUEST_LIMIT, self.archive.archive.put_group_snapshot(&snapshot))
            .ok_or(SnapshotError::Timeout)??;
        tracing::info!(key = %key, groups = snapshot.groups.len(), "group offsets snapshot stored");
        *last = Some(snapshot);
        Ok(())
    }
}

pub fn spawn(keeper: GroupKeeper) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name("groups".into())
        .spawn(move || {
            let _alive = crate::observe::metrics::global().health.thread("groups");
            let mut last = None;
            let mut next = Instant::now();
            while !keeper.stop.sleep(next.saturating_duration_since(Instant::now())) {
                next = Instant::now() + keeper.settings.interval;
                if let Err(error) = keeper.snapshot(&mut last) {
                    tracing::warn!(%error, retry_s = keeper.settings.interval.as_secs(), "group offsets snapshot failed");
                }
            }
        })
        .expect("spawn groups thread")
}
