//! `kafkatos3 snapshot`: the daemon's stages run once over every whitelisted partition up to its
//! end offset as of the start (see [`crate::pipeline::consume::snapshot`]), then stop. The
//! working directory, its lock and its crash recovery are the daemon's: a snapshot killed
//! half-way continues where its files and the archive end when it is run again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::daemon::{run_stages, DaemonError};
use crate::names::TopicPartition;
use crate::pipeline::consume::snapshot::{PartitionProgress, PlanError, SnapshotPlan, Span};
use crate::pipeline::wake::Latch;

/// At most this many partitions are named in an error.
const NAMED: usize = 8;

#[derive(Debug, Clone)]
pub struct Options {
    /// Consumers to share the partitions among (default: the larger of `consumer_processes` and
    /// the number of cores, at most one per partition).
    pub consumers: Option<usize>,
    /// Move the group's offsets to what was archived.
    pub commit: bool,
    /// A progress line this often when stderr is not a terminal (a bar when it is).
    pub progress_every: Duration,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("{count} partition(s) not archived to their end: {partitions}")]
    Incomplete { count: usize, partitions: String },
    #[error("everything is archived, but the offsets of group {group} could not be committed for {partitions}")]
    NotCommitted { group: String, partitions: String },
}

/// What a snapshot did, partition by partition.
#[derive(Debug)]
pub struct Report {
    pub partitions: BTreeMap<TopicPartition, (Span, PartitionProgress)>,
    pub records: u64,
    pub seconds: f64,
}

impl Report {
    pub fn render(&self) -> String {
        let archived = self.partitions.values().filter(|(_, p)| p.archived).count();
        let rate = self.records as f64 / self.seconds.max(0.001);
        format!(
            "snapshot: {archived} of {} partitions archived to their end, {} records in {:.1} s ({rate:.0} records/s)\n",
            self.partitions.len(),
            self.records,
            self.seconds
        )
    }
}

/// Runs a snapshot; `stop` (a signal) ends it early, leaving what was not archived for the next
/// run. Its Kafka clients may still be closing when it returns (`close_in_background`): a process
/// that exits then should `_exit`, as `kafkatos3 snapshot` does.
pub fn run(
    mut config: Config,
    options: &Options,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Report, SnapshotError> {
    let started = Instant::now();
    let plan = SnapshotPlan::discover(&config, options.commit)?;
    // A consumer per core by default (a snapshot is a drain: the consumers' CPU is what bounds
    // it), never more than there are partitions, and never so many that a consumer's fetch
    // queue falls under librdkafka's 1 MiB minimum twice over (the budget gives each half of its
    // fetch share).
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let affordable = usize::try_from(config.memory.fetch / (2 << 20)).unwrap_or(usize::MAX).max(1);
    let default = config.consumer.consumer_processes.max(cores.min(affordable));
    let consumers = options.consumers.unwrap_or(default).min(plan.spans.len()).max(1);
    config.consumer.consumer_processes = consumers;
    config.memory = config.memory.with_consumers(consumers);
    let plan = Arc::new(plan.with_consumers(consumers));
    tracing::info!(
        partitions = plan.spans.len(),
        consumers = config.consumer.consumer_processes,
        offsets = plan.total_records(),
        commit = options.commit,
        "snapshot: archiving every partition up to its end offset now"
    );
    let group = config.consumer.kafka_consumer_group.clone();
    let done = Arc::new(Latch::default());
    let reporter = {
        let (plan, done, every) = (plan.clone(), done.clone(), options.progress_every);
        std::thread::Builder::new()
            .name("snapshot-progress".into())
            .spawn(move || report_progress(&plan, &done, every))
            .expect("spawn the progress thread")
    };
    let result = run_stages(config, Some(plan.clone()), stop);
    done.set();
    let _ = reporter.join();
    result?;

    let progress = plan.progress();
    let records = plan.taken_records();
    let partitions: BTreeMap<_, _> = plan
        .spans
        .iter()
        .map(|(tp, span)| (tp.clone(), (*span, progress.get(tp).cloned().unwrap_or_default())))
        .collect();
    let missing: Vec<&TopicPartition> = partitions.iter().filter(|(_, (_, p))| !p.archived).map(|(tp, _)| tp).collect();
    if !missing.is_empty() {
        return Err(SnapshotError::Incomplete { count: missing.len(), partitions: names(&missing) });
    }
    let uncommitted: Vec<&TopicPartition> =
        partitions.iter().filter(|(_, (_, p))| options.commit && !p.committed).map(|(tp, _)| tp).collect();
    if !uncommitted.is_empty() {
        return Err(SnapshotError::NotCommitted { group, partitions: names(&uncommitted) });
    }
    Ok(Report { partitions, records, seconds: started.elapsed().as_secs_f64() })
}

fn names(tps: &[&TopicPartition]) -> String {
    let mut text = tps.iter().take(NAMED).map(|tp| tp.to_string()).collect::<Vec<_>>().join(", ");
    if tps.len() > NAMED {
        text.push_str(&format!(" and {} more", tps.len() - NAMED));
    }
    text
}

/// A bar on a terminal (offsets taken of the total, partitions archived), a log line every
/// `every` otherwise.
fn report_progress(plan: &SnapshotPlan, done: &Latch, every: Duration) {
    let started = Instant::now();
    let bar = crate::observe::progress::terminal_bar(
        plan.total_records(),
        "snapshot {bar:30} {human_pos}/{human_len} records {msg} {per_sec} eta {eta}",
    );
    let mut last_line = Instant::now();
    // Woken by the end at once: the exit does not wait out a redraw's interval.
    while !done.wait_timeout(Duration::from_millis(100)) {
        let (taken, total) = (plan.taken_records(), plan.total_records());
        let progress = plan.progress();
        let archived = progress.values().filter(|p| p.archived).count();
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(taken);
            bar.set_message(format!("{archived}/{} partitions archived", progress.len()));
            continue;
        }
        if last_line.elapsed() < every {
            continue;
        }
        last_line = Instant::now();
        let rate = taken as f64 / started.elapsed().as_secs_f64().max(0.001);
        tracing::info!(taken, total, archived, partitions = progress.len(), rate = rate.round(), "snapshot progress");
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
