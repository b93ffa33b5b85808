//! The poll loop of one consumer: records are taken from its fetch queue a batch at a time and
//! each is copied into the batch its writer thread takes next (the hot path: one copy, no
//! syscall, no allocation); the consumer's own queue is served in between (rebalances, commit
//! results, errors); every tick flushes, seals what is due, commits what the ledger allows,
//! applies resyncs and rewinds, and pauses or resumes partitions for the backlog. Every access to
//! the spools first waits until the records fetched so far are written (see
//! [`ArchiverContext::state`]).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::kafka::fetch_queue::{FetchError, FetchQueue, Polled};
use crate::names::TopicPartition;
use crate::pipeline::consume::context::{is_connection_problem, ArchiverContext};
use crate::pipeline::consume::hold;
use crate::pipeline::consume::pauses::FetchPauses;
use crate::pipeline::consume::snapshot::SnapshotTracker;
use crate::pipeline::consume::state::ConsumerState;
use crate::pipeline::consume::Consumers;
use crate::pipeline::resync::Resync;
use crate::pipeline::spool::{now_secs, PartitionSpool};

/// How often the loop flushes, rotates, commits and checks the backlog at most.
const TICK: Duration = Duration::from_millis(100);
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// Events (or records of partitions not routed to the fetch queue) served per turn at most.
const EVENTS_PER_TURN: usize = 1024;
/// How long a snapshot consumer waits for records between two looks at its uploads: its last
/// partition's last file is sealed by the writer and goes up within tens of milliseconds, and
/// the snapshot is done when that upload is confirmed, not a tick later.
const SNAPSHOT_UPLOAD_WAIT: Duration = Duration::from_millis(10);
/// How long a resync may wait for S3 to say where a partition's archive ends, and how soon a
/// failed one is tried again.
const RESYNC_PROBE_LIMIT: Duration = Duration::from_secs(10);
const RESYNC_RETRY: Duration = Duration::from_secs(5);

pub struct PollLoop<'a> {
    stage: &'a Consumers,
    consumer: &'a BaseConsumer<ArchiverContext>,
    now_secs: f64,
    last_flush: Instant,
    last_commit: Instant,
    /// The ledger's release count at the last commit (see [`Ledger::releases`]).
    ///
    /// [`Ledger::releases`]: crate::local::ledger::Ledger::releases
    committed_releases: u64,
    pauses: FetchPauses,
    resync_retry_at: Option<Instant>,
    /// A snapshot's consumer: where its partitions stand against their ends.
    snapshot: Option<SnapshotTracker>,
    /// A snapshot's partitions are all in the archive: the loop ends.
    finished: bool,
    /// The ledger's release count when the snapshot's progress was last looked at.
    tracked_releases: u64,
    /// How long a take waits for records: a tick, or hardly at all in a snapshot.
    poll_wait: Duration,
}

impl<'a> PollLoop<'a> {
    pub fn new(stage: &'a Consumers, consumer: &'a BaseConsumer<ArchiverContext>) -> Self {
        PollLoop {
            stage,
            consumer,
            now_secs: now_secs(),
            last_flush: Instant::now(),
            last_commit: Instant::now(),
            committed_releases: 0,
            pauses: FetchPauses::default(),
            resync_retry_at: None,
            snapshot: stage.snapshot.as_ref().map(|_| SnapshotTracker::default()),
            finished: false,
            tracked_releases: 0,
            poll_wait: if stage.snapshot.is_some() { SNAPSHOT_UPLOAD_WAIT } else { TICK },
        }
    }

    /// Takes records, writes and ticks until shutdown is requested (or a snapshot is finished).
    pub fn consume(&mut self) {
        let context = self.consumer.context();
        let handoff = &*context.handoff;
        let queue = context.fetch_queue();
        let mut errors = Vec::new();
        let mut last_tick = Instant::now();
        while !self.stage.shutdown.is_stopping() && !self.finished {
            // Without a fetch queue, the records come with the events: wait for them there.
            let wait = if queue.is_some() { Duration::ZERO } else { self.poll_wait };
            let mut taken = self.poll_events(wait, queue.as_deref());
            if let Some(queue) = &queue {
                // Every record queued when the first arrives (waited for up to a tick, so the
                // events and the tick are looked at at least that often), copied in runs.
                let mut filler = handoff.filler();
                taken += queue.take(self.poll_wait, &mut |record| match record {
                    Ok(record) => filler.push(record),
                    Err(error) => errors.push(error),
                });
                drop(filler);
                // After the take: a rewind seeks, and every record of the take was handed over
                // before it (the writer drops a rewound partition's until the seek; see
                // apply_rewinds), every end event of the take handled before it too (a seek makes
                // them outdated, which librdkafka can no longer tell once they are taken).
                let mut rewind = handoff.take_rewind_wanted();
                for error in errors.drain(..) {
                    rewind |= self.on_error(error);
                }
                if rewind {
                    self.apply_rewinds();
                }
            }
            // Nothing more waits (the records came slower than they are taken): the writer takes
            // what is collected.
            let caught_up = match &queue {
                Some(queue) => queue.is_empty(),
                None => taken < EVENTS_PER_TURN,
            };
            if caught_up {
                handoff.submit();
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.tick();
            } else if self.snapshot.is_some() && self.stage.ledger.releases() != self.tracked_releases {
                // An upload was confirmed: the snapshot may be done now, not a tick later.
                self.track_snapshot();
            }
        }
    }

    /// A snapshot's progress: seals and pauses the partitions at their ends, and finishes the loop
    /// once all are in the archive.
    fn track_snapshot(&mut self) {
        self.tracked_releases = self.stage.ledger.releases();
        if let (Some(tracker), Some(plan)) = (&mut self.snapshot, &self.stage.snapshot) {
            self.finished = tracker.tick(plan, self.stage, self.consumer);
        }
    }

    /// Serves the consumer's own queue until it is empty (at most `EVENTS_PER_TURN`): rebalances,
    /// commit results and errors, and the records of partitions not routed to the fetch queue.
    /// Returns how many records it took.
    fn poll_events(&mut self, wait: Duration, queue: Option<&FetchQueue>) -> usize {
        let handoff = &*self.consumer.context().handoff;
        let mut records = 0;
        let mut wait = wait;
        for _ in 0..EVENTS_PER_TURN {
            match self.consumer.poll(wait) {
                Some(Ok(message)) => {
                    handoff.push(&Polled(&message));
                    records += 1;
                    if handoff.take_rewind_wanted() {
                        // A write or seal failed: fetch again from the last durable record.
                        self.apply_rewinds();
                    }
                }
                Some(Err(error)) => {
                    if self.on_error(error.into()) {
                        self.apply_rewinds();
                    }
                }
                // rdkafka's poll also returns nothing after serving an event (a rebalance, a
                // commit result, a log line): go on while more wait.
                None if queue.is_some_and(FetchQueue::events_waiting) => {}
                None => break,
            }
            wait = Duration::ZERO;
        }
        records
    }

    /// Seeks each partition awaiting a rewind to it: after failed writes, to its last durable
    /// record, and then everything pauses for a while (see [`FetchPauses::write_failed`]); after
    /// a resync or a seek that failed, to where it was asked for. A partition whose seek fails
    /// keeps dropping records until a later one succeeds (the next tick's), so no record after a
    /// hole is ever written.
    fn apply_rewinds(&mut self) {
        let mut rewinds = Vec::new();
        let mut failed_writes = false;
        for spool in self.consumer.context().state().spools_mut() {
            failed_writes |= spool.rewinds_a_failed_write();
            if let Some(offset) = spool.take_rewind() {
                rewinds.push((spool.tp.clone(), Some(offset)));
            }
        }
        if rewinds.is_empty() {
            return;
        }
        if failed_writes {
            self.pauses.write_failed(self.consumer);
        }
        hold::seek(self.consumer, &rewinds);
    }

    /// Applies the resyncs asked for this consumer's partitions: the partition's local files
    /// from the given offset on are dropped and consumption resumes where S3's chain continues
    /// (after a lost upload race) or at the given offset (to free a full disk).
    fn apply_resyncs(&mut self) {
        if self.resync_retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let stage = self.stage;
        let context = self.consumer.context();
        let requests = {
            let state = context.state();
            stage.resyncs.take(|tp| state.topics.get(&tp.topic).is_some_and(|p| p.contains_key(&tp.partition)))
        };
        for (tp, resync) in requests {
            let resume = match resync.resume_at {
                Some(offset) => offset,
                None => {
                    let probe = stage.archive.archive.frontier(&tp, resync.drop_from);
                    match stage.archive.block_on(RESYNC_PROBE_LIMIT, probe) {
                        Some(Ok(offset)) => offset,
                        Some(Err(error)) => {
                            tracing::warn!(topic = %tp.topic, partition = tp.partition, %error, "reading where the archive of the partition ends failed; retried");
                            self.retry_resync(&tp, resync);
                            continue;
                        }
                        None => {
                            tracing::warn!(topic = %tp.topic, partition = tp.partition, limit_s = RESYNC_PROBE_LIMIT.as_secs(), "the archive did not say in time where the partition ends; retried");
                            self.retry_resync(&tp, resync);
                            continue;
                        }
                    }
                }
            };
            let mut state = context.state();
            let Some(spool) = state.remove(&tp) else {
                continue;
            };
            let dropped = spool.discard().and_then(|()| super::adopt::drop_files_from(stage, &tp, resync.drop_from));
            // Until the resync is done, the partition waits where its kept data ends.
            let position = match dropped {
                Ok(dropped) => {
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, dropped_files = dropped, from = resync.drop_from, resume_at = resume, "resynced: local files dropped, records read again from Kafka");
                    resume
                }
                Err(error) => {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, %error, "dropping local files for a resync failed; retried");
                    self.retry_resync(&tp, resync);
                    resync.drop_from
                }
            };
            let version = stage.config.main.mak_format_version;
            let mut spool = stage.bound(PartitionSpool::new(&stage.work, tp.clone(), Some(position), version));
            spool.await_position(position);
            state.topics.entry(tp.topic.clone()).or_default().insert(tp.partition, spool);
            state.size_write_buffers(&stage.config.memory);
        }
    }

    fn retry_resync(&mut self, tp: &TopicPartition, resync: Resync) {
        self.stage.resyncs.retry(tp, resync);
        self.resync_retry_at = Some(Instant::now() + RESYNC_RETRY);
    }

    /// The consumer has read everything its partition `partition` of `topic` holds, up to
    /// `offset` (rdkafka's `poll` reports the partition's number only, for partitions not routed
    /// to the fetch queue: then every assigned topic's partition of that number is looked at,
    /// and nothing is learnt about where the log ends). The event
    /// comes with the answer to a fetch at the end, which the broker holds up to
    /// `fetch.wait.max.ms` (500 ms by default) once every partition is idle; the tick usually
    /// sees the end sooner (see [`PollLoop::seal_at_high_watermarks`]).
    fn on_log_end(&mut self, topic: Option<&str>, partition: i32, offset: i64) -> bool {
        let threshold = self.stage.config.consumer.seal_at_end_bytes;
        let mut sealed = false;
        {
            let mut state = self.consumer.context().state();
            let at_end = state
                .spools_mut()
                .filter(|s| s.tp.partition == partition && topic.is_none_or(|topic| s.tp.topic == topic));
            for spool in at_end {
                if topic.is_some() {
                    spool.read_to_log_end(offset);
                }
                if threshold > 0 {
                    sealed |= seal_at_end(self.stage, spool, threshold);
                }
            }
        }
        // A failed seal reopened its file at the durable point: fetch again from there.
        sealed
    }

    /// Seals, like [`PollLoop::on_log_end`], the files worth sealing of the partitions whose
    /// records are all read up to the high watermark of their last fetch response: a drain's
    /// last objects go up a tick after its last record, not after the broker's fetch wait.
    /// Only partitions with such a file are looked at. With transactions the watermark may lie
    /// past the last record delivered (an open transaction, a commit marker): the end event
    /// and the age then seal as before.
    fn seal_at_high_watermarks(&self, state: &mut ConsumerState) -> bool {
        let threshold = self.stage.config.consumer.seal_at_end_bytes;
        if threshold == 0 {
            return false;
        }
        let mut sealed = false;
        for spool in state.spools_mut().filter(|s| s.catching_up || s.is_full(threshold, None)) {
            let at_end = spool.next_offset().is_some_and(|next| {
                crate::kafka::fetch_queue::cached_high_watermark(self.consumer, &spool.tp.topic, spool.tp.partition)
                    .is_some_and(|high| next >= high)
            });
            if at_end {
                sealed |= seal_at_end(self.stage, spool, threshold);
            }
        }
        sealed
    }

    /// True when a rewind is to be applied (a seal at the log end failed).
    fn on_error(&mut self, FetchError { error, topic, offset, .. }: FetchError) -> bool {
        if let KafkaError::PartitionEOF(partition) = error {
            return self.on_log_end(topic.as_deref(), partition, offset);
        }
        if matches!(error, KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) {
            tracing::error!(group = %self.stage.config.consumer.kafka_consumer_group, "a partition has no committed offset and kafka_auto_offset_reset = none; stopping");
            self.stage.shutdown.fail();
            return false;
        }
        // The same event reached the client's error callback, which reports connection problems.
        if error.rdkafka_error_code().is_some_and(is_connection_problem) {
            tracing::debug!(%error, "consumer error");
            return false;
        }
        if let Some(repeats) = self.consumer.context().errors.admit(&error.to_string()) {
            tracing::warn!(%error, repeats, "consumer error");
        }
        false
    }

    fn tick(&mut self) {
        self.now_secs = now_secs();
        let stage = self.stage;
        let mut state = self.consumer.context().state();
        if self.last_flush.elapsed() >= stage.config.consumer.flush_interval {
            self.last_flush = Instant::now();
            // Freeing the buffers here is what makes an idle partition cost no buffer.
            // ... and closing the files of partitions that took no record since the last flush
            // what makes the open files follow the busy partitions, not the assigned ones.
            for spool in state.spools_mut() {
                if let Err(error) = spool.flush_and_release() {
                    tracing::error!(%error, "flushing the in-progress file failed");
                }
            }
            state.recount_open_files();
        }
        let max_age = stage.config.consumer.max_age;
        for spool in state.spools_mut().filter(|s| s.is_due(max_age, self.now_secs)) {
            stage.seal(spool);
        }
        self.seal_at_high_watermarks(&mut state);
        // Soon after an upload released files (the drain's end waits for it), and every
        // COMMIT_EVERY anyway (records consumed past empty files, failed commits).
        let releases = stage.ledger.releases();
        if releases != self.committed_releases || self.last_commit.elapsed() >= COMMIT_EVERY {
            self.committed_releases = releases;
            self.last_commit = Instant::now();
            self.consumer.context().commit_progress(self.consumer, &mut state, CommitMode::Async, None);
        }
        drop(state);
        self.apply_resyncs();
        self.apply_rewinds();
        self.pauses.apply(self.stage, self.consumer);
        self.track_snapshot();
    }

    /// Shutdown: stop fetching, seal every open file, give the later stages until the deadline
    /// to upload, committing as they confirm.
    pub fn drain_for_shutdown(&mut self) {
        let stage = self.stage;
        self.pauses.pause_all(self.consumer);
        {
            let mut state = self.consumer.context().state();
            for spool in state.spools_mut() {
                stage.seal(spool);
            }
        }
        let deadline = stage.shutdown.deadline().unwrap_or_else(Instant::now);
        loop {
            {
                let mut state = self.consumer.context().state();
                self.consumer.context().commit_progress(self.consumer, &mut state, CommitMode::Sync, None);
                let pending: usize = state.spools().map(|s| stage.ledger.pending_files(&s.tp)).sum();
                if pending == 0 || Instant::now() >= deadline {
                    if pending > 0 {
                        tracing::warn!(
                            pending_files = pending,
                            "shutdown deadline reached; remaining files stay in the working directory for the next start"
                        );
                    }
                    return;
                }
            }
            // Polling serves librdkafka's callbacks; records fetched before the pause are not
            // written and not committed, so the next owner reads them again.
            let _ = self.consumer.poll(Duration::from_millis(50));
        }
    }
}

/// A partition at its log end: its open file is sealed now when it is big enough to be worth an
/// object (`seal_at_end_bytes`) or ends a backlog that filled files to `max_file_bytes` on the
/// way (the last file of a drain is usually small). Other small files wait for their age, so a
/// quiet partition does not make a flood of tiny objects; a busy one makes at most one small
/// object per full one. True when it sealed.
fn seal_at_end(stage: &Consumers, spool: &mut PartitionSpool, threshold: u64) -> bool {
    let caught_up = std::mem::take(&mut spool.catching_up);
    if !caught_up && !spool.is_full(threshold, None) {
        return false;
    }
    tracing::debug!(topic = %spool.tp.topic, partition = spool.tp.partition, caught_up, "sealing at the end of the log");
    stage.seal(spool);
    true
}
