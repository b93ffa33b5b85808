//! Snapshot mode of the consume stage (`kafkatos3 snapshot`): no group is joined. Each consumer
//! is assigned its share of the whitelisted partitions directly and settles them as an
//! assignment in the group is settled (local files adopted, the resume point taken from the chain
//! of claims in the archive), so a snapshot continues the daemon's archive and the claims keep
//! two writers of one partition from archiving a record twice. Each partition takes the records
//! before its end offset as of the start ([`SnapshotPlan`]); one that holds them all is sealed at
//! once and paused, and a consumer returns once every partition of its share is in the archive
//! (and committed, when asked).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::kafka::client_config;
use crate::config::Config;
use crate::names::TopicPartition;
use crate::pipeline::consume::context::{is_log_end, ArchiverContext};
use crate::pipeline::consume::hold;
use crate::pipeline::consume::Consumers;

/// Time the broker gets to describe a topic or a partition's offsets.
const KAFKA_LIMIT: Duration = Duration::from_secs(30);
/// How long the end of the log is read for at most (see [`read_to_log_end`]).
const END_PROBE_LIMIT: Duration = Duration::from_secs(10);
/// How long a partition may stand still below its end before Kafka is asked about it again.
const STALL_CHECK: Duration = Duration::from_secs(15);
/// How long the final commit is retried once everything is in the archive.
const COMMIT_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("creating the kafka client: {0}")]
    Client(KafkaError),
    #[error("topic {topic}: reading its partitions from Kafka: {source}")]
    Metadata { topic: String, source: KafkaError },
    #[error("topic {topic} does not exist in Kafka ({reason})")]
    NoTopic { topic: String, reason: String },
    #[error("partition {tp}: reading its offsets from Kafka: {source}")]
    Watermarks { tp: TopicPartition, source: KafkaError },
    #[error("topic {topic}: reading its partitions' offsets from Kafka: {source}")]
    Offsets { topic: String, source: KafkaError },
}

/// The offsets a snapshot covers in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    /// The partition's log start when the snapshot began.
    pub low: i64,
    /// Its log end then: the first offset the snapshot does not take.
    pub end: i64,
}

/// How far a snapshot has got with one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionProgress {
    /// Where the partition resumed: the archive held everything before it.
    pub from: Option<i64>,
    /// One past the last record taken.
    pub read: Option<i64>,
    /// Every record before the end is taken and sealed.
    pub ended: bool,
    /// ... and in the archive.
    pub archived: bool,
    /// ... and the group's offset moved there (`--commit`).
    pub committed: bool,
}

/// What a snapshot takes: every partition of the whitelisted topics up to its end offset as of
/// the start, shared among the consumers.
#[derive(Debug)]
pub struct SnapshotPlan {
    pub spans: BTreeMap<TopicPartition, Span>,
    consumers: usize,
    /// Move the group's offsets to what was archived.
    pub commit: bool,
    progress: Mutex<BTreeMap<TopicPartition, PartitionProgress>>,
    /// Partitions whose records before the end Kafka no longer holds.
    gone: Mutex<HashSet<TopicPartition>>,
}

/// The topics a snapshot takes: the named ones, and with patterns every topic of the cluster
/// now that one matches (a pattern matching none is a warning: its topics may not exist yet).
fn snapshot_topics<C: rdkafka::consumer::ConsumerContext>(
    client: &BaseConsumer<C>,
    whitelist: &crate::config::topics::TopicSet,
) -> Result<Vec<String>, PlanError> {
    if !whitelist.has_patterns() {
        return Ok(whitelist.names().map(str::to_owned).collect());
    }
    let everything = whitelist.to_string();
    let metadata =
        client.fetch_metadata(None, KAFKA_LIMIT).map_err(|source| PlanError::Metadata { topic: everything, source })?;
    let (mut selected, missing) = whitelist.select(metadata.topics().iter().map(|t| t.name()));
    // A named topic the cluster lacks is asked for by name below, which says why it is missing.
    selected.extend(missing);
    if selected.is_empty() {
        tracing::warn!(topic_whitelist = %whitelist, "no topic of the cluster matches the whitelist's patterns");
    }
    Ok(selected)
}

impl SnapshotPlan {
    /// Asks Kafka for the whitelisted topics' partitions and their offsets now.
    pub fn discover(config: &Config, commit: bool) -> Result<Self, PlanError> {
        let mut client = client_config(config, 0);
        // At the log end a fetch waits this long for new records before the broker answers; the
        // answer is what tells where the end is (see read_to_log_end), so the shorter the better.
        client.set("fetch.wait.max.ms", "1");
        connect_eagerly(&mut client, config);
        let client: BaseConsumer<PlanContext> =
            crate::kafka::create_with(&client, |tokens| PlanContext { tokens }).map_err(PlanError::Client)?;
        crate::kafka::take_first_token(&client, &client.context().tokens);
        let started = Instant::now();
        let mut spans = BTreeMap::new();
        for topic in &snapshot_topics(&client, &config.consumer.topic_whitelist)? {
            let topic = topic.as_str();
            let metadata = client
                .fetch_metadata(Some(topic), KAFKA_LIMIT)
                .map_err(|source| PlanError::Metadata { topic: topic.to_owned(), source })?;
            let Some(described) = metadata.topics().iter().find(|t| t.name() == topic) else {
                return Err(PlanError::NoTopic {
                    topic: topic.to_owned(),
                    reason: "not in the broker's answer".into(),
                });
            };
            if let Some(error) = described.error() {
                let reason = rdkafka::error::RDKafkaErrorCode::from(error).to_string();
                return Err(PlanError::NoTopic { topic: topic.to_owned(), reason });
            }
            let partitions: Vec<i32> = described.partitions().iter().map(|p| p.id()).collect();
            let listed = list_spans(&client, topic, &partitions)?;
            let listed_ms = started.elapsed().as_millis();
            for (partition, span) in read_to_log_end(&client, topic, listed)? {
                spans.insert(TopicPartition::new(topic, partition), span);
            }
            tracing::debug!(
                topic,
                listed_ms,
                ends_read_ms = started.elapsed().as_millis(),
                "snapshot plan: partitions, offsets and log ends"
            );
        }
        let plan = Self::new(spans, 1, commit);
        close_in_background(move || drop(client));
        Ok(plan)
    }

    pub fn new(spans: BTreeMap<TopicPartition, Span>, consumers: usize, commit: bool) -> Self {
        let progress = Mutex::new(spans.keys().map(|tp| (tp.clone(), PartitionProgress::default())).collect());
        SnapshotPlan { spans, consumers: consumers.max(1), commit, progress, gone: Mutex::default() }
    }

    /// The same plan shared among `consumers`.
    pub fn with_consumers(self, consumers: usize) -> Self {
        SnapshotPlan { consumers: consumers.max(1), ..self }
    }

    /// The partitions of consumer `id`: every `consumers`-th in order, so each consumer gets a
    /// share of every topic.
    pub fn share(&self, id: usize) -> Vec<TopicPartition> {
        self.spans.keys().skip(id).step_by(self.consumers).cloned().collect()
    }

    /// How many partitions consumer `id` has (its share, without building it).
    pub fn share_len(&self, id: usize) -> usize {
        self.spans.len().saturating_sub(id).div_ceil(self.consumers)
    }

    pub fn end(&self, tp: &TopicPartition) -> Option<i64> {
        self.spans.get(tp).map(|s| s.end)
    }

    /// The offsets to take in all: the span from where each partition resumed (from its log
    /// start until that is known).
    pub fn total_records(&self) -> u64 {
        let progress = self.progress();
        self.spans.iter().map(|(tp, span)| span_records(span, progress.get(tp))).sum()
    }

    /// The offsets taken so far.
    pub fn taken_records(&self) -> u64 {
        let progress = self.progress();
        self.spans
            .iter()
            .filter_map(|(tp, span)| {
                let p = progress.get(tp)?;
                let from = p.from.unwrap_or(span.low).max(span.low);
                Some((p.read?.min(span.end) - from).max(0) as u64)
            })
            .sum()
    }

    pub fn progress(&self) -> BTreeMap<TopicPartition, PartitionProgress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Nothing before the partition's end is left in Kafka: it counts as ended.
    fn gone(&self, tp: &TopicPartition) {
        self.gone.lock().unwrap_or_else(|p| p.into_inner()).insert(tp.clone());
    }

    /// True when the partition has nothing to take: empty when planned, or emptied since.
    fn nothing_left(&self, tp: &TopicPartition) -> bool {
        self.spans.get(tp).is_some_and(|s| s.low >= s.end)
            || self.gone.lock().unwrap_or_else(|p| p.into_inner()).contains(tp)
    }

    /// Where a partition resumes, once it is assigned (None: where Kafka starts it).
    pub fn resumes(&self, tp: &TopicPartition, from: Option<i64>) {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        // Only the first assignment: a resync later moves where the records come from, not
        // where this snapshot began.
        if let Some(progress) = progress.get_mut(tp).filter(|p| p.from.is_none()) {
            progress.from = from;
        }
    }

    fn record(&self, updates: Vec<(TopicPartition, PartitionProgress)>) {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        progress.extend(updates);
    }
}

/// Each partition's log start and end as Kafka lists them (ListOffsets): one request per broker
/// for the starts and one for the ends, however many partitions the topic has.
fn list_spans(
    client: &BaseConsumer<PlanContext>,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, Span>, PlanError> {
    let ask = |at: Offset| -> Result<HashMap<i32, i64>, PlanError> {
        let mut tpl = TopicPartitionList::new();
        for &partition in partitions {
            let _ = tpl.add_partition_offset(topic, partition, at);
        }
        let answer = client
            .offsets_for_times(tpl, KAFKA_LIMIT)
            .map_err(|source| PlanError::Offsets { topic: topic.to_owned(), source })?;
        let mut offsets = HashMap::new();
        for element in answer.elements() {
            let tp = TopicPartition::new(topic, element.partition());
            if let Err(source) = element.error() {
                return Err(PlanError::Watermarks { tp, source });
            }
            // Any other answer ("none") is asked again partition by partition below.
            if let Offset::Offset(offset) = element.offset() {
                offsets.insert(element.partition(), offset);
            }
        }
        Ok(offsets)
    };
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    // The special timestamps of ListOffsets: -2 the log start, -1 its end. Asked at once: each
    // call waits for its answer.
    let (starts, ends) = std::thread::scope(|scope| {
        let starts = scope.spawn(|| ask(Offset::Beginning));
        let ends = ask(Offset::End);
        (starts.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), ends)
    });
    let (starts, ends) = (starts?, ends?);
    let mut spans = BTreeMap::new();
    for &partition in partitions {
        let (low, end) = match (starts.get(&partition), ends.get(&partition)) {
            (Some(&low), Some(&end)) => (low, end),
            _ => client
                .fetch_watermarks(topic, partition, KAFKA_LIMIT)
                .map_err(|source| PlanError::Watermarks { tp: TopicPartition::new(topic, partition), source })?,
        };
        spans.insert(partition, Span { low, end });
    }
    Ok(spans)
}

/// Reads each partition of `topic` from its listed end to the end its fetch responses state, for
/// a broker that lists the end short (one test broker answers ListOffsets with the last batch's
/// base offset + 1); with Kafka nothing is there to read. A partition written to all along stops
/// being read at [`END_PROBE_LIMIT`]: its snapshot ends where the reading got to.
fn read_to_log_end(
    client: &BaseConsumer<PlanContext>,
    topic: &str,
    mut spans: BTreeMap<i32, Span>,
) -> Result<BTreeMap<i32, Span>, PlanError> {
    let mut tpl = TopicPartitionList::new();
    for (&partition, span) in &spans {
        let _ = tpl.add_partition_offset(topic, partition, Offset::Offset(span.end));
    }
    let failed = |source| PlanError::Metadata { topic: topic.to_string(), source };
    client.assign(&tpl).map_err(failed)?;
    let mut waiting: HashSet<i32> = spans.keys().copied().collect();
    let started = Instant::now();
    while !waiting.is_empty() && started.elapsed() < END_PROBE_LIMIT {
        if let Some(Err(KafkaError::PartitionEOF(partition))) = client.poll(Duration::from_millis(100)) {
            waiting.remove(&partition);
        }
    }
    let positions = client.position().map_err(failed)?;
    for element in positions.elements() {
        if let (Offset::Offset(position), Some(span)) = (element.offset(), spans.get_mut(&element.partition())) {
            span.end = span.end.max(position);
        }
    }
    client.unassign().map_err(failed)?;
    Ok(spans)
}

/// The planning client connects to every broker as soon as it learns of it (unless `[kafka]`
/// says otherwise). librdkafka retires its bootstrap connection once it knows the brokers' ids,
/// and a request in flight on it is sent again to the broker it learned; a sparse client starts
/// that connection only after `reconnect.backoff.ms` / 2 (50 ms) of holding back, so about half
/// the snapshots lost 50 ms on their first request (measured: the plan's metadata 52 ms or 1 ms).
/// The plan asks the leaders of all the snapshot's partitions anyway, and briefly. The consumers
/// stay sparse: eager, each would connect to every broker of the cluster (a broker down that leads
/// nothing of theirs would be an error for each, and cores x brokers TLS handshakes at once).
fn connect_eagerly(client: &mut rdkafka::ClientConfig, config: &Config) {
    if !config.kafka_sets("enable.sparse.connections") {
        client.set("enable.sparse.connections", "false");
    }
}

/// Runs `close` (dropping a Kafka client the snapshot is done with) on a thread of its own,
/// which nothing waits for. Closing a librdkafka client takes 0.1-0.2 s (rust-rdkafka polls a
/// consumer's close in 100 ms steps, then librdkafka joins its threads) and changes nothing once
/// the snapshot is done with the client: its clients are in no group, and the last commits of a
/// `--commit` run are synchronous (an asynchronous one still in flight is for the same offsets or
/// fewer). `kafkatos3 snapshot` exits without waiting for it (the binary's `exit_now`), as the
/// plain read it is measured against does.
pub fn close_in_background(close: impl FnOnce() + Send + 'static) {
    if let Err(error) = std::thread::Builder::new().name("kafka-client-close".into()).spawn(close) {
        // The closure went with the failed spawn, unrun: what it held was dropped here instead
        // (in no set order, which for a done consumer and its idle writer does not matter).
        tracing::warn!(%error, "no thread to close a kafka client on; closed it in line");
    }
}

/// The planning client's context: the log ends it reads to are expected, not errors.
struct PlanContext {
    tokens: crate::kafka::Tokens,
}

impl rdkafka::ClientContext for PlanContext {
    crate::kafka::answer_token_refreshes!();

    fn error(&self, error: KafkaError, reason: &str) {
        if !is_log_end(&error) {
            tracing::warn!(%error, reason, "kafka client error while planning the snapshot");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for PlanContext {}

fn span_records(span: &Span, progress: Option<&PartitionProgress>) -> u64 {
    let from = progress.and_then(|p| p.from).unwrap_or(span.low).max(span.low);
    (span.end - from).max(0) as u64
}

/// Assigns a consumer its share, settled as a group assignment is (see
/// `ArchiverContext::on_assign`). False when the share is empty.
pub fn assign(consumer: &BaseConsumer<ArchiverContext>, share: &[TopicPartition]) -> Result<bool, KafkaError> {
    if share.is_empty() {
        return Ok(false);
    }
    let mut tpl = TopicPartitionList::new();
    for tp in share {
        tpl.add_partition(&tp.topic, tp.partition);
    }
    consumer.context().on_assign(consumer, &mut tpl);
    consumer.assign(&tpl)?;
    Ok(true)
}

/// One consumer's side of a snapshot, run at each tick of its poll loop.
#[derive(Debug, Default)]
pub struct SnapshotTracker {
    ended: HashSet<TopicPartition>,
    /// Partitions whose offset a synchronous commit has moved to their end (`--commit`).
    committed: HashSet<TopicPartition>,
    /// Where each partition not ended stood, and since when (see [`STALL_CHECK`]).
    still: HashMap<TopicPartition, (Option<i64>, Instant)>,
    /// When every partition was in the archive with its commit still outstanding.
    archived_at: Option<Instant>,
}

impl SnapshotTracker {
    /// Seals and pauses the partitions that hold every record before their end, resumes one a
    /// resync sent back to an earlier offset, commits (when asked) and publishes the progress.
    /// True once every partition of this consumer is in the archive (and committed when asked,
    /// or that was tried for `COMMIT_GRACE`).
    pub fn tick(&mut self, plan: &SnapshotPlan, stage: &Consumers, consumer: &BaseConsumer<ArchiverContext>) -> bool {
        let mut reopened = Vec::new();
        let mut updates = Vec::new();
        let mut stalled = Vec::new();
        // Only where each of this consumer's partitions began is needed from the shared map.
        let began: HashMap<TopicPartition, Option<i64>> = {
            // The consumer's state first, then the shared map: the order of on_assign (`resumes`).
            let state = consumer.context().state();
            let progress = plan.progress.lock().unwrap_or_else(|p| p.into_inner());
            state.spools().map(|s| (s.tp.clone(), progress.get(&s.tp).and_then(|p| p.from))).collect()
        };
        let mut state = consumer.context().state();
        for spool in state.spools_mut() {
            let tp = spool.tp.clone();
            let ended = plan.nothing_left(&tp) || spool.reached_end();
            if ended {
                stage.seal(spool);
                if self.ended.insert(tp.clone()) {
                    tracing::info!(topic = %tp.topic, partition = tp.partition, "snapshot: every record before the end is taken");
                }
            } else if self.ended.remove(&tp) {
                reopened.push(tp.clone());
            }
            let mut progress = PartitionProgress { from: began.get(&tp).copied().flatten(), ..Default::default() };
            let read = spool.read_offset();
            progress.read = read;
            progress.ended = ended;
            // Judged after the seal: a failed one leaves records open, or to be fetched again.
            progress.archived = ended && !spool.holds_unsealed() && stage.ledger.pending_files(&tp) == 0;
            progress.committed = progress.archived && self.committed.contains(&tp);
            if !ended && self.stands_still(&tp, read) {
                stalled.push((tp.clone(), read));
            }
            updates.push((tp, progress));
        }
        drop(state);
        if plan.commit {
            self.commit(consumer, &mut updates);
        }
        let all_archived = updates.iter().all(|(_, p)| p.archived);
        let finished = updates.len() == plan.share_len(consumer.context().id)
            && all_archived
            && (!plan.commit || updates.iter().all(|(_, p)| p.committed) || self.commit_given_up());
        if !plan.commit || !all_archived {
            self.archived_at = None;
        }
        plan.record(updates);
        pause_resume(consumer, &self.ended, &reopened);
        for (tp, read) in stalled {
            look_again(plan, consumer, &tp, read);
        }
        finished
    }

    /// Commits the archived partitions not committed yet, synchronously and forward only (a
    /// daemon's offset further on stays: see `commit_progress`), and remembers what Kafka took.
    fn commit(
        &mut self,
        consumer: &BaseConsumer<ArchiverContext>,
        updates: &mut [(TopicPartition, PartitionProgress)],
    ) {
        let due: Vec<TopicPartition> = updates
            .iter()
            .filter(|(tp, p)| p.archived && !self.committed.contains(tp))
            .map(|(tp, _)| tp.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let context = consumer.context();
        let accepted = context.commit_progress(consumer, &mut context.state(), CommitMode::Sync, Some(&due));
        if accepted {
            for (tp, progress) in updates.iter_mut().filter(|(tp, _)| due.contains(tp)) {
                progress.committed = true;
                self.committed.insert(tp.clone());
            }
        }
    }

    /// True once in [`STALL_CHECK`] for a partition whose position has not moved for that long.
    fn stands_still(&mut self, tp: &TopicPartition, read: Option<i64>) -> bool {
        let now = Instant::now();
        let entry = self.still.entry(tp.clone()).or_insert((read, now));
        if entry.0 != read {
            *entry = (read, now);
            return false;
        }
        if now.duration_since(entry.1) < STALL_CHECK {
            return false;
        }
        entry.1 = now;
        true
    }

    fn commit_given_up(&mut self) -> bool {
        let since = *self.archived_at.get_or_insert_with(Instant::now);
        since.elapsed() >= COMMIT_GRACE
    }
}

/// A partition that stood still below its end: when Kafka no longer holds anything before the
/// end (retention or a truncation removed it, or the consumer was reset past it), nothing is left
/// to take and it counts as ended; otherwise it is reported, each [`STALL_CHECK`].
fn look_again(plan: &SnapshotPlan, consumer: &BaseConsumer<ArchiverContext>, tp: &TopicPartition, read: Option<i64>) {
    let Some(end) = plan.end(tp) else {
        return;
    };
    match consumer.fetch_watermarks(&tp.topic, tp.partition, KAFKA_LIMIT) {
        Ok((low, _)) if low >= end => {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, log_start = low, end, "snapshot: Kafka no longer holds the records before the end; nothing is left to take");
            plan.gone(tp);
        }
        Ok((low, high)) => {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, read, end, log_start = low, log_end = high, "snapshot: the partition has not moved below its end for a while")
        }
        Err(error) => {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, %error, "snapshot: the partition has not moved for a while and its offsets cannot be read")
        }
    }
}

/// The ended partitions are paused (again at every tick: the backlog's pauses resume what they
/// paused, ended or not); a reopened one fetches again.
fn pause_resume(
    consumer: &BaseConsumer<ArchiverContext>,
    ended: &HashSet<TopicPartition>,
    reopened: &[TopicPartition],
) {
    let ended: Vec<TopicPartition> = ended.iter().cloned().collect();
    hold::pause(consumer, &ended);
    if !reopened.is_empty() {
        tracing::info!(partitions = reopened.len(), "snapshot: a resync sent partitions back; fetching them again");
        hold::resume(consumer, reopened);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(consumers: usize) -> SnapshotPlan {
        let spans = (0..5)
            .flat_map(|p| {
                [("a", p), ("b", p)].map(|(t, p)| (TopicPartition::new(t, p), Span { low: 10, end: 10 + p as i64 * 5 }))
            })
            .collect();
        SnapshotPlan::new(spans, consumers, false)
    }

    #[test]
    fn the_shares_of_the_consumers_cover_every_partition_once_and_mix_the_topics() {
        let plan = plan(3);
        let shares: Vec<Vec<TopicPartition>> = (0..3).map(|id| plan.share(id)).collect();
        let mut all: Vec<TopicPartition> = shares.concat();
        all.sort();
        assert_eq!(all, plan.spans.keys().cloned().collect::<Vec<_>>());
        assert_eq!(shares.iter().map(Vec::len).collect::<Vec<_>>(), [4, 3, 3]);
        assert_eq!((0..3).map(|id| plan.share_len(id)).collect::<Vec<_>>(), [4, 3, 3]);
        assert!(shares[0].iter().any(|tp| tp.topic == "a") && shares[0].iter().any(|tp| tp.topic == "b"));
    }

    #[test]
    fn the_totals_count_from_where_each_partition_resumed() {
        let plan = plan(1);
        // 2 x (0 + 5 + 10 + 15 + 20) offsets from the log start.
        assert_eq!(plan.total_records(), 100);
        assert_eq!(plan.taken_records(), 0);
        let a4 = TopicPartition::new("a", 4);
        plan.record(vec![(a4, PartitionProgress { from: Some(22), read: Some(25), ..Default::default() })]);
        // a/4 resumed at 22 of 10..30: 8 to take, 3 taken.
        assert_eq!(plan.total_records(), 88);
        assert_eq!(plan.taken_records(), 3);
    }
}
