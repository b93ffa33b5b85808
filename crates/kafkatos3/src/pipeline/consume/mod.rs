//! The consume stage: one thread per `consumer_processes`, each a librdkafka consumer in the
//! group that writes what it fetches into its partitions' spools ([`poll`]). Offsets are never
//! auto-committed: [`commit`] commits what the ledger allows (see [`crate::local::ledger`]).
//!
//! - [`rebalance`]: the hand-over protocol, run by librdkafka's callback on the consumer's
//!   thread: on assignment [`resume`] asks the archive where each partition resumes and [`adopt`]
//!   judges its local files; on revocation the partition's files are uploaded before it goes.
//! - [`pauses`]: the partitions furthest ahead of their archive stop fetching (back-pressure).
//! - [`state`] and [`context`]: what one consumer owns, and what its callbacks reach.
//! - [`handoff`], [`batch`] and [`writer`]: the consumer thread only polls and copies each record
//!   into a batch; the consumer's writer thread appends the batches to the spools.
//! - [`snapshot`]: the one-shot mode: partitions assigned directly, taken up to their end.

pub mod adopt;
pub mod batch;
pub mod commit;
pub mod context;
pub mod handoff;
pub mod hold;
pub mod pauses;
pub mod poll;
pub mod rebalance;
pub mod resume;
pub mod snapshot;
pub mod state;
pub mod writer;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::kafka::client_config;
use crate::config::Config;
use crate::kafka::fetch_queue::FetchQueue;
use crate::local::backlog::Backlog;
use crate::local::layout::WorkDir;
use crate::local::ledger::Ledger;
use crate::local::legacy::Legacy;
use crate::local::locks::PartitionLocks;
use crate::observe::rate_limit::LogRateLimit;
use crate::pipeline::consume::context::ArchiverContext;
use crate::pipeline::consume::handoff::Handoff;
use crate::pipeline::consume::poll::PollLoop;
use crate::pipeline::consume::snapshot::SnapshotPlan;
use crate::pipeline::consume::state::ConsumerState;
use crate::pipeline::consume::writer::Writer;
use crate::pipeline::resync::ResyncInbox;
use crate::pipeline::spool::PartitionSpool;
use crate::pipeline::stop::Shutdown;
use crate::pipeline::wake::Wake;
use crate::pipeline::ArchiveAccess;

/// The same error is reported at most this often (with a count of its repeats).
const ERROR_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What the consumers work with; every consumer thread of the daemon shares it.
#[derive(Debug)]
pub struct Consumers {
    pub config: Arc<Config>,
    pub work: WorkDir,
    /// Owned partitions, the files each waits to upload, and the commit point.
    pub ledger: Arc<Ledger>,
    /// Where the original's files end: consumption resumes after them.
    pub legacy: Arc<Legacy>,
    /// Sealed files join it; the partitions holding the most of it pause.
    pub backlog: Arc<Backlog>,
    /// Adoption waits for the compression or leftovers sweep at hand of the partition.
    pub locks: Arc<PartitionLocks>,
    /// Notified when a file is sealed.
    pub compress_wake: Arc<Wake>,
    /// The resyncs the later stages ask for, applied to the partitions owned.
    pub resyncs: ResyncInbox,
    /// Where each partition's archive ends (on assignment, on a resync).
    pub archive: ArchiveAccess,
    pub shutdown: Arc<Shutdown>,
    /// Set for `kafkatos3 snapshot`: no group is joined, the partitions end where it says.
    pub snapshot: Option<Arc<SnapshotPlan>>,
}

impl Consumers {
    /// False for a snapshot that was not asked to `--commit`: the group's offsets stay as they are.
    pub fn commits_offsets(&self) -> bool {
        self.snapshot.as_ref().is_none_or(|plan| plan.commit)
    }

    /// A partition's spool as this mode wants it: a snapshot's takes nothing past its end.
    pub fn bound(&self, mut spool: PartitionSpool) -> PartitionSpool {
        if let Some(plan) = &self.snapshot {
            if let Some(end) = plan.end(&spool.tp) {
                spool.end_at(end);
                plan.resumes(&spool.tp, spool.next_offset());
            }
        }
        spool
    }

    /// Seals a partition's open file and hands it to the compressors.
    pub fn seal(&self, spool: &mut PartitionSpool) {
        match spool.seal() {
            Ok(Some((name, bytes))) => {
                tracing::info!(topic = %name.tp.topic, partition = name.tp.partition, file = %name.stem(), bytes, "sealed");
                self.ledger.sealed(&name);
                self.backlog.add(&name.tp, bytes);
                self.compress_wake.notify();
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, "sealing failed; the file stays in inprogress and is retried")
            }
        }
    }
}

pub fn spawn(stage: Arc<Consumers>, id: usize) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name(format!("consumer-{id}"))
        .spawn(move || {
            crate::pipeline::nice::set_current_thread(stage.config.consumer.consumer_nice_level);
            let alive = crate::observe::metrics::global().health.thread(format!("consumer-{id}"));
            let snapshot = stage.snapshot.is_some();
            run(stage, id);
            // A snapshot's consumer ends once its partitions reached their ends.
            if snapshot {
                alive.done();
            }
        })
        .expect("spawn consumer thread")
}

fn run(stage: Arc<Consumers>, id: usize) {
    let handoff = Arc::new(Handoff::new(stage.config.memory.handoff_batch_bytes()));
    let share = crate::local::open_files::share_per_consumer(stage.config.consumer.consumer_processes);
    let state = Arc::new(Mutex::new(ConsumerState::with_open_file_share(share)));
    // Declared before the consumer, so it outlives it (see Writer's Drop).
    let writer = Writer::spawn(stage.clone(), id, handoff.clone(), state.clone());
    let context = |tokens| ArchiverContext {
        id,
        stage: stage.clone(),
        state,
        handoff,
        errors: LogRateLimit::new(ERROR_REPORT_INTERVAL),
        tokens,
        fetch_queue: Mutex::new(None),
    };
    let consumer: BaseConsumer<ArchiverContext> =
        match crate::kafka::create_with(&client_config(&stage.config, id), context) {
            Ok(consumer) => consumer,
            Err(error) => {
                tracing::error!(consumer = id, %error, "creating the kafka consumer failed");
                stage.shutdown.fail();
                return;
            }
        };
    // A snapshot's consumers ask for their committed offsets before they first poll.
    crate::kafka::take_first_token(&consumer, &consumer.context().tokens);
    // Before any assignment: each partition assigned is routed to it (see on_assign).
    let fetch_queue = FetchQueueInContext::set(&consumer);
    // Patterns (^...) go to librdkafka as written: it matches them against the cluster's topics
    // at each metadata refresh, so topics created later join the subscription.
    let topics: Vec<&str> = stage.config.consumer.topic_whitelist.entries().collect();
    match &stage.snapshot {
        None => {
            if let Err(error) = consumer.subscribe(&topics) {
                tracing::error!(consumer = id, %error, "subscribing failed");
                stage.shutdown.fail();
                return;
            }
            tracing::info!(consumer = id, topics = ?topics, group = %stage.config.consumer.kafka_consumer_group, "consumer started");
        }
        Some(plan) => match snapshot::assign(&consumer, &plan.share(id)) {
            Ok(true) => tracing::info!(consumer = id, partitions = plan.share(id).len(), "snapshot consumer started"),
            Ok(false) => return,
            Err(error) => {
                tracing::error!(consumer = id, %error, "assigning the snapshot's partitions failed");
                stage.shutdown.fail();
                return;
            }
        },
    }
    let mut poll = PollLoop::new(&stage, &consumer);
    poll.consume();
    poll.drain_for_shutdown();
    drop(poll);
    // Dropping the consumer leaves the group; its revoke runs the hand-over for whatever is left.
    // A snapshot's consumer is in no group: its partitions are released here.
    if stage.snapshot.is_some() {
        let owned: Vec<_> = consumer.context().state().spools().map(|s| s.tp.clone()).collect();
        let mut state = consumer.context().state();
        for tp in owned {
            if let Some(spool) = state.remove(&tp) {
                if let Err(error) = spool.close() {
                    tracing::error!(%error, "closing the in-progress file");
                }
            }
            stage.ledger.release(&tp);
            crate::observe::metrics::global().partitions.revoked(&tp);
        }
    }
    drop(fetch_queue);
    if stage.snapshot.is_some() {
        // Done with Kafka: closing the client changes nothing now, so it does not hold up the end.
        snapshot::close_in_background(move || {
            drop(consumer);
            drop(writer);
        });
    } else {
        drop(consumer);
        drop(writer);
    }
    tracing::info!(consumer = id, "consumer stopped");
}

/// The consumer's [`FetchQueue`], in its context for as long as this guard lives. Declared after
/// the consumer, the guard takes the queue out before the consumer is dropped on every way out
/// of `run` (unwinding too): librdkafka's application queues must go before their client.
struct FetchQueueInContext<'a>(&'a BaseConsumer<ArchiverContext>);

impl<'a> FetchQueueInContext<'a> {
    fn set(consumer: &'a BaseConsumer<ArchiverContext>) -> Self {
        let queue = Arc::new(FetchQueue::new(consumer));
        *consumer.context().fetch_queue.lock().unwrap_or_else(|p| p.into_inner()) = Some(queue);
        FetchQueueInContext(consumer)
    }
}

impl Drop for FetchQueueInContext<'_> {
    fn drop(&mut self) {
        self.0.context().fetch_queue.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
