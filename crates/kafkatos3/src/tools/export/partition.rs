//! Exporting one archived partition: its objects in offset order, each read once, the records
//! of the cut that the destination does not hold yet written as runs (consecutive records of one
//! object), each run split into its hourly files. The checkpoint ([`super::checkpoint`]) is the
//! record of what the destination holds; the steps around each object's files keep it true
//! across a kill at any point.

use std::sync::atomic::{AtomicBool, Ordering};

use mak::v2::Record;
use object_store::path::Path as ObjectPath;
use serde::Serialize;

use super::checkpoint::{cursor_key, Checkpoint, Cursor, Pending, Range, FORMAT};
use super::destination::{Created, Destination};
use super::layout::{ExportFile, RunExport};
use super::parquet::ValueFormat;
use super::ExportError;
use crate::archive::{Archive, CatalogObject, ObjectReader, PartitionCatalog};
use crate::names::TopicPartition;
use crate::tools::progress::Progress;
use crate::tools::selection::{Admit, Cut, Cutter};

/// What the partitions' workers share.
pub struct Shared<'a> {
    pub archive: &'a Archive,
    pub decryption: Option<&'a mak::crypt::Decryption>,
    pub runtime: &'a tokio::runtime::Handle,
    pub destination: &'a Destination,
    pub values: ValueFormat,
    /// Set on SIGINT/SIGTERM: stop before the next object (a partition that fails does not stop
    /// the others).
    pub stop: &'a AtomicBool,
    pub progress: &'a Progress,
}

/// What exporting one partition did in this run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PartitionOutcome {
    /// Records written into files by this run (also those of files a killed run had written).
    pub records: u64,
    pub files_written: u64,
    /// Files a killed run had created (the same records under the same names): kept.
    pub files_found: u64,
    pub objects_read: u64,
    /// Objects whose selected records the destination held already: not read.
    pub objects_skipped: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Offsets the destination holds for the partition after this run.
    pub exported: Vec<Range>,
    /// The archive's last offset of the partition, as listed.
    pub archive_end: Option<i64>,
    /// Where the archive's objects stop being all exported, without a gap or a missing object
    /// before: the next pass need not read the claims below it.
    #[serde(skip)]
    pub known_below: Option<i64>,
}

impl PartitionOutcome {
    pub fn add(&mut self, other: &PartitionOutcome) {
        self.records += other.records;
        self.files_written += other.files_written;
        self.files_found += other.files_found;
        self.objects_read += other.objects_read;
        self.objects_skipped += other.objects_skipped;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.exported.clone_from(&other.exported);
        self.archive_end = self.archive_end.max(other.archive_end);
    }
}

/// A run of consecutive records of one object, being exported.
struct Run {
    export: RunExport,
    first: i64,
    last: i64,
    /// No record of the object comes before it / after it: the object's own first and last
    /// offsets then bound what the run covers (offsets Kafka skipped included).
    from_object_start: bool,
    to_object_end: bool,
}

impl Run {
    /// The offsets the run covers. Where objects overlap, an offset one of them lacks another
    /// may hold: then only the run's own records count.
    fn range(&self, object: &CatalogObject, overlapping: bool) -> Range {
        let first = if self.from_object_start && !overlapping { object.name.start.min(self.first) } else { self.first };
        let last = if self.to_object_end && !overlapping { object.name.end.max(self.last) } else { self.last };
        (first, last)
    }
}

/// Exports the records of `cut` in the partition's objects (in offset order, from `known_below`
/// when a previous pass left it there) that the destination does not hold.
pub fn export_partition(
    shared: &Shared<'_>,
    tp: &TopicPartition,
    partition: &PartitionCatalog,
    cut: Cut,
    known_below: Option<i64>,
) -> Result<PartitionOutcome, ExportError> {
    let archive_end = partition.objects.iter().map(|o| o.name.end).max();
    let mut outcome = PartitionOutcome { archive_end, ..PartitionOutcome::default() };
    let mut settled = Settled::new(known_below);
    let mut checkpoint = load(shared, tp)?;
    finish_pending(shared, tp, &mut checkpoint, &mut outcome)?;
    let windowed = cut.has_time_window();
    let cursor_key = cursor_key(&cut);
    let mut cursor = match windowed {
        true => checkpoint.cursors.get(&cursor_key).cloned().unwrap_or_default(),
        false => Cursor::default(),
    };
    let mut unsaved = false;
    for object in &partition.objects {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let (start, end) = (object.name.start, object.name.end);
        if cursor.closed_at.is_some_and(|closed| start >= closed) {
            break;
        }
        let needed = match windowed {
            // A window's cut depends on every record before it: read what this cut has not.
            true => !cursor.scanned.covers((start, end)),
            false => {
                let first = cut.from_offset.map_or(start, |from| from.max(start));
                let last = cut.to_offset.map_or(end, |to| to.min(end));
                !checkpoint.exported.covers((first, last))
            }
        };
        if !needed {
            outcome.objects_skipped += 1;
            shared.progress.checked(object.size);
            settled.done(start, end);
            continue;
        }
        let overlapping = !partition.overlaps.is_empty();
        let Some(read) = read_runs(shared, tp, object, cut, overlapping, &checkpoint, &mut cursor)? else {
            break; // stopped by a signal: nothing of this object is written
        };
        outcome.objects_read += 1;
        outcome.bytes_read += object.size;
        shared.progress.checked(object.size);
        if windowed {
            cursor.scanned.add((start, end));
            checkpoint.cursors.insert(cursor_key.clone(), cursor.clone());
        }
        if read.runs.is_empty() {
            unsaved |= windowed;
        } else {
            write_runs(shared, object.key.as_ref(), read.runs, &mut checkpoint, &mut outcome)?;
            unsaved = false;
        }
        settled.done(start, end);
        if read.closed {
            break;
        }
    }
    if unsaved {
        save(shared, &mut checkpoint)?;
    }
    outcome.exported = checkpoint.exported.as_slice().to_vec();
    // What the next pass must still look at: a missing object's claim, a claim that could not be
    // read (a passing store error, too), an object whose claim is not there yet.
    let unsettled = partition
        .missing
        .iter()
        .map(|m| m.first)
        .chain(partition.bad_claims.iter().map(|b| b.start))
        .chain(partition.unclaimed.iter().map(|(first, _)| *first))
        .min();
    outcome.known_below = match (settled.below, unsettled) {
        (Some(below), Some(unsettled)) => Some(below.min(unsettled)),
        (below, _) => below,
    };
    Ok(outcome)
}

/// How far a partition's objects are done with, from its start (or where a previous pass left
/// it) and without a gap: an object that appears later inside a gap (its claim written after the
/// listing) must still be found, so its claim must still be read.
struct Settled {
    below: Option<i64>,
    /// The last offset of the objects done so far; None: nothing done, nothing known.
    end: Option<i64>,
    broken: bool,
}

impl Settled {
    fn new(known_below: Option<i64>) -> Self {
        Settled { below: known_below, end: known_below.map(|below| below.saturating_sub(1)), broken: false }
    }

    /// The next object in order, `start..=end`, needs nothing more.
    fn done(&mut self, start: i64, end: i64) {
        let follows = self.end.is_none_or(|last| start <= last.saturating_add(1));
        if self.broken || !follows {
            self.broken = true;
            return;
        }
        self.end = Some(self.end.map_or(end, |last| last.max(end)));
        self.below = self.end.map(|last| last.saturating_add(1));
    }
}

/// An object's runs, finished, and whether the cut ended in it.
struct Read {
    runs: Vec<(Range, Vec<ExportFile>)>,
    closed: bool,
}

/// Reads `object` through the cut: the runs of records to export (those the checkpoint does not
/// hold). None when a stop was asked for while it was read.
fn read_runs(
    shared: &Shared<'_>,
    tp: &TopicPartition,
    object: &CatalogObject,
    cut: Cut,
    overlapping: bool,
    checkpoint: &Checkpoint,
    cursor: &mut Cursor,
) -> Result<Option<Read>, ExportError> {
    let source = object.key.as_ref();
    let mut cutter = Cutter::resumed(cut, cursor.opened_at.is_some_and(|at| at < object.name.start));
    let (mut runs, mut current): (Vec<Run>, Option<Run>) = (Vec::new(), None);
    let (mut seen, mut closed) = (false, false);
    let read_to_end = read_object(shared, tp, &object.key, |record| {
        if shared.stop.load(Ordering::Relaxed) {
            return Err(Flow::Stopped);
        }
        let offset = record.offset;
        let was_open = cutter.opened();
        let admit = match cursor.closed_at {
            Some(at) if offset >= at => Admit::Stop,
            _ => cutter.admit(offset, record.timestamp),
        };
        if cut.has_time_window() && !was_open && cutter.opened() {
            cursor.opened_at = Some(cursor.opened_at.map_or(offset, |at| at.min(offset)));
        }
        match admit {
            Admit::Stop => {
                closed = true;
                if cut.has_time_window() {
                    cursor.closed_at = Some(cursor.closed_at.map_or(offset, |at| at.min(offset)));
                }
                runs.extend(current.take());
                return Ok(false);
            }
            Admit::Take if !checkpoint.exported.contains(offset) => {
                let from_object_start = !seen;
                let run = current.get_or_insert_with(|| Run {
                    export: RunExport::new(&tp.topic, tp.partition, shared.values, source),
                    first: offset,
                    last: offset,
                    from_object_start,
                    to_object_end: false,
                });
                run.export.push(record).map_err(|e| Flow::Failed(parquet_error(shared, &object.key, e)))?;
                run.last = offset;
            }
            Admit::Take | Admit::Skip => runs.extend(current.take()),
        }
        seen = true;
        Ok(true)
    });
    match read_to_end {
        Ok(true) => {
            if let Some(mut run) = current.take() {
                run.to_object_end = true;
                runs.push(run);
            }
        }
        Ok(false) => {}
        Err(Flow::Stopped) => return Ok(None),
        Err(Flow::Failed(error)) => return Err(error),
    }
    let mut finished = Vec::with_capacity(runs.len());
    for run in runs {
        let range = run.range(object, overlapping);
        finished.push((range, run.export.finish().map_err(|e| parquet_error(shared, &object.key, e))?));
    }
    Ok(Some(Read { runs: finished, closed }))
}

/// Writes an object's runs: noted as pending, files created, then noted as exported.
fn write_runs(
    shared: &Shared<'_>,
    object: &str,
    runs: Vec<(Range, Vec<ExportFile>)>,
    checkpoint: &mut Checkpoint,
    outcome: &mut PartitionOutcome,
) -> Result<(), ExportError> {
    let ranges: Vec<Range> = runs.iter().map(|(range, _)| *range).collect();
    checkpoint.pending = Some(Pending { object: object.to_string(), ranges });
    save(shared, checkpoint)?;
    for (range, files) in runs {
        for file in files {
            let (rows, size) = (file.rows as u64, file.bytes.len() as u64);
            match shared.runtime.block_on(shared.destination.create_file(&file.key, file.bytes))? {
                Created::New => {
                    outcome.files_written += 1;
                    outcome.bytes_written += size;
                }
                Created::AlreadyThere => outcome.files_found += 1,
            }
            outcome.records += rows;
            checkpoint.records += rows;
            checkpoint.files += 1;
        }
        checkpoint.exported.add(range);
    }
    checkpoint.pending = None;
    save(shared, checkpoint)
}

/// A run killed between noting an object as pending and noting it exported left files that may
/// be incomplete: the same ranges of the same object are written again (the files there are
/// kept: the same names hold the same records).
fn finish_pending(
    shared: &Shared<'_>,
    tp: &TopicPartition,
    checkpoint: &mut Checkpoint,
    outcome: &mut PartitionOutcome,
) -> Result<(), ExportError> {
    let Some(pending) = checkpoint.pending.clone() else {
        return Ok(());
    };
    let key = ObjectPath::from(pending.object.as_str());
    let mut runs: Vec<RunExport> = pending
        .ranges
        .iter()
        .map(|_| RunExport::new(&tp.topic, tp.partition, shared.values, &pending.object))
        .collect();
    let read = read_object(shared, tp, &key, |record| {
        if let Some(i) = pending.ranges.iter().position(|&(first, last)| (first..=last).contains(&record.offset)) {
            runs[i].push(record).map_err(|e| Flow::Failed(parquet_error(shared, &key, e)))?;
        }
        Ok(true)
    });
    // (Its reader never stops early: a pending object is finished whole.)
    match read {
        Ok(_) | Err(Flow::Stopped) => {}
        Err(Flow::Failed(error)) => {
            return Err(ExportError::Unreadable {
                url: shared.destination.url(&Checkpoint::key(tp)),
                problem: format!(
                    "finishing the export of {} that a killed run began: {error} (until it can be read, this partition is not exported; a new --to starts afresh)",
                    shared.archive.url(&pending.object)
                ),
            })
        }
    }
    let mut finished = Vec::with_capacity(runs.len());
    for (range, run) in pending.ranges.iter().zip(runs) {
        finished.push((*range, run.finish().map_err(|e| parquet_error(shared, &key, e))?));
    }
    outcome.objects_read += 1;
    write_runs(shared, &pending.object, finished, checkpoint, outcome)
}

/// Why reading an object stopped early.
enum Flow {
    Stopped,
    Failed(ExportError),
}

/// Streams `object`'s records to `each` until it says false (Ok(false)) or to the end, whose
/// checksums and last offset are then checked (Ok(true)).
fn read_object(
    shared: &Shared<'_>,
    tp: &TopicPartition,
    key: &ObjectPath,
    mut each: impl FnMut(&Record<'_>) -> Result<bool, Flow>,
) -> Result<bool, Flow> {
    let url = shared.archive.url(key.as_ref());
    let stream = shared.archive.stream(shared.runtime, key);
    let failed = |e: crate::archive::ObjectError| Flow::Failed(e.into());
    let mut reader = ObjectReader::open(url, stream, shared.decryption).map_err(failed)?;
    reader.expect_partition(tp).map_err(failed)?;
    while let Some(record) = reader.next_record().map_err(failed)? {
        if !each(&record)? {
            return Ok(false);
        }
    }
    reader.finish_sealed().map_err(failed)?;
    Ok(true)
}

fn parquet_error(shared: &Shared<'_>, key: &ObjectPath, source: parquet::errors::ParquetError) -> ExportError {
    ExportError::Parquet { url: shared.archive.url(key.as_ref()), source }
}

fn load(shared: &Shared<'_>, tp: &TopicPartition) -> Result<Checkpoint, ExportError> {
    let key = Checkpoint::key(tp);
    let Some(json) = shared.runtime.block_on(shared.destination.read_json::<serde_json::Value>(&key))? else {
        return Ok(Checkpoint::new(tp));
    };
    let bad = |problem: String| ExportError::Unreadable { url: shared.destination.url(&key), problem };
    // The format first: a newer one may not even parse as this one.
    match json.get("format").and_then(serde_json::Value::as_u64) {
        Some(format) if format <= u64::from(FORMAT) => {}
        Some(format) => return Err(bad(format!("format {format} is newer than this kafkatos3's ({FORMAT}): upgrade"))),
        None => return Err(bad("no format: not a kafkatos3 export checkpoint".into())),
    }
    let checkpoint: Checkpoint = serde_json::from_value(json).map_err(|e| bad(e.to_string()))?;
    if checkpoint.topic != tp.topic || checkpoint.partition != tp.partition {
        return Err(bad(format!("holds {}:{}, not {tp}", checkpoint.topic, checkpoint.partition)));
    }
    checkpoint.check().map_err(bad)
}

fn save(shared: &Shared<'_>, checkpoint: &mut Checkpoint) -> Result<(), ExportError> {
    checkpoint.updated_ms = crate::observe::metrics::now_ms();
    let key = Checkpoint::key(&TopicPartition::new(checkpoint.topic.clone(), checkpoint.partition));
    shared.runtime.block_on(shared.destination.write_json(&key, checkpoint))
}
