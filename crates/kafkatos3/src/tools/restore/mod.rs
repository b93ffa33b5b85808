//! `kafkatos3 restore`: the archive put back into Kafka, exactly once at the target across
//! crashes.
//!
//! The [`Catalog`](crate::archive::Catalog) selects the objects (by topic, partition, offsets,
//! and time as far as the headers prove an object out of the window: never downloaded); each
//! selected partition's records are streamed in offset order, cut ([`Cut`]) and produced
//! into the same partition number of the target topic (`--topic-map` renames). Before the first
//! record, the preflight checks the targets (they exist or are created, have enough partitions,
//! are empty unless `--append`, are not archived into this same archive) and the state file
//! ([`state`]) records where each target partition began; a re-run of the same command counts
//! what is already there and continues after it. At the end every target partition must hold
//! exactly the records of its cut: anything else is an error naming the partition.

pub mod cli;
pub mod groups;
pub mod plan;
mod preflight;
pub mod produce;
mod progress;
mod render;
pub mod repartition;
mod resume;
pub mod state;
pub mod target;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::producer::Producer as _;
use serde::Serialize;

use crate::archive::{Archive, ArchiveError, ObjectError};
use crate::names::TopicPartition;
use crate::tools::selection::{Cut, Select};
use plan::PartitionPlan;
use produce::{PartitionOutcome, Rate, Shared};
use state::{RestoreState, StateError};
use target::{Target, TargetError};

/// What to restore, where, and how.
pub struct Options<'a> {
    /// The archived records to restore.
    pub select: Select,
    /// `old -> new` topic names.
    pub topic_map: BTreeMap<String, String>,
    /// Spread each topic over the target's partitions instead of keeping partition numbers.
    pub repartition: Option<repartition::Repartition>,
    pub create_topics: bool,
    /// Restore into target partitions that already hold records.
    pub append: bool,
    /// Restore into a topic this archive's own daemon archives.
    pub force: bool,
    pub dry_run: bool,
    pub source_header: Option<String>,
    pub rate_limit: Option<produce::RateLimit>,
    /// Partitions restored at once.
    pub parallel: usize,
    pub state_path: PathBuf,
    pub decryption: Option<&'a mak::crypt::Decryption>,
    /// The topics the config's daemon archives into this archive (a restore into one is a loop).
    pub archived_by_daemon: Option<crate::config::topics::TopicSet>,
    /// Say how far it is every this often (stderr).
    pub progress_every: Duration,
    /// A re-run reads the targets' ends until two readings this far apart agree.
    pub settle: Duration,
    /// Consumer groups (regular expressions matching whole names) whose committed offsets are
    /// carried over, from `group_offsets`, or else from the archive's newest group snapshot taken
    /// at or before `groups_at` (any time when None); `groups_plan`: print the translation,
    /// commit nothing.
    pub groups: Vec<String>,
    pub group_offsets: Option<PathBuf>,
    pub groups_at: Option<i64>,
    pub groups_plan: bool,
}

/// Why a restore stopped; names the partition, object or file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("{0}")]
    Object(#[from] ObjectError),
    #[error("{0}")]
    Target(#[from] TargetError),
    #[error("{0}")]
    State(#[from] StateError),
    #[error("producing into {tp}: {error}")]
    Produce { tp: TopicPartition, error: rdkafka::error::KafkaError },
    #[error("refused: {0}")]
    Refused(String),
    #[error("{from} offset {offset} is {size} bytes, over the max.message.bytes ({limit}) of {tp}'s topic: raise it on the target topic, then run the same command again (it continues with this record)")]
    TooLarge { tp: TopicPartition, from: String, offset: i64, size: u64, limit: u64 },
    #[error("{tp} holds {found} records of this restore, {expected} expected: something else wrote to it, or it was recreated; nothing is deleted, check it and start a new restore")]
    Count { tp: TopicPartition, found: i64, expected: u64 },
    #[error("starting the S3 client's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{tp} ends at offset {end}, before offset {base} where this restore began: the topic was recreated or truncated; start a new restore (another --state)")]
    Truncated { tp: TopicPartition, end: i64, base: i64 },
    #[error("{tp} offset {target_offset} does not hold {from} offset {source_offset}, which this restore put there: the target is not what this restore wrote (another writer?); nothing more is produced")]
    NotAPrefix { tp: TopicPartition, target_offset: i64, from: TopicPartition, source_offset: i64 },
    #[error("restoring {tp}: its worker thread stopped without a result")]
    WorkerLost { tp: TopicPartition },
    #[error("{0}")]
    Groups(#[from] groups::GroupError),
    #[error("{0}")]
    Snapshot(#[from] crate::archive::SnapshotError),
}

/// What a restore did (or, with `--dry-run`, would do); `--report` writes it as JSON.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub archive: String,
    pub dry_run: bool,
    /// A previous run of the same command had restored everything.
    pub already_complete: bool,
    pub partitions: Vec<PartitionReport>,
    /// Warnings of the preflight and the catalog (gaps in the archive, target settings).
    pub warnings: Vec<String>,
    pub records: u64,
    pub produced: u64,
    pub seconds: f64,
    /// Seconds spent planning (catalog, preflight, state, targets' ends), producing (until the
    /// last acknowledgement) and checking (the targets' final ends).
    pub phases: BTreeMap<&'static str, f64>,
    /// Group offsets translated to the targets, and whether they were committed.
    pub translations: Vec<groups::Translation>,
    pub groups_committed: bool,
    /// With `--repartition`: how, and each target partition's records.
    pub repartition: Option<repartition::Repartition>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<repartition::TargetOutcome>,
    /// Where the groups' offsets came from: the file, or the archive's snapshot (and when it
    /// was taken).
    pub group_offsets_from: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PartitionReport {
    pub source: String,
    pub target: String,
    #[serde(flatten)]
    pub plan: PartitionPlanSummary,
    #[serde(flatten)]
    pub outcome: PartitionOutcome,
    /// The target partition's end before this restore wrote to it.
    pub target_base: Option<i64>,
}

/// The plan of one partition, as reported.
#[derive(Debug, Serialize)]
pub struct PartitionPlanSummary {
    pub objects: usize,
    pub bytes_to_download: u64,
    pub archived_first_offset: i64,
    pub archived_last_offset: i64,
    pub min_timestamp: Option<i64>,
    pub max_timestamp: Option<i64>,
    pub v1_objects: usize,
}

impl From<&PartitionPlan> for PartitionPlanSummary {
    fn from(p: &PartitionPlan) -> Self {
        PartitionPlanSummary {
            objects: p.object_count,
            bytes_to_download: p.bytes,
            archived_first_offset: p.first_offset,
            archived_last_offset: p.last_offset,
            min_timestamp: p.min_timestamp,
            max_timestamp: p.max_timestamp,
            v1_objects: p.v1_objects,
        }
    }
}

/// Restores what `options` select from `archive` into the cluster `client` reaches.
pub fn restore(
    archive: &Archive,
    client: &rdkafka::ClientConfig,
    options: &Options<'_>,
) -> Result<Report, RestoreError> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(RestoreError::Runtime)?;
    let archive_url = archive.url(archive.location().prefix());
    let command = fingerprint(&archive_url, client, options);
    let state = RestoreState::load(&options.state_path, &command)?;
    let mut report = Report {
        archive: archive_url,
        dry_run: options.dry_run,
        repartition: options.repartition,
        ..Report::default()
    };
    if state.as_ref().is_some_and(|s| s.format < 2) && !options.groups.is_empty() {
        return Err(RestoreError::Refused(format!(
            "{}: written before the offset map was kept in the state; group offsets cannot be translated from it",
            options.state_path.display()
        )));
    }
    let group_offsets = load_group_offsets(archive, options, &runtime, &mut report)?;
    if let Some(state) = state.as_ref().filter(|s| s.complete) {
        report.already_complete = true;
        apply_groups(state, client, options, group_offsets.as_ref(), &mut report)?;
        return Ok(report);
    }
    // A re-run reads exactly what the first run planned, whatever the archive has become.
    let mut plans = match &state {
        Some(state) => resume::plans_from_state(archive, state, &options.state_path)?,
        None => select(archive, options, &runtime)?,
    };
    // The order a repartitioning restore reads the partitions in, on every run.
    plans.sort_by(|a, b| a.target.cmp(&b.target));
    let target = Target::new(client.clone());
    let source_counts = match options.create_topics {
        true => source_partition_counts(archive, &runtime),
        false => BTreeMap::new(),
    };
    let checked = preflight::check(&target, &plans, options, &source_counts, &runtime)?;
    report.warnings = checked.warnings;
    if options.dry_run || plans.is_empty() {
        if options.dry_run && state.is_none() {
            report.warnings.extend(preflight::non_empty(&target, &plans, options.repartition.is_some())?);
        }
        report.partitions =
            plans.iter().map(|p| partition_report(p, PartitionOutcome::default(), None, options)).collect();
        return Ok(report);
    }
    let tps: Vec<TopicPartition> = match (options.repartition, &state) {
        // A re-run spreads over the partitions the first run recorded, whatever the topic has now.
        (Some(_), Some(state)) => resume::recorded_targets(state, &options.state_path)?,
        (Some(_), None) => repartition::target_partitions(&plans, &target.partition_counts()?)?,
        (None, _) => plans.iter().map(|p| p.target.clone()).collect(),
    };
    let (state, ends) = match state {
        // What a killed producer had sent may still become visible: wait until the ends settle.
        Some(state) => (state, resume::settled_ends(&target, &tps, options.settle)?),
        None => resume::first_state(&target, &plans, &tps, options, command)?,
    };
    let producer = target::producer(client, &checked.max_message_bytes).map_err(TargetError::Kafka)?;
    let progress = state::Progress::new(state.clone(), &options.state_path);
    let shared = Shared {
        progress: options.repartition.is_none().then_some(&progress),
        archive,
        decryption: options.decryption,
        runtime: runtime.handle(),
        producer: &producer,
        source_header: options.source_header.as_deref(),
        max_record_bytes: &checked.max_message_bytes,
        rate: options.rate_limit.map(Rate::new),
        sent: AtomicU64::new(0),
        sent_bytes: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    report.phases.insert("planning", started.elapsed().as_secs_f64());
    let producing = Instant::now();
    // Per target partition: its base and how many records of this restore it must hold.
    let mut expected: Vec<(TopicPartition, i64, u64)> = Vec::new();
    let outcomes = match options.repartition {
        Some(how) => {
            let resumes = resume::target_resumes(&target, &state, &ends)?;
            repartition::produce_all(&shared, &plans, &state, &resumes, how, options).map(|(outcomes, targets)| {
                for t in &targets {
                    let tp = tps.iter().find(|tp| tp.to_string() == t.target).expect("a target of this restore");
                    expected.push((tp.clone(), t.base, t.records));
                }
                report.targets = targets;
                outcomes.into_iter().map(|o| (o, None)).collect::<Vec<_>>()
            })
        }
        None => {
            let resumes = resume::resumes(&target, &plans, &state, &ends)?;
            run_partitions(&shared, &plans, &state, &resumes, options).map(|outcomes| {
                let bases = resumes.iter().map(|r| Some(r.base));
                outcomes.into_iter().zip(bases).collect::<Vec<_>>()
            })
        }
    };
    let flushed = producer.flush(Duration::from_secs(300));
    report.phases.insert("producing", producing.elapsed().as_secs_f64());
    let checking = Instant::now();
    if let Some((tp, error)) = producer.context().failed.lock().expect("delivery lock").take() {
        return Err(RestoreError::Produce { tp, error });
    }
    let outcomes = outcomes?;
    flushed.map_err(TargetError::Kafka)?;
    if options.repartition.is_none() {
        for (plan, (outcome, base)) in plans.iter().zip(&outcomes) {
            expected.push((plan.target.clone(), base.unwrap_or(0), outcome.records));
        }
    }
    let ends = target.end_offsets(&tps)?;
    report.phases.insert("checking", checking.elapsed().as_secs_f64());
    for (tp, base, records) in &expected {
        let found = ends[tp] - base;
        if found != *records as i64 {
            return Err(RestoreError::Count { tp: tp.clone(), found, expected: *records });
        }
    }
    let mut state = progress.into_state();
    for (plan, (outcome, _)) in plans.iter().zip(&outcomes) {
        if let Some(recorded) = state.partitions.get_mut(&plan.target.to_string()) {
            recorded.offset_map.clone_from(&outcome.offset_map);
        }
    }
    state.complete = true;
    state.save(&options.state_path)?;
    for (plan, (outcome, base)) in plans.iter().zip(outcomes) {
        report.records += outcome.records;
        report.produced += outcome.produced;
        report.partitions.push(partition_report(plan, outcome, base, options));
    }
    apply_groups(&state, client, options, group_offsets.as_ref(), &mut report)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The committed offsets `--groups` carries over (from `--group-offsets` or the archive's
/// snapshot), read before anything is produced so that a missing snapshot or a bad file stops the
/// restore at once, not after it.
fn load_group_offsets(
    archive: &Archive,
    options: &Options<'_>,
    runtime: &tokio::runtime::Runtime,
    report: &mut Report,
) -> Result<Option<groups::GroupOffsets>, RestoreError> {
    if options.groups.is_empty() {
        return Ok(None);
    }
    let offsets = match &options.group_offsets {
        Some(path) => {
            report.group_offsets_from = Some(path.display().to_string());
            groups::load(path)?
        }
        None => {
            let Some((url, snapshot)) = runtime.block_on(archive.latest_group_snapshot(options.groups_at))? else {
                let when = options.groups_at.map_or(String::new(), |at| format!(" taken at or before {at} ms"));
                return Err(RestoreError::Refused(format!(
                    "--groups: the archive holds no group snapshot{when} (the daemon keeps them with [groups] archive_groups); give --group-offsets FILE"
                )));
            };
            report.group_offsets_from = Some(format!("{url} (taken at {} ms)", snapshot.taken_ms));
            snapshot.groups
        }
    };
    Ok(Some(offsets))
}

/// Translates the groups' committed offsets with a complete restore's offset map, and commits
/// them on the target unless only the plan is asked for.
fn apply_groups(
    state: &RestoreState,
    client: &rdkafka::ClientConfig,
    options: &Options<'_>,
    offsets: Option<&groups::GroupOffsets>,
    report: &mut Report,
) -> Result<(), RestoreError> {
    let Some(offsets) = offsets else {
        return Ok(());
    };
    report.translations = groups::translate(offsets, &options.groups, state)?;
    if report.translations.is_empty() {
        report.warnings.push("no committed offsets of the selected groups for the restored partitions".into());
    } else if !options.groups_plan && !options.dry_run {
        groups::commit(client, &report.translations)?;
        report.groups_committed = true;
    }
    Ok(())
}

/// The source topics' partition counts in the archive's newest group snapshot; none when it has
/// no snapshot or it cannot be read (the archive's own partitions are then the count).
fn source_partition_counts(archive: &Archive, runtime: &tokio::runtime::Runtime) -> BTreeMap<String, i32> {
    match runtime.block_on(archive.latest_group_snapshot(None)) {
        Ok(Some((_, snapshot))) => snapshot.topics,
        Ok(None) => BTreeMap::new(),
        Err(error) => {
            tracing::warn!(%error, "partition counts of the source topics not known");
            BTreeMap::new()
        }
    }
}

/// The catalog of what the options select, as per-partition plans.
fn select(
    archive: &Archive,
    options: &Options<'_>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Vec<PartitionPlan>, RestoreError> {
    let headers = crate::archive::Headers::Read { decryption: options.decryption };
    let catalog = runtime.block_on(options.select.catalog(archive, headers, &BTreeMap::new()))?;
    Ok(plan::plan(&catalog, &options.topic_map, |key| archive.url(key)))
}

pub(super) fn cut_for(plan: &PartitionPlan, options: &Options<'_>, last_source_offset: i64) -> Cut {
    options.select.cut(plan.source.partition, Some(last_source_offset))
}

fn run_partitions(
    shared: &Shared<'_>,
    plans: &[PartitionPlan],
    state: &RestoreState,
    resumes: &[produce::Resume],
    options: &Options<'_>,
) -> Result<Vec<PartitionOutcome>, RestoreError> {
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<PartitionOutcome, RestoreError>>>> =
        plans.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let expected: u64 = plans
            .iter()
            .zip(resumes)
            .map(|(plan, resume)| {
                let cut = cut_for(plan, options, state.partitions[&plan.target.to_string()].last_source_offset);
                let first = cut.from_offset.map_or(plan.first_offset, |from| from.max(plan.first_offset));
                let span = cut.to_offset.unwrap_or(plan.last_offset) - first + 1;
                u64::try_from(span).unwrap_or(0).saturating_sub(resume.already)
            })
            .sum();
        let done = &done;
        scope.spawn(move || progress::report(shared, done, options.progress_every, expected));
        let workers: Vec<_> = (0..options.parallel.clamp(1, plans.len().max(1)))
            .map(|_| {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(plan) = plans.get(i) else { break };
                    let recorded = &state.partitions[&plan.target.to_string()];
                    let cut = cut_for(plan, options, recorded.last_source_offset);
                    let result = produce::restore_partition(shared, plan, cut, &resumes[i]);
                    if result.is_err() {
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                    *results[i].lock().expect("result lock") = Some(result);
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.join();
        }
        done.store(true, Ordering::Relaxed);
    });
    results
        .into_iter()
        .zip(plans)
        .map(|(result, plan)| {
            let result = result.into_inner().expect("result lock");
            result.unwrap_or_else(|| Err(RestoreError::WorkerLost { tp: plan.target.clone() }))
        })
        .collect()
}

fn partition_report(
    plan: &PartitionPlan,
    outcome: PartitionOutcome,
    base: Option<i64>,
    options: &Options<'_>,
) -> PartitionReport {
    PartitionReport {
        source: plan.source.to_string(),
        // Repartitioned: the topic, spread over its partitions.
        target: match options.repartition {
            None => plan.target.to_string(),
            Some(_) => plan.target.topic.clone(),
        },
        plan: plan.into(),
        outcome,
        target_base: base,
    }
}

/// What makes two restore commands "the same": the archive, the selection, the mapping and
/// what is added to the records.
fn fingerprint(archive: &str, client: &rdkafka::ClientConfig, options: &Options<'_>) -> String {
    let mut command = serde_json::json!({
        "archive": archive,
        "target": client.get("bootstrap.servers"),
        "topics": options.select.topics,
        "partitions": options.select.partitions,
        "from_offset": options.select.from_offset,
        "to_offset": options.select.to_offset,
        "from_ms": options.select.from_ms,
        "to_ms": options.select.to_ms,
        "topic_map": options.topic_map,
        "source_header": options.source_header,
    });
    // Only when given: the state files of restores started before the flag existed still match.
    if let Some(how) = options.repartition {
        command["repartition"] = serde_json::json!(how);
    }
    command.to_string()
}

#[cfg(test)]
mod tests;
