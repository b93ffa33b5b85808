//! Where each newly assigned partition resumes, as far as the archive knows: the end of the
//! partition's chain of objects (see [`crate::archive::chain`]), probed for all partitions of an
//! assignment at once, and the beginning of a new archive.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::archive::{Archive, ArchiveError};
use crate::names::TopicPartition;
use crate::pipeline::consume::context::ArchiverContext;
use crate::pipeline::consume::Consumers;

/// Time the archive gets to say where one partition's archive ends.
const FRONTIER_LIMIT: Duration = Duration::from_secs(30);
/// Partitions probed at once.
const CONCURRENT_PROBES: usize = 16;

/// What the archive says about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveEnd {
    /// The first offset the archive does not hold.
    At(i64),
    /// Nothing was known locally and the archive holds nothing of the partition.
    Empty,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
}

/// Where the partitions of an assignment resume, as far as the archive knows.
#[derive(Debug, Default)]
pub struct Resume {
    /// Everything below this offset is in the archive; None: nothing known beyond the group's
    /// committed offset (or the reset policy).
    pub archived: HashMap<TopicPartition, Option<i64>>,
    /// Partitions nothing is known about that the archive could not be asked about: they
    /// start where Kafka resets them, commit nothing, and their first upload asks the archive.
    pub unconfirmed: HashSet<TopicPartition>,
}

/// How far the archive holds each newly assigned partition: an upload that succeeded just before
/// a crash, without its commit, is not archived again. A partition nothing is known about (no
/// commit, no local state) is found by listing its folder; when the archive holds nothing of it
/// either, the archive begins at the reset position, which is committed at once so that every
/// later owner begins at the same offset. `None` once shutdown is requested.
pub fn resume_points(
    context: &ArchiverContext,
    consumer: &BaseConsumer<ArchiverContext>,
    tps: &[TopicPartition],
    committed: &HashMap<TopicPartition, Option<i64>>,
) -> Option<Resume> {
    let stage = &context.stage;
    let known: Vec<(TopicPartition, Option<i64>)> = tps
        .iter()
        .map(|tp| {
            let local = [stage.ledger.read_marker(tp), stage.legacy.end_for(tp)].into_iter().flatten().max();
            let from = [committed.get(tp).copied().flatten(), local.map(|l| l + 1)].into_iter().flatten().max();
            (tp.clone(), from)
        })
        .collect();
    let probes = stage.archive.block_on(FRONTIER_LIMIT * 4, probe(&stage.archive.archive, &known, FRONTIER_LIMIT));
    let probes = probes.unwrap_or_else(|| {
        known.iter().map(|(tp, from)| (tp.clone(), *from, Err(ProbeError::Timeout(FRONTIER_LIMIT * 4)))).collect()
    });
    let mut resume = Resume::default();
    let mut empty: Vec<TopicPartition> = Vec::new();
    for (tp, from, result) in probes {
        match result {
            Ok(ArchiveEnd::At(offset)) => {
                resume.archived.insert(tp, Some(offset));
            }
            Ok(ArchiveEnd::Empty) => empty.push(tp),
            Err(error) if from.is_none() => {
                tracing::warn!(topic = %tp.topic, partition = tp.partition, %error, "the archive cannot tell where a partition without a committed offset ends; starting where Kafka resets it, committing nothing until the first upload has asked the archive");
                resume.archived.insert(tp.clone(), None);
                resume.unconfirmed.insert(tp);
            }
            Err(error) => {
                // Known partitions resume at what is known: should the archive hold more, the
                // first upload meets the claim at its key and resyncs.
                tracing::warn!(topic = %tp.topic, partition = tp.partition, %error, "could not read where the archive of the partition ends; resuming at the committed offset");
                resume.archived.insert(tp, None);
            }
        }
    }
    // Nothing known and the archive holds nothing: it begins here, for every owner alike.
    let mut begin = TopicPartitionList::new();
    let mut resets = reset_positions(stage, consumer, &empty);
    for tp in empty {
        let Some(offset) = resets.remove(&tp).or_else(|| reset_position(stage, consumer, &tp)) else {
            resume.archived.insert(tp, None);
            continue;
        };
        let _ = begin.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset));
        resume.archived.insert(tp, Some(offset));
    }
    if begin.count() > 0 && stage.commits_offsets() {
        match consumer.commit(&begin, CommitMode::Sync) {
            Ok(()) => tracing::info!(
                consumer = context.id,
                partitions = begin.count(),
                "new archive: committed where it begins"
            ),
            Err(error) => {
                tracing::warn!(consumer = context.id, %error, "committing where a new archive begins failed")
            }
        }
    }
    (!stage.shutdown.is_stopping()).then_some(resume)
}

/// Where `auto.offset.reset` starts each of `tps`, asked of all at once (one ListOffsets per
/// broker, where asking each partition's watermarks took a round trip per partition: thousands at
/// a large assignment). The partitions missing from the answer are asked one by one
/// ([`reset_position`]); so are all of them when the call fails (librdkafka returns nothing when
/// one broker's answer fails).
fn reset_positions(
    stage: &Consumers,
    consumer: &BaseConsumer<ArchiverContext>,
    tps: &[TopicPartition],
) -> HashMap<TopicPartition, i64> {
    use crate::config::OffsetReset;
    let at = match stage.config.consumer.kafka_auto_offset_reset {
        OffsetReset::Earliest => Offset::Beginning,
        OffsetReset::Latest => Offset::End,
        _ => return HashMap::new(),
    };
    if tps.is_empty() {
        return HashMap::new();
    }
    let mut tpl = TopicPartitionList::new();
    for tp in tps {
        // The special timestamps of ListOffsets: -2 the log start, -1 its end.
        let _ = tpl.add_partition_offset(&tp.topic, tp.partition, at);
    }
    match consumer.offsets_for_times(tpl, Duration::from_secs(10)) {
        Ok(answer) => answer
            .elements()
            .iter()
            .filter(|e| e.error().is_ok())
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((TopicPartition::new(e.topic(), e.partition()), offset)),
                _ => None,
            })
            .collect(),
        Err(error) => {
            tracing::debug!(%error, partitions = tps.len(), "asking where the partitions reset failed; asking one by one");
            HashMap::new()
        }
    }
}

/// Where `auto.offset.reset` starts a partition without a committed offset, or None when
/// the policy is `none` (librdkafka reports it) or the broker cannot say.
fn reset_position(stage: &Consumers, consumer: &BaseConsumer<ArchiverContext>, tp: &TopicPartition) -> Option<i64> {
    use crate::config::OffsetReset;
    let reset = stage.config.consumer.kafka_auto_offset_reset;
    if !matches!(reset, OffsetReset::Earliest | OffsetReset::Latest) {
        return None;
    }
    match consumer.fetch_watermarks(&tp.topic, tp.partition, Duration::from_secs(10)) {
        Ok((low, high)) => Some(if reset == OffsetReset::Earliest { low } else { high }),
        Err(error) => {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, %error, "reading the partition's watermarks failed; starting where the broker resets it");
            None
        }
    }
}

/// Asks the archive, 16 partitions at a time, how far it holds each: from the
/// known offset on (following the chain), or by listing the partition's folder when nothing is
/// known. Each partition gets `limit` to answer.
pub async fn probe(
    archive: &Archive,
    known: &[(TopicPartition, Option<i64>)],
    limit: Duration,
) -> Vec<(TopicPartition, Option<i64>, Result<ArchiveEnd, ProbeError>)> {
    futures::stream::iter(known.iter().cloned())
        .map(|(tp, from)| async move {
            let asked = async {
                match from {
                    Some(from) => archive.frontier(&tp, from).await.map(ArchiveEnd::At),
                    None => archive.listed_end(&tp).await.map(|end| end.map_or(ArchiveEnd::Empty, ArchiveEnd::At)),
                }
            };
            let answer = match tokio::time::timeout(limit, asked).await {
                Ok(result) => result.map_err(ProbeError::from),
                Err(_) => Err(ProbeError::Timeout(limit)),
            };
            (tp, from, answer)
        })
        .buffer_unordered(CONCURRENT_PROBES)
        .collect()
        .await
}

#[cfg(test)]
mod tests;
