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
//! - **Kept** (a cooperative rebalance): librdkafka paused the partitions kept for the
//!   rebalance and resumes them when the assignment is applied, from the position it copied;
//!   each is sought to where its spool continues first (see [`crate::pipeline::consume::hold`]).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::names::TopicPartition;
use crate::pipeline::consume::adopt::adopt_partition;
use crate::pipeline::consume::commit::fetch_committed;
use crate::pipeline::consume::context::ArchiverContext;
use crate::pipeline::consume::hold;
use crate::pipeline::consume::resume::resume_points;

impl ArchiverContext {
    pub(crate) fn on_assign(&self, consumer: &BaseConsumer<ArchiverContext>, tpl: &mut TopicPartitionList) {
        let tps: Vec<TopicPartition> =
            tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect();
        tracing::info!(consumer = self.id, partitions = %list(&tps), "assigned");
        // Before the assignment takes effect, so every record of it comes through the fetch queue.
        if let Some(queue) = self.fetch_queue() {
            for tp in &tps {
                if !queue.route(consumer, &tp.topic, tp.partition) {
                    // Never seen (librdkafka makes a partition's queue on demand); loud, because a
                    // partition routed at an earlier assignment would not deliver (fetch_queue).
                    tracing::error!(topic = %tp.topic, partition = tp.partition, "librdkafka gave no queue for the partition; its records are taken with the events");
                }
            }
        }
        let Some(committed) = fetch_committed(consumer, tpl, &self.stage.shutdown) else {
            // Stopping: the partitions are neither adopted nor written (records fetched now are
            // ignored), so their local files stay untouched for whoever adopts them next.
            tracing::info!(consumer = self.id, "shutting down; not adopting the new assignment");
            return;
        };
        let Some(resume) = resume_points(self, consumer, &tps, &committed) else {
            tracing::info!(consumer = self.id, "shutting down; not adopting the new assignment");
            return;
        };
        let mut state = self.state();
        for tp in tps {
            let committed_offset = committed.get(&tp).copied().flatten();
            // Everything below this offset is in the archive: the group's word, or the archive's own.
            let held = [committed_offset, resume.archived.get(&tp).copied().flatten()].into_iter().flatten().max();
            let spool = loop {
                if self.stage.shutdown.is_stopping() {
                    return;
                }
                match adopt_partition(&self.stage, &tp, held) {
                    Ok(spool) => break self.stage.bound(spool),
                    Err(error) => {
                        // Without a settled local state the resume point is unknown: retrying
                        // is the only safe choice (a full or failing disk).
                        tracing::error!(topic = %tp.topic, partition = tp.partition, %error, "adopting the partition's local files failed; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            };
            if resume.unconfirmed.contains(&tp) {
                self.stage.ledger.set_base_unconfirmed(&tp);
            }
            if let Some(offset) = spool.next_offset() {
                if let Err(error) = tpl.set_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset)) {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, %error, "setting the resume offset");
                }
            }
            if let Some(offset) = committed_offset {
                state.committed.insert(tp.clone(), offset);
                spool.metrics.committed(offset);
            }
            if let Some(offset) = held {
                spool.metrics.archived_below(offset);
            }
            state.topics.entry(tp.topic.clone()).or_default().insert(tp.partition, spool);
        }
        state.size_write_buffers(&self.stage.config.memory);
    }

    fn on_revoke(&self, consumer: &BaseConsumer<ArchiverContext>, tpl: &TopicPartitionList) {
        let tps: Vec<TopicPartition> =
            tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect();
        tracing::info!(consumer = self.id, partitions = %list(&tps), "revoked; handing over");
        let mut state = self.state();
        for spool in state.spools_mut().filter(|s| tps.contains(&s.tp)) {
            self.stage.seal(spool);
        }
        let started = Instant::now();
        // The shutdown deadline is read on every round: a shutdown requested during a hand-over
        // shortens it.
        let deadline = || {
            let own = started + self.stage.config.consumer.rebalance_timeout;
            self.stage.shutdown.deadline().map_or(own, |shutdown| own.min(shutdown))
        };
        loop {
            let pending: usize = tps.iter().map(|tp| self.stage.ledger.pending_files(tp)).sum();
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
            self.stage.ledger.release(tp);
            crate::observe::metrics::global().partitions.revoked(tp);
        }
    }
}

fn list(tps: &[TopicPartition]) -> String {
    tps.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl ConsumerContext for ArchiverContext {
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, offsets: &TopicPartitionList) {
        self.on_commit_result(result, offsets);
    }

    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        crate::observe::metrics::global().rebalances.inc();
        // Owned and not in the list: in a cooperative rebalance, kept (paused by librdkafka until
        // the assignment is applied; see `hold`).
        let kept: Vec<TopicPartition> = {
            let listed: HashSet<TopicPartition> =
                tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect();
            self.state().spools().map(|s| s.tp.clone()).filter(|tp| !listed.contains(tp)).collect()
        };
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.on_assign(consumer, tpl);
                hold::hold(consumer, &kept);
                let assigned = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                // librdkafka keeps an application pause across unassign and assign: a partition
                // the back-pressure paused while this consumer owned it before would never be
                // fetched again. The fetch pauses pause it again at its next tick if it should be;
                // shutting down, nothing is to be fetched.
                if self.stage.shutdown.is_stopping() {
                    assigned
                } else {
                    assigned.and_then(|()| consumer.resume(tpl))
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.on_revoke(consumer, tpl);
                hold::hold(consumer, &kept);
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
