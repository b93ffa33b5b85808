//! Pausing and resuming partitions without trusting librdkafka's position.
//!
//! librdkafka resumes a paused partition from the position it copied at the pause: one past the
//! last record or transaction marker the application was handed. The poll loop's take
//! (`kafka::fetch_queue`) moves that position for a transaction marker fetched before a seek, a
//! pause or an assignment change as well (librdkafka handles markers before it drops outdated
//! fetches), so until the partition's next record the position may stand past records never
//! delivered; resuming from it would skip them. So every pause here is followed by a seek to
//! where the partition's spool continues ([`PartitionSpool::resume_offset`]), which librdkafka
//! handles after the pause and which replaces the copied position; and the partitions kept across
//! a cooperative rebalance, which librdkafka pauses itself until the assignment is applied, are
//! sought the same way in the rebalance callback ([`hold`]).
//!
//! A partition already paused is not paused again (a pause copies the position again), so the
//! paused partitions are tracked ([`ConsumerState::paused`]); the rebalance callback resumes
//! what it assigns. A partition with no resume offset (Kafka's reset chose its start and no
//! record came yet; the archive's reset position is resolved on assignment, so only when the
//! broker could not say) is paused without a seek.
//!
//! [`PartitionSpool::resume_offset`]: crate::pipeline::spool::PartitionSpool::resume_offset
//! [`ConsumerState::paused`]: crate::pipeline::consume::state::ConsumerState::paused

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::TopicPartitionList;

use crate::names::TopicPartition;
use crate::pipeline::consume::context::ArchiverContext;
use crate::pipeline::consume::state::ConsumerState;

/// How long librdkafka gets to apply a seek.
const SEEK_LIMIT: Duration = Duration::from_secs(10);

/// Pauses the partitions of `tps` this consumer owns and has not paused yet, each followed by a
/// seek to where its spool continues.
pub fn pause(consumer: &BaseConsumer<ArchiverContext>, tps: &[TopicPartition]) {
    // The consumer's state is not held across librdkafka's calls; nothing is taken meanwhile
    // (this runs on the consumer's thread), so the offsets read stay right.
    let newly = {
        let state = consumer.context().state();
        resume_offsets(&state, tps.iter().filter(|tp| !state.paused.contains(*tp)))
    };
    if newly.is_empty() {
        return;
    }
    let list = list(newly.iter().map(|(tp, _)| tp));
    if let Err(error) = consumer.pause(&list) {
        tracing::warn!(%error, "pause failed");
        return;
    }
    mark_paused(&list, true);
    consumer.context().state().paused.extend(newly.iter().map(|(tp, _)| tp.clone()));
    seek(consumer, &newly);
}

/// Resumes the partitions of `tps` (those not paused too: harmless).
pub fn resume(consumer: &BaseConsumer<ArchiverContext>, tps: &[TopicPartition]) {
    if tps.is_empty() {
        return;
    }
    let list = list(tps.iter());
    match consumer.resume(&list) {
        Ok(()) => {
            mark_paused(&list, false);
            let mut state = consumer.context().state();
            for tp in tps {
                state.paused.remove(tp);
            }
        }
        Err(error) => tracing::warn!(%error, "resume failed"),
    }
}

/// Seeks each partition of `tps` this consumer owns to where its spool continues: in the
/// rebalance callback, for the partitions librdkafka paused for the rebalance and resumes when
/// the assignment is applied. They count as not paused by us afterwards, so the next tick
/// pauses again those that should be: a pause of ours that lost the race against librdkafka's
/// (a pause op older than the last one applied is dropped) is made good there.
pub fn hold(consumer: &BaseConsumer<ArchiverContext>, tps: &[TopicPartition]) {
    let at = {
        let mut state = consumer.context().state();
        for tp in tps {
            state.paused.remove(tp);
        }
        resume_offsets(&state, tps.iter())
    };
    seek(consumer, &at);
}

/// The partitions of `tps` this consumer owns, each with where its spool continues.
fn resume_offsets<'a>(
    state: &ConsumerState,
    tps: impl Iterator<Item = &'a TopicPartition>,
) -> Vec<(TopicPartition, Option<i64>)> {
    tps.filter_map(|tp| state.spool(tp).map(|spool| (tp.clone(), spool.resume_offset()))).collect()
}

/// Seeks each partition to its offset (None: left alone); a partition whose seek fails awaits
/// its offset (its records are dropped until the poll loop's next rewind seeks again), so
/// nothing after a hole is ever written.
pub fn seek(consumer: &BaseConsumer<ArchiverContext>, at: &[(TopicPartition, Option<i64>)]) {
    let at: Vec<(&str, i32, i64)> =
        at.iter().filter_map(|(tp, offset)| offset.map(|o| (tp.topic.as_str(), tp.partition, o))).collect();
    let failed = crate::kafka::fetch_queue::seek(consumer, &at, SEEK_LIMIT);
    if failed.is_empty() {
        return;
    }
    let context = consumer.context();
    let mut state = context.state();
    for (topic, partition, offset, error) in failed {
        // Retried at every tick until it succeeds (e.g. a partition whose fetcher has not
        // started yet): one line per partition and interval.
        if let Some(repeats) = context.errors.admit(&format!("seek {topic}:{partition}")) {
            tracing::warn!(%topic, partition, offset, %error, repeats, "seek failed; retried");
        }
        if let Some(spool) = state.spool_mut(&TopicPartition::new(&topic, partition)) {
            spool.await_position(offset);
        }
    }
}

fn list<'a>(tps: impl Iterator<Item = &'a TopicPartition>) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for tp in tps {
        list.add_partition(&tp.topic, tp.partition);
    }
    list
}

/// `kafkatos3_paused_partitions` counts what librdkafka was told.
fn mark_paused(tpl: &TopicPartitionList, paused: bool) {
    let partitions = &crate::observe::metrics::global().partitions;
    for element in tpl.elements() {
        if let Some(metrics) = partitions.get(&TopicPartition::new(element.topic(), element.partition())) {
            metrics.set_paused(paused);
        }
    }
}
