//! Where each newly assigned partition resumes, as far as S3 knows: the S3 frontier (the end of
//! the partition's chain of objects, see [`crate::archive`]), probed for all partitions of an
//! assignment at once, and the beginning of a new archive.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::names::TopicPartition;
use crate::pipeline::consume::rebalance::ArchiverContext;
use crate::pipeline::Pipeline;

/// Time S3 gets to say where one partition's archive ends.
const FRONTIER_LIMIT: Duration = Duration::from_secs(30);

/// How far S3 holds each newly assigned partition (see [`crate::archive::frontier`]): an
/// upload that succeeded just before a crash, without its commit, is not archived again.
/// A partition nothing is known about (no commit, no local state) is found by listing its
/// folder; when S3 holds nothing of it either, the archive begins at the reset position,
/// which is committed at once so that every later owner begins at the same offset.
/// The second set: partitions nothing is known about that S3 could not be asked about;
/// they start where Kafka resets them, commit nothing, and their first upload asks S3.
/// `None` once shutdown is requested.
#[allow(clippy::type_complexity)]
pub fn archived(
    context: &ArchiverContext,
    consumer: &BaseConsumer<ArchiverContext>,
    tps: &[TopicPartition],
    committed: &HashMap<TopicPartition, Option<i64>>,
) -> Option<(HashMap<TopicPartition, Option<i64>>, HashSet<TopicPartition>)> {
    let pipeline = &context.pipeline;
    let known: Vec<(TopicPartition, Option<i64>)> = tps
        .iter()
        .map(|tp| {
            let local = [pipeline.ledger.read_marker(tp), pipeline.legacy.end_for(tp)].into_iter().flatten().max();
            let from = [committed.get(tp).copied().flatten(), local.map(|l| l + 1)].into_iter().flatten().max();
            (tp.clone(), from)
        })
        .collect();
    let mut found = HashMap::new();
    let mut unknown: Vec<TopicPartition> = Vec::new();
    let mut unconfirmed = HashSet::new();
    for (tp, from, result) in probe_frontiers(pipeline, &known) {
        match result {
            Ok(Some(offset)) => {
                found.insert(tp, Some(offset));
            }
            Ok(None) => unknown.push(tp),
            Err(error) if from.is_none() => {
                tracing::warn!(partition = %tp, %error, "S3 cannot tell where the archive of a partition without a committed offset ends; starting where Kafka resets it, committing nothing until the first upload has asked S3");
                found.insert(tp.clone(), None);
                unconfirmed.insert(tp);
            }
            Err(error) => {
                // Known partitions resume at what is known: should S3 hold more, the first
                // upload meets the object at its key and resyncs.
                tracing::warn!(partition = %tp, %error, "could not read where S3's archive of the partition ends; resuming at the committed offset");
                found.insert(tp, None);
            }
        }
    }
    // Nothing known and S3 holds nothing: the archive begins here, for every owner alike.
    let mut begin = TopicPartitionList::new();
    for tp in unknown {
        let Some(offset) = reset_position(pipeline, consumer, &tp) else {
            found.insert(tp, None);
            continue;
        };
        let _ = begin.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset));
        found.insert(tp, Some(offset));
    }
    if begin.count() > 0 {
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
    (!pipeline.shutdown.is_stopping()).then_some((found, unconfirmed))
}

/// Where `auto.offset.reset` starts a partition without a committed offset, or None when
/// the policy is `none` (librdkafka reports it) or the broker cannot say.
fn reset_position(pipeline: &Pipeline, consumer: &BaseConsumer<ArchiverContext>, tp: &TopicPartition) -> Option<i64> {
    use crate::config::OffsetReset;
    let reset = pipeline.config.consumer.kafka_auto_offset_reset;
    if !matches!(reset, OffsetReset::Earliest | OffsetReset::Latest) {
        return None;
    }
    match consumer.fetch_watermarks(&tp.topic, tp.partition, Duration::from_secs(10)) {
        Ok((low, high)) => Some(if reset == OffsetReset::Earliest { low } else { high }),
        Err(error) => {
            tracing::warn!(partition = %tp, %error, "reading the partition's watermarks failed; starting where the broker resets it");
            None
        }
    }
}

/// Asks S3, 16 partitions at a time, how far it holds each: from the known offset on (follow
/// the chain), or by listing when nothing is known. `Ok(None)`: nothing known and S3 holds
/// nothing. Partitions S3 cannot tell about in time get an error.
#[allow(clippy::type_complexity)]
fn probe_frontiers(
    pipeline: &Pipeline,
    known: &[(TopicPartition, Option<i64>)],
) -> Vec<(TopicPartition, Option<i64>, Result<Option<i64>, String>)> {
    use futures::StreamExt;
    let s3 = &pipeline.s3;
    let probes = futures::stream::iter(known.iter().cloned())
        .map(|(tp, from)| async move {
            let answer = tokio::time::timeout(FRONTIER_LIMIT, async {
                match from {
                    Some(from) => crate::archive::frontier(s3.store.as_ref(), &s3.at, &tp, from).await.map(Some),
                    None => crate::archive::listed_end(s3.store.as_ref(), &s3.at, &tp).await,
                }
            })
            .await;
            let answer = match answer {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {} s", FRONTIER_LIMIT.as_secs())),
            };
            (tp, from, answer)
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    s3.block_on(FRONTIER_LIMIT * 4, probes)
        .unwrap_or_else(|| known.iter().map(|(tp, from)| (tp.clone(), *from, Err("no answer".to_string()))).collect())
}
