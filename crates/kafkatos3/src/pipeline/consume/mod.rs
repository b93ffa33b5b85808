//! The consume stage: one thread per `consumer_processes`, each a librdkafka consumer in the
//! group that writes what it fetches into its partitions' spools. Offsets are never
//! auto-committed; the ledger decides what may be committed (see [`crate::local::ledger`]).

pub mod adopt;
pub mod pauses;
pub mod rebalance;
pub mod record;
pub mod resume;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Message, Offset};

use crate::config::Config;
use crate::names::TopicPartition;
use crate::observe::rate_limit::LogRateLimit;
use crate::pipeline::consume::pauses::FetchPauses;
use crate::pipeline::consume::rebalance::{seal_into_pipeline, ArchiverContext, ConsumerState};
use crate::pipeline::consume::record::{record_of, KafkaHeaders};
use crate::pipeline::spool::{now_secs, Appended, PartitionSpool};
use crate::pipeline::Pipeline;

/// How often the loop flushes, rotates, commits and checks the backlog at most.
const TICK: Duration = Duration::from_millis(100);
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// See [`client_config`].
const FETCH_QUEUE_BACKOFF_MS: &str = "10";
/// Records handled between two looks at the clock (see [`Loop::consume`]).
const TICK_CHECK_EVERY: u32 = 64;
/// The same error is reported at most this often (with a count of its repeats).
const ERROR_REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// How long a resync may wait for S3 to say where a partition's archive ends, and how soon a
/// failed one is tried again.
const RESYNC_PROBE_LIMIT: Duration = Duration::from_secs(10);
const RESYNC_RETRY: Duration = Duration::from_secs(5);

pub fn client_config(config: &Config, id: usize) -> ClientConfig {
    let consumer = &config.consumer;
    let mut client = ClientConfig::new();
    for (key, value) in &config.kafka {
        client.set(key, value.expose());
    }
    client
        .set("bootstrap.servers", &consumer.kafka_bootstrap)
        .set("group.id", &consumer.kafka_consumer_group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", consumer.kafka_auto_offset_reset.as_librdkafka());
    // The fetch queue's share of the memory budget, unless [kafka] sets it.
    for (key, value) in config.memory.librdkafka_properties(&config.kafka) {
        client.set(key, value);
    }
    // librdkafka stops fetching a partition whose local queue is over its thresholds and, by
    // default, waits a whole second before fetching it again: the daemon, which drains its queue
    // in microseconds per record, then sat idle three quarters of the time (bench: 106 k records/s
    // with the default, 490 k with 10 ms on the same run). The queue stays bounded by the same
    // thresholds; only the pause after reaching them is shorter.
    if !config.kafka.iter().any(|(key, _)| key == "fetch.queue.backoff.ms") {
        client.set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
    }
    if !config.kafka.iter().any(|(key, _)| key == "client.id") {
        client.set("client.id", format!("kafkatos3-{id}"));
    }
    client
}

pub fn spawn(pipeline: Arc<Pipeline>, id: usize) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name(format!("consumer-{id}"))
        .spawn(move || {
            crate::pipeline::nice::set_current_thread(pipeline.config.consumer.consumer_nice_level);
            run(pipeline, id)
        })
        .expect("spawn consumer thread")
}

fn run(pipeline: Arc<Pipeline>, id: usize) {
    let context = ArchiverContext {
        id,
        pipeline: pipeline.clone(),
        state: Mutex::new(ConsumerState::default()),
        errors: LogRateLimit::new(ERROR_REPORT_INTERVAL),
    };
    let consumer: BaseConsumer<ArchiverContext> = match client_config(&pipeline.config, id).create_with_context(context)
    {
        Ok(consumer) => consumer,
        Err(error) => {
            tracing::error!(consumer = id, %error, "creating the kafka consumer failed");
            pipeline.shutdown.fail();
            return;
        }
    };
    let topics: Vec<&str> = pipeline.config.consumer.topic_whitelist.iter().map(String::as_str).collect();
    if let Err(error) = consumer.subscribe(&topics) {
        tracing::error!(consumer = id, %error, "subscribing failed");
        pipeline.shutdown.fail();
        return;
    }
    tracing::info!(consumer = id, topics = ?topics, group = %pipeline.config.consumer.kafka_consumer_group, "consumer started");
    let mut lp = Loop {
        pipeline: &pipeline,
        consumer: &consumer,
        now_secs: now_secs(),
        last_flush: Instant::now(),
        last_commit: Instant::now(),
        pauses: FetchPauses::default(),
        resync_retry_at: None,
    };
    lp.consume();
    lp.drain_for_shutdown();
    // Dropping the consumer leaves the group; its revoke runs the hand-over for whatever is left.
    drop(consumer);
    tracing::info!(consumer = id, "consumer stopped");
}

struct Loop<'a> {
    pipeline: &'a Pipeline,
    consumer: &'a BaseConsumer<ArchiverContext>,
    now_secs: f64,
    last_flush: Instant,
    last_commit: Instant,
    pauses: FetchPauses,
    resync_retry_at: Option<Instant>,
}

impl Loop<'_> {
    fn consume(&mut self) {
        let mut last_tick = Instant::now();
        let mut since_check = 0u32;
        while !self.pipeline.shutdown.is_stopping() {
            let idle = match self.consumer.poll(TICK) {
                Some(Ok(message)) => {
                    self.on_message(&message);
                    false
                }
                Some(Err(error)) => {
                    self.on_error(error);
                    false
                }
                None => true,
            };
            // Reading the clock costs as much as handling a record: while records stream in, the
            // tick is due-checked every TICK_CHECK_EVERY of them (microseconds apart).
            since_check += 1;
            if (idle || since_check >= TICK_CHECK_EVERY) && last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.tick();
            }
            if since_check >= TICK_CHECK_EVERY {
                since_check = 0;
            }
        }
    }

    fn on_message(&mut self, message: &BorrowedMessage<'_>) {
        let mut state = self.consumer.context().state();
        let Some(spool) = state.topics.get_mut(message.topic()).and_then(|p| p.get_mut(&message.partition())) else {
            return;
        };
        let headers = KafkaHeaders(message.headers());
        match spool.append(&record_of(message, &headers), self.now_secs) {
            Ok(Appended::Written) => {
                let consumer = &self.pipeline.config.consumer;
                if spool.is_full(consumer.max_file_bytes, consumer.max_file_records) {
                    seal_into_pipeline(self.pipeline, spool);
                    drop(state);
                    // A failed seal reopened the file at its durable point: fetch again from there
                    // before taking any later record.
                    self.apply_rewinds();
                }
            }
            Ok(Appended::AwaitingRewind) => {}
            Ok(Appended::AlreadyHeld) => {
                tracing::debug!(partition = %spool.tp, offset = message.offset(), "skipping a record already held")
            }
            Err(error) => {
                tracing::error!(%error, out_of_space = error.is_out_of_space(), "write failed; rewinding to the last durable record and pausing");
                drop(state);
                self.apply_rewinds();
            }
        }
    }

    /// After failed writes: fetch again from each affected partition's last durable record,
    /// and pause everything for a while (see [`FetchPauses::write_failed`]).
    fn apply_rewinds(&mut self) {
        let mut rewinds = Vec::new();
        for spool in self.consumer.context().state().spools_mut() {
            if let Some(offset) = spool.take_rewind() {
                rewinds.push((spool.tp.clone(), offset));
            }
        }
        if rewinds.is_empty() {
            return;
        }
        self.pauses.write_failed(self.consumer);
        self.seek_all(rewinds);
    }

    /// Seeks each partition; one whose seek fails keeps dropping records until a later seek
    /// succeeds, so no record after a hole is ever written.
    fn seek_all(&mut self, seeks: Vec<(TopicPartition, i64)>) {
        for (tp, offset) in seeks {
            if let Err(error) =
                self.consumer.seek(&tp.topic, tp.partition, Offset::Offset(offset), Duration::from_secs(10))
            {
                tracing::warn!(partition = %tp, offset, %error, "seek failed; retried");
                let mut state = self.consumer.context().state();
                if let Some(spool) = state.topics.get_mut(&tp.topic).and_then(|p| p.get_mut(&tp.partition)) {
                    spool.await_position(offset);
                }
            }
        }
    }

    /// Applies the resyncs asked for this consumer's partitions: the partition's local files
    /// from the given offset on are dropped and consumption resumes where S3's chain continues
    /// (after a lost upload race) or at the given offset (to free a full disk).
    fn apply_resyncs(&mut self) {
        if self.resync_retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let pipeline = self.pipeline;
        let context = self.consumer.context();
        let requests = {
            let state = context.state();
            pipeline.resyncs.take(|tp| state.topics.get(&tp.topic).is_some_and(|p| p.contains_key(&tp.partition)))
        };
        for (tp, resync) in requests {
            let resume = match resync.resume_at {
                Some(offset) => offset,
                None => {
                    let probe =
                        crate::archive::frontier(pipeline.s3.store.as_ref(), &pipeline.s3.at, &tp, resync.drop_from);
                    match pipeline.s3.block_on(RESYNC_PROBE_LIMIT, probe) {
                        Some(Ok(offset)) => offset,
                        failed => {
                            let error = failed.map_or_else(
                                || "timed out".to_string(),
                                |r| r.err().map(|e| e.to_string()).unwrap_or_default(),
                            );
                            tracing::warn!(partition = %tp, %error, "reading where S3's archive of the partition ends failed; retried");
                            pipeline.resyncs.request(&tp, resync);
                            self.resync_retry_at = Some(Instant::now() + RESYNC_RETRY);
                            continue;
                        }
                    }
                }
            };
            let mut state = context.state();
            let Some(spool) = state.topics.get_mut(&tp.topic).and_then(|p| p.remove(&tp.partition)) else {
                continue;
            };
            let spool = match spool
                .discard()
                .and_then(|()| crate::pipeline::consume::adopt::drop_files_from(pipeline, &tp, resync.drop_from))
            {
                Ok(dropped) => {
                    tracing::warn!(partition = %tp, dropped_files = dropped, from = resync.drop_from, resume_at = resume, "resynced: local files dropped, records read again from Kafka");
                    let mut spool = PartitionSpool::new(
                        &pipeline.work,
                        tp.clone(),
                        Some(resume),
                        pipeline.config.main.mak_format_version,
                    );
                    spool.await_position(resume);
                    spool
                }
                Err(error) => {
                    tracing::error!(partition = %tp, %error, "dropping local files for a resync failed; retried");
                    pipeline.resyncs.request(&tp, resync);
                    self.resync_retry_at = Some(Instant::now() + RESYNC_RETRY);
                    let mut spool = PartitionSpool::new(
                        &pipeline.work,
                        tp.clone(),
                        Some(resync.drop_from),
                        pipeline.config.main.mak_format_version,
                    );
                    spool.await_position(resync.drop_from);
                    spool
                }
            };
            state.topics.entry(tp.topic.clone()).or_default().insert(tp.partition, spool);
            state.size_write_buffers(&pipeline.config.memory);
        }
    }

    fn on_error(&mut self, error: KafkaError) {
        if matches!(error, KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) {
            tracing::error!(group = %self.pipeline.config.consumer.kafka_consumer_group, "a partition has no committed offset and kafka_auto_offset_reset = none; stopping");
            self.pipeline.shutdown.fail();
            return;
        }
        if let Some(repeats) = self.consumer.context().errors.admit(&error.to_string()) {
            tracing::warn!(%error, repeats, "consumer error");
        }
    }

    fn tick(&mut self) {
        self.now_secs = now_secs();
        let pipeline = self.pipeline;
        let mut state = self.consumer.context().state();
        if self.last_flush.elapsed() >= pipeline.config.consumer.flush_interval {
            self.last_flush = Instant::now();
            // Freeing the buffers here is what makes an idle partition cost no buffer.
            for spool in state.spools_mut() {
                if let Err(error) = spool.flush_and_release() {
                    tracing::error!(%error, "flushing the in-progress file failed");
                }
            }
        }
        let max_age = pipeline.config.consumer.max_age;
        for spool in state.spools_mut().filter(|s| s.is_due(max_age, self.now_secs)) {
            seal_into_pipeline(pipeline, spool);
        }
        if self.last_commit.elapsed() >= COMMIT_EVERY {
            self.last_commit = Instant::now();
            self.consumer.context().commit_progress(self.consumer, &mut state, CommitMode::Async, None);
        }
        drop(state);
        self.apply_resyncs();
        self.apply_rewinds();
        self.pauses.apply(self.pipeline, self.consumer);
    }

    /// Shutdown: stop fetching, seal every open file, give the later stages until the deadline
    /// to upload, committing as they confirm.
    fn drain_for_shutdown(&mut self) {
        let pipeline = self.pipeline;
        self.pauses.pause_all(self.consumer);
        {
            let mut state = self.consumer.context().state();
            for spool in state.spools_mut() {
                seal_into_pipeline(pipeline, spool);
            }
        }
        let deadline = pipeline.shutdown.deadline().unwrap_or_else(Instant::now);
        loop {
            // Polling serves librdkafka's callbacks; records fetched before the pause are not
            // written and not committed, so the next owner reads them again.
            let _ = self.consumer.poll(Duration::from_millis(50));
            let mut state = self.consumer.context().state();
            self.consumer.context().commit_progress(self.consumer, &mut state, CommitMode::Sync, None);
            let pending: usize = state.spools().map(|s| pipeline.ledger.pending_files(&s.tp)).sum();
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
    }
}
