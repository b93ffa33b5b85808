//! Committing offsets: for each owned partition the offset the ledger allows
//! ([`crate::local::ledger::commit_point`]) once it moved forward; never backwards past the
//! group's offset (a zombie must not undo the owner's progress); a failed asynchronous commit is
//! sent again.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::local::ledger::commit_point;
use crate::names::TopicPartition;
use crate::pipeline::consume::context::ArchiverContext;
use crate::pipeline::consume::state::ConsumerState;

impl ArchiverContext {
    /// Commits, for every owned partition (or only `only`), the offset the ledger allows, when it
    /// moved forward.
    /// Returns false when the commit request failed.
    pub fn commit_progress(
        &self,
        consumer: &BaseConsumer<ArchiverContext>,
        state: &mut ConsumerState,
        mode: CommitMode,
        only: Option<&[TopicPartition]>,
    ) -> bool {
        if !self.stage.commits_offsets() {
            return true;
        }
        let mut advanced = Vec::new();
        for spool in state.topics.values().flat_map(|p| p.values()) {
            if only.is_some_and(|only| !only.contains(&spool.tp)) || self.stage.ledger.base_unconfirmed(&spool.tp) {
                continue;
            }
            let Some(offset) =
                commit_point(self.stage.ledger.oldest_unconfirmed(&spool.tp), spool.open_start(), spool.next_offset())
            else {
                continue;
            };
            // A hand-over (`only`) always commits: an earlier asynchronous commit may have failed
            // after it was recorded here, and the next owner starts from what Kafka holds.
            if only.is_none() && state.committed.get(&spool.tp).is_some_and(|&done| done >= offset) {
                continue;
            }
            advanced.push((spool.tp.clone(), offset));
        }
        if advanced.is_empty() {
            return true;
        }
        // A snapshot is no member of the group: even its final commits must not move the group's
        // offset back past a running daemon's.
        let forward_only = matches!(mode, CommitMode::Async) || self.stage.snapshot.is_some();
        if forward_only && !self.keep_forward_only(consumer, state, &mut advanced) {
            return false;
        }
        let mut tpl = TopicPartitionList::new();
        for (tp, offset) in &advanced {
            let _ = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset));
        }
        if advanced.is_empty() {
            return true;
        }
        match consumer.commit(&tpl, mode) {
            Ok(()) => {
                let metrics = crate::observe::metrics::global();
                for (tp, offset) in advanced {
                    tracing::debug!(topic = %tp.topic, partition = tp.partition, offset, "committed");
                    if let Some(partition) = metrics.partitions.get(&tp) {
                        partition.committed(offset);
                    }
                    state.committed.insert(tp, offset);
                }
                true
            }
            Err(error) => {
                tracing::warn!(consumer = self.id, %error, "offset commit failed; retried");
                false
            }
        }
    }

    /// Drops from `advanced` the partitions whose group offset is already past ours: an
    /// instance that lost a partition without knowing yet (a zombie) must not move the group's
    /// offset back. The hand-over commit skips this check - it runs while the partition is
    /// still ours by the group's own protocol. False when the group's offsets cannot be read.
    fn keep_forward_only(
        &self,
        consumer: &BaseConsumer<ArchiverContext>,
        state: &mut ConsumerState,
        advanced: &mut Vec<(TopicPartition, i64)>,
    ) -> bool {
        let mut ask = TopicPartitionList::new();
        for (tp, _) in advanced.iter() {
            ask.add_partition(&tp.topic, tp.partition);
        }
        let group = match consumer.committed_offsets(ask, Duration::from_secs(5)) {
            Ok(group) => group,
            Err(error) => {
                tracing::debug!(consumer = self.id, %error, "reading the group's offsets before a commit failed; retried");
                return false;
            }
        };
        let group: HashMap<TopicPartition, i64> = group
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((TopicPartition::new(e.topic(), e.partition()), o)),
                _ => None,
            })
            .collect();
        advanced.retain(|(tp, ours)| match group.get(tp) {
            Some(&theirs) if theirs > *ours => {
                tracing::warn!(topic = %tp.topic, partition = tp.partition, ours, group = theirs, "the group's offset is past ours (another instance owns the partition now); not committing");
                state.committed.insert(tp.clone(), theirs);
                false
            }
            _ => true,
        });
        true
    }

    /// librdkafka's report of an asynchronous commit: a failed one is sent again on the next
    /// round - until then the group's offset lags behind what S3 holds (harmless to the archive,
    /// but lag would never clear).
    pub(super) fn on_commit_result(&self, result: rdkafka::error::KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(error) = result {
            let mut state = self.state();
            for element in offsets.elements() {
                state.committed.remove(&TopicPartition::new(element.topic(), element.partition()));
            }
            if let Some(repeats) = self.errors.admit(&error.to_string()) {
                tracing::warn!(consumer = self.id, %error, repeats, "offset commit failed; sent again");
            }
        }
    }
}

/// Committed offsets of the assigned partitions; retried because guessing is not safe. `None`
/// for a partition: the group has no committed offset for it. `None` overall once shutdown is
/// requested: there is no point adopting partitions that are about to be released.
pub(super) fn fetch_committed(
    consumer: &BaseConsumer<ArchiverContext>,
    tpl: &TopicPartitionList,
    shutdown: &crate::pipeline::stop::Shutdown,
) -> Option<HashMap<TopicPartition, Option<i64>>> {
    for attempt in 1.. {
        if shutdown.is_stopping() {
            return None;
        }
        match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(committed) => {
                let offsets = committed
                    .elements()
                    .iter()
                    .map(|e| {
                        let offset = match e.offset() {
                            Offset::Offset(o) if o >= 0 => Some(o),
                            _ => None,
                        };
                        (TopicPartition::new(e.topic(), e.partition()), offset)
                    })
                    .collect();
                drop(committed);
                return Some(offsets);
            }
            Err(error) => {
                let wait = Duration::from_millis(200 * (1 << attempt.min(5)));
                tracing::warn!(%error, attempt, "fetching committed offsets failed; retrying");
                std::thread::sleep(wait);
            }
        }
    }
    unreachable!("the loop only returns")
}
