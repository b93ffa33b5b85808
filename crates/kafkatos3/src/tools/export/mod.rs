//! `kafkatos3 export`: the archive as a dataset that query engines read, derived from the MAK
//! objects (the archive of record) without a second pass over Kafka, exactly once and
//! incrementally.
//!
//! Each pass lists the selected part of the archive ([`Select::catalog`]) and exports every
//! partition (several at once): its objects in offset order, the records of the cut that the
//! destination does not hold yet, into Parquet files in Hive-style folders by hour of record time.
//! A per-partition checkpoint in the destination says which offsets it holds; `--follow` repeats
//! the pass at an interval and so exports what the daemon archives meanwhile.
//!
//! - [`parquet`]: archived records as one Parquet file (the schema, the encoding).
//! - [`layout`]: where they go - folders by topic and hour, file names from the offsets - and one
//!   run of an object's records split into its files.
//! - [`checkpoint`]: what the destination holds per partition, and the pending object.
//! - [`destination`]: the store written to: files created if absent, checkpoints, the dataset's
//!   description.
//! - [`partition`]: one partition's export.
//! - [`metrics`]: what `--metrics-listen` serves.
//! - [`cli`]: the command line.

pub mod checkpoint;
pub mod cli;
pub mod destination;
pub mod layout;
pub mod metrics;
pub mod parquet;
pub mod partition;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::archive::{Archive, ArchiveError, Catalog, Headers, ObjectError};
use crate::names::TopicPartition;
use crate::tools::progress::Progress;
use crate::tools::selection::Select;
use destination::{Dataset, Destination};
use parquet::ValueFormat;
use partition::{PartitionOutcome, Shared};

/// What to export and how.
pub struct Options<'a> {
    pub select: Select,
    pub values: ValueFormat,
    pub decryption: Option<&'a mak::crypt::Decryption>,
    /// Partitions exported at once.
    pub parallel: usize,
    /// Keep exporting: a new pass this long after the previous one ended, until stopped.
    pub follow: Option<Duration>,
    /// Progress on stderr (one-shot runs): a bar on a terminal, else a line this often.
    pub progress_every: Option<Duration>,
    /// Told after each pass (`--metrics-listen`).
    pub metrics: Option<&'a metrics::ExportMetrics>,
}

/// Why an export stopped; names the object, file or flag at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("{0}")]
    Object(#[from] ObjectError),
    #[error("{url}: {source}")]
    Store { url: String, source: object_store::Error },
    #[error("{url}: {problem}")]
    Unreadable { url: String, problem: String },
    #[error("encoding the records of {url} as Parquet: {source}")]
    Parquet { url: String, source: ::parquet::errors::ParquetError },
    #[error("refused: {0}")]
    Refused(String),
    #[error("starting the store client's runtime: {0}")]
    Runtime(std::io::Error),
}

/// What an export did, over all its passes.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub archive: String,
    pub destination: String,
    pub value_format: &'static str,
    pub passes: u64,
    /// Per partition (`topic:partition`), what this run did and what the destination holds.
    pub partitions: BTreeMap<String, PartitionOutcome>,
    /// Partitions whose last pass failed, and why.
    pub failed: BTreeMap<String, String>,
    /// What the archive's listing showed that is not right (gaps, overlaps, claims without
    /// objects or unreadable, objects without claims).
    pub warnings: BTreeSet<String>,
    pub records: u64,
    pub files_written: u64,
    pub files_found: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub seconds: f64,
    /// Stopped by a signal before the archive was exported to its end.
    pub interrupted: bool,
}

/// Exports what `options` select from `archive` into `destination`: once, or with
/// [`Options::follow`] pass after pass until `stop` is set. A partition that fails is reported
/// in [`Report::failed`] and the others go on; a failed pass of `--follow` is tried again at the
/// next one.
pub fn export(
    archive: &Archive,
    destination: &Destination,
    options: &Options<'_>,
    runtime: &tokio::runtime::Runtime,
    stop: &AtomicBool,
) -> Result<Report, ExportError> {
    let started = Instant::now();
    let archive_url = archive.url(archive.location().prefix()).trim_end_matches('/').to_string();
    let root = destination.root_url();
    if root == archive_url || root.starts_with(&format!("{archive_url}/")) {
        return Err(ExportError::Refused(format!(
            "--to {root} is inside the archive {archive_url}: its files would mix with the archive's objects; export elsewhere"
        )));
    }
    let dataset = Dataset {
        kafkatos3_export: 1,
        format: "parquet".into(),
        value_format: options.values.name().into(),
        archive: archive_url.clone(),
    };
    runtime.block_on(destination.claim_dataset(&dataset))?;
    let mut report =
        Report { archive: archive_url, destination: root, value_format: options.values.name(), ..Report::default() };
    // Per partition, where the previous pass found the archive all exported.
    let mut known = BTreeMap::new();
    loop {
        report.passes += 1;
        let before = (report.records, report.files_written + report.files_found);
        let passed = pass(archive, destination, options, runtime, stop, &mut known, &mut report);
        if let Some(metrics) = options.metrics {
            metrics.pass_ended(&report, passed.as_ref().err().map(ToString::to_string).as_deref());
        }
        match passed {
            Ok(()) => {}
            Err(error) if options.follow.is_some() => eprintln!("kafkatos3 export: {error}; trying again"),
            Err(error) => return Err(error),
        }
        report.interrupted = stop.load(Ordering::Relaxed);
        let Some(every) = options.follow.filter(|_| !report.interrupted) else { break };
        if report.records > before.0 || !report.failed.is_empty() {
            eprintln!(
                "kafkatos3 export: pass {}: {} records into {} files, {} partitions failing",
                report.passes,
                report.records - before.0,
                report.files_written + report.files_found - before.1,
                report.failed.len()
            );
        }
        if !sleep_unless_stopped(every, stop) {
            report.interrupted = true;
            break;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One listing of the archive, every selected partition exported.
fn pass(
    archive: &Archive,
    destination: &Destination,
    options: &Options<'_>,
    runtime: &tokio::runtime::Runtime,
    stop: &AtomicBool,
    known: &mut BTreeMap<TopicPartition, i64>,
    report: &mut Report,
) -> Result<(), ExportError> {
    let progress = Progress::new("export", "objects exported");
    let every = options.progress_every.filter(|_| options.follow.is_none());
    // Headers only prove objects outside a time window: without one they are not read.
    let headers = match options.select.has_time_window() {
        true => Headers::Read { decryption: options.decryption },
        false => Headers::Skip,
    };
    let outcomes = crate::tools::progress::reporting(&progress, every, || {
        let catalog = runtime.block_on(options.select.catalog(archive, headers, known))?;
        for warning in warnings(archive, &catalog) {
            if report.warnings.insert(warning.clone()) && options.follow.is_some() {
                eprintln!("kafkatos3 export: warning: {warning}");
            }
        }
        let jobs: Vec<_> = catalog.partitions.iter().filter(|(_, p)| !p.objects.is_empty()).collect();
        let objects = jobs.iter().map(|(_, p)| p.objects.len() as u64).sum();
        progress.listed(objects, jobs.iter().flat_map(|(_, p)| &p.objects).map(|o| o.size).sum());
        let shared = Shared {
            archive,
            decryption: options.decryption,
            runtime: runtime.handle(),
            destination,
            values: options.values,
            stop,
            progress: &progress,
        };
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..options.parallel.clamp(1, jobs.len().max(1)) {
                scope.spawn(|| {
                    while let Some((tp, partition)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let cut = options.select.cut(tp.partition, None);
                        let below = known.get(*tp).copied();
                        let result = partition::export_partition(&shared, tp, partition, cut, below);
                        results.lock().expect("results lock").push(((*tp).clone(), result));
                    }
                });
            }
        });
        Ok::<_, ExportError>(results.into_inner().expect("results lock"))
    })?;
    for (tp, result) in outcomes {
        match result {
            Ok(outcome) => {
                if let Some(below) = outcome.known_below {
                    known.insert(tp.clone(), below);
                }
                let tp = tp.to_string();
                report.records += outcome.records;
                report.files_written += outcome.files_written;
                report.files_found += outcome.files_found;
                report.bytes_read += outcome.bytes_read;
                report.bytes_written += outcome.bytes_written;
                report.failed.remove(&tp);
                report.partitions.entry(tp).or_default().add(&outcome);
            }
            Err(error) => {
                // A one-shot run reports it at the end; --follow goes on, so it says so now.
                if options.follow.is_some() {
                    eprintln!("kafkatos3 export: {tp}: {error}");
                }
                report.failed.insert(tp.to_string(), error.to_string());
            }
        }
    }
    Ok(())
}

/// What the listing shows that the export cannot mend: offsets no object holds, or two do
/// (exported once), claims whose object is missing (exported once it appears), claims that
/// cannot be read, objects no claim names (not part of the archive, not exported).
fn warnings(archive: &Archive, catalog: &Catalog) -> Vec<String> {
    let mut warnings = Vec::new();
    for (tp, partition) in &catalog.partitions {
        for (first, last) in &partition.gaps {
            warnings.push(format!("{tp}: the archive holds no object for offsets {first}-{last}"));
        }
        for (first, last) in &partition.overlaps {
            warnings.push(format!("{tp}: offsets {first}-{last} are in more than one object (exported once)"));
        }
        for (first, last) in &partition.unclaimed {
            warnings.push(format!(
                "{tp}: an object of offsets {first}-{last} has no claim (an upload under way, or one that lost a race): not exported unless claimed"
            ));
        }
        for missing in &partition.missing {
            warnings.push(format!(
                "{tp}: {} claims offsets {}-{} for {}, which is not there",
                archive.url(missing.claim.as_ref()),
                missing.first,
                missing.last,
                missing.object
            ));
        }
        for bad in &partition.bad_claims {
            warnings.push(format!("{tp}: {}", bad.error));
        }
    }
    warnings
}

/// Sleeps `every` unless `stop` is set meanwhile; false when it was.
fn sleep_unless_stopped(every: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + every;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())));
    }
    !stop.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests;
