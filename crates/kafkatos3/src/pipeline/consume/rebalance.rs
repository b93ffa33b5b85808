//! The rebalance protocol. librdkafka calls [`ConsumerContext::rebalance`] synchronously from
//! `poll` on the consumer's own thread; the partitions' state is settled before the
//! assignment changes:
//!
//! - **Assign**: each partition's local files are adopted (see [`crate::pipeline::consume::adopt`]) and the
//!   assignment carries the resume offset explicitly, so consumption starts neither before data
//!   already held nor after data not held.
//! - **Revoke**: the open file is sealed, the daemon waits (up to `rebalance_timeout_seconds`)
//!   until the partition's files are uploaded, commits, and only then lets go. The next owner
//!   starts at that commit: nothing is read twice, nothing is skipped. Files that could not be
//!   uploaded in time stay on this disk untouched and are judged on a later adoption.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::local::ledger::commit_point;
use crate::names::TopicPartition;
use crate::pipeline::consume::adopt::adopt_partition;
use crate::pipeline::Pipeline;

use crate::observe::rate_limit::LogRateLimit;
use crate::pipeline::spool::PartitionSpool;

/// What one consumer owns: the spools of its assigned partitions and what it last committed.
#[derive(Debug, Default)]
pub struct ConsumerState {
    /// By topic then partition, so a message is routed without allocating a key.
    pub topics: HashMap<String, HashMap<i32, PartitionSpool>>,
    pub committed: HashMap<TopicPartition, i64>,
}

impl ConsumerState {
    pub fn spools_mut(&mut self) -> impl Iterator<Item = &mut PartitionSpool> {
        self.topics.values_mut().flat_map(|p| p.values_mut())
    }

    pub fn spools(&self) -> impl Iterator<Item = &PartitionSpool> {
        self.topics.values().flat_map(|p| p.values())
    }

    /// Sizes every open file's append buffer for the number of partitions held now, so that
    /// all of them busy at once stay within the budget's write share.
    pub fn size_write_buffers(&mut self, budget: &crate::config::budget::MemoryBudget) {
        let capacity = budget.write_buffer_per_partition(self.spools().count());
        for spool in self.spools_mut() {
            // A failure rewinds the partition, as a failed append does; the loop applies it.
            if let Err(error) = spool.set_buffer_capacity(capacity) {
                tracing::error!(%error, "resizing the append buffer failed");
            }
        }
    }

    pub fn assigned(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for spool in self.spools() {
            tpl.add_partition(&spool.tp.topic, spool.tp.partition);
        }
        tpl
    }

    fn remove(&mut self, tp: &TopicPartition) -> Option<PartitionSpool> {
        let partitions = self.topics.get_mut(&tp.topic)?;
        let spool = partitions.remove(&tp.partition);
        if partitions.is_empty() {
            self.topics.remove(&tp.topic);
        }
        spool
    }
}

pub struct ArchiverContext {
    pub id: usize,
    pub pipeline: Arc<Pipeline>,
    /// Touched only on the consumer's thread (poll and the callbacks it runs); the mutex makes
    /// the context `Sync` as librdkafka's callbacks require.
    pub state: Mutex<ConsumerState>,
    /// Rate limit for the client's and the poll loop's repeated errors.
    pub errors: LogRateLimit,
}

impl ArchiverContext {
    pub fn state(&self) -> MutexGuard<'_, ConsumerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

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
        let mut advanced = Vec::new();
        for spool in state.topics.values().flat_map(|p| p.values()) {
            if only.is_some_and(|only| !only.contains(&spool.tp)) || self.pipeline.ledger.base_unconfirmed(&spool.tp) {
                continue;
            }
            let Some(offset) = commit_point(
                self.pipeline.ledger.oldest_unconfirmed(&spool.tp),
                spool.open_start(),
                spool.next_offset(),
            ) else {
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
        if matches!(mode, CommitMode::Async) && !self.keep_forward_only(consumer, state, &mut advanced) {
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
                for (tp, offset) in advanced {
                    tracing::debug!(partition = %tp, offset, "committed");
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
                tracing::warn!(partition = %tp, ours, group = theirs, "the group's offset is past ours (another instance owns the partition now); not committing");
                state.committed.insert(tp.clone(), theirs);
                false
            }
            _ => true,
        });
        true
    }

    fn on_assign(&self, consumer: &BaseConsumer<ArchiverContext>, tpl: &mut TopicPartitionList) {
        let tps: Vec<TopicPartition> =
            tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect();
        tracing::info!(consumer = self.id, partitions = %list(&tps), "assigned");
        let Some(committed) = fetch_committed(consumer, tpl, &self.pipeline.shutdown) else {
            // Stopping: the partitions are neither adopted nor written (records fetched now are
            // ignored), so their local files stay untouched for whoever adopts them next.
            tracing::info!(consumer = self.id, "shutting down; not adopting the new assignment");
            return;
        };
        let Some((archived, unconfirmed)) =
            crate::pipeline::consume::resume::archived(self, consumer, &tps, &committed)
        else {
            tracing::info!(consumer = self.id, "shutting down; not adopting the new assignment");
            return;
        };
        let mut state = self.state();
        for tp in tps {
            let committed_offset = committed.get(&tp).copied().flatten();
            // Everything below this offset is in S3: the group's word, or S3's own.
            let held = [committed_offset, archived.get(&tp).copied().flatten()].into_iter().flatten().max();
            let spool = loop {
                if self.pipeline.shutdown.is_stopping() {
                    return;
                }
                match adopt_partition(&self.pipeline, &tp, held) {
                    Ok(spool) => break spool,
                    Err(error) => {
                        // Without a settled local state the resume point is unknown: retrying
                        // is the only safe choice (a full or failing disk).
                        tracing::error!(partition = %tp, %error, "adopting the partition's local files failed; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            };
            if unconfirmed.contains(&tp) {
                self.pipeline.ledger.set_base_unconfirmed(&tp);
            }
            if let Some(offset) = spool.next_offset() {
                if let Err(error) = tpl.set_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset)) {
                    tracing::error!(partition = %tp, %error, "setting the resume offset");
                }
            }
            if let Some(offset) = committed_offset {
                state.committed.insert(tp.clone(), offset);
            }
            state.topics.entry(tp.topic.clone()).or_default().insert(tp.partition, spool);
        }
        state.size_write_buffers(&self.pipeline.config.memory);
    }

    fn on_revoke(&self, consumer: &BaseConsumer<ArchiverContext>, tpl: &TopicPartitionList) {
        let tps: Vec<TopicPartition> =
            tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect();
        tracing::info!(consumer = self.id, partitions = %list(&tps), "revoked; handing over");
        let mut state = self.state();
        for spool in state.spools_mut().filter(|s| tps.contains(&s.tp)) {
            seal_into_pipeline(&self.pipeline, spool);
        }
        let started = Instant::now();
        // The shutdown deadline is read on every round: a shutdown requested during a hand-over
        // shortens it.
        let deadline = || {
            let own = started + self.pipeline.config.consumer.rebalance_timeout;
            self.pipeline.shutdown.deadline().map_or(own, |shutdown| own.min(shutdown))
        };
        loop {
            let pending: usize = tps.iter().map(|tp| self.pipeline.ledger.pending_files(tp)).sum();
            if pending == 0 {
                break;
            }
            if Instant::now() >= deadline() {
                tracing::warn!(consumer = self.id, pending_files = pending, "hand-over timed out; files stay on this disk and the next owner reads their records again from Kafka");
                break;
            }
            self.commit_progress(consumer, &mut state, CommitMode::Sync, Some(&tps));
            std::thread::sleep(Duration::from_millis(50));
        }
        // The last word: everything confirmed so far, committed synchronously, retried until the
        // deadline, so the next owner starts exactly after it.
        while !self.commit_progress(consumer, &mut state, CommitMode::Sync, Some(&tps)) && Instant::now() < deadline() {
            std::thread::sleep(Duration::from_millis(200));
        }
        for tp in &tps {
            if let Some(spool) = state.remove(tp) {
                if let Err(error) = spool.close() {
                    tracing::error!(%error, "closing the in-progress file on hand-over");
                }
            }
            state.committed.remove(tp);
            self.pipeline.ledger.release(tp);
        }
    }
}

/// Seals a partition's open file and hands it to the compressors.
pub fn seal_into_pipeline(pipeline: &Pipeline, spool: &mut PartitionSpool) {
    match spool.seal(&pipeline.work) {
        Ok(Some((name, bytes))) => {
            tracing::info!(file = %name.stem(), bytes, "sealed");
            pipeline.ledger.sealed(&name);
            pipeline.backlog.add(&name.tp, bytes);
            pipeline.compress_wake.notify();
        }
        Ok(None) => {}
        Err(error) => {
            tracing::error!(%error, "sealing failed; the file stays in inprogress and is retried")
        }
    }
}

/// Committed offsets of the assigned partitions; retried because guessing is not safe. `None`
/// for a partition: the group has no committed offset for it. `None` overall once shutdown is
/// requested: there is no point adopting partitions that are about to be released.
fn fetch_committed(
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

fn list(tps: &[TopicPartition]) -> String {
    tps.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl ClientContext for ArchiverContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", consumer = self.id, fac, "{message}")
            }
            L::Warning => {
                tracing::warn!(target: "librdkafka", consumer = self.id, fac, "{message}")
            }
            L::Notice | L::Info => {
                tracing::info!(target: "librdkafka", consumer = self.id, fac, "{message}")
            }
            L::Debug => tracing::debug!(target: "librdkafka", consumer = self.id, fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka retries connections itself with backoff (reconnect.backoff.ms); this is the
        // report of it, e.g. an unreachable broker.
        if let Some(repeats) = self.errors.admit(&error.to_string()) {
            tracing::warn!(consumer = self.id, %error, reason, repeats, "kafka client error");
        }
    }
}

impl ConsumerContext for ArchiverContext {
    /// A failed asynchronous commit is sent again on the next round: until then the group's
    /// offset lags behind what S3 holds (harmless to the archive, but lag would never clear).
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, offsets: &TopicPartitionList) {
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

    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.on_assign(consumer, tpl);
                let assigned = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                // librdkafka keeps an application pause across unassign and assign: a partition
                // the back-pressure paused while this consumer owned it before would never be
                // fetched again. The fetch pauses pause it again at its next tick if it should be;
                // shutting down, nothing is to be fetched.
                if self.pipeline.shutdown.is_stopping() {
                    assigned
                } else {
                    assigned.and_then(|()| consumer.resume(tpl))
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.on_revoke(consumer, tpl);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!(consumer = self.id, error = ?other, "rebalance error; dropping the assignment");
                let owned = self.state().assigned();
                self.on_revoke(consumer, &owned);
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::error!(consumer = self.id, %error, "applying the assignment failed");
        }
    }
}
