//! Restoring one partition: its objects streamed in offset order, the cut applied, and each
//! record produced as archived - key and value with null kept apart from empty, headers in order
//! with repeated keys and null values, the original timestamp.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ThreadedProducer};
use serde::Serialize;

use super::plan::PartitionPlan;
use super::state::{ObjectRead, Progress};
use super::target::{Deliveries, TargetRecord};
use super::RestoreError;
use crate::archive::{Archive, ObjectReader};
use crate::names::TopicPartition;
use crate::tools::selection::{Admit, Cut, Cutter};
use mak::v2::Record;

/// What the partitions' workers share.
pub struct Shared<'a> {
    pub archive: &'a Archive,
    pub decryption: Option<&'a mak::crypt::Decryption>,
    pub runtime: &'a tokio::runtime::Handle,
    pub producer: &'a ThreadedProducer<Deliveries>,
    /// `--source-header NAME`: adds `topic:partition:offset` of the archived record.
    pub source_header: Option<&'a str>,
    /// Where objects read to their end are noted (not with `--repartition`).
    pub progress: Option<&'a Progress>,
    /// Each target topic's `max.message.bytes`, where the broker said.
    pub max_record_bytes: &'a std::collections::BTreeMap<String, u64>,
    pub rate: Option<Rate>,
    /// Records handed to the producer, and their key and value bytes.
    pub sent: AtomicU64,
    pub sent_bytes: AtomicU64,
    /// Set by the first worker that fails: the others stop at their next record.
    pub stop: AtomicBool,
}

impl Shared<'_> {
    /// Another worker failed, or the producer did: stop at the next record.
    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.producer.context().any_failed.load(Ordering::Relaxed)
    }
}

/// `--rate-limit`: records, or bytes (keys, values and headers), per second over the whole
/// restore.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum RateLimit {
    RecordsPerSecond(f64),
    BytesPerSecond(f64),
}

impl RateLimit {
    /// `5000` (records/s), or a size per second: `20MB/s`, `512KiB/s`, `1GB` (`/s` optional, the
    /// `B` not; K, M, G powers of 1024 with or without `i`, as the config's sizes).
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let bad = || format!("--rate-limit {text}: expected records per second (5000) or bytes per second (20MB/s)");
        let spec = text.trim().trim_end_matches("/s");
        let split = spec.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(spec.len());
        let (number, unit) = spec.split_at(split);
        let number: f64 = number.parse().map_err(|_| bad())?;
        let unit = unit.trim().to_ascii_lowercase();
        // A size needs its B: `5k` could mean either, so it means neither.
        if !unit.is_empty() && !unit.ends_with('b') {
            return Err(bad());
        }
        let scale = match unit.trim_end_matches('b') {
            "" if unit.is_empty() => None,
            "" => Some(1.0),
            "k" | "ki" => Some(1024.0),
            "m" | "mi" => Some(1024.0 * 1024.0),
            "g" | "gi" => Some(1024.0 * 1024.0 * 1024.0),
            _ => return Err(bad()),
        };
        let limit = match scale {
            None => RateLimit::RecordsPerSecond(number),
            Some(scale) => RateLimit::BytesPerSecond(number * scale),
        };
        let per_second = match limit {
            RateLimit::RecordsPerSecond(n) | RateLimit::BytesPerSecond(n) => n,
        };
        // Tinier rates overflow the Duration of the wait for the next record.
        if !(per_second.is_finite() && per_second >= 0.01) {
            return Err(format!("--rate-limit {text}: at least 0.01 per second"));
        }
        Ok(limit)
    }
}

/// [`RateLimit`] applied: what has been admitted since the start.
pub struct Rate {
    pub limit: RateLimit,
    pub start: Instant,
    pub admitted: AtomicU64,
}

impl Rate {
    pub fn new(limit: RateLimit) -> Self {
        Rate { limit, start: Instant::now(), admitted: AtomicU64::new(0) }
    }

    /// Waits until a record of `bytes` is due.
    fn wait(&self, bytes: u64) {
        let (amount, per_second) = match self.limit {
            RateLimit::RecordsPerSecond(n) => (1, n),
            RateLimit::BytesPerSecond(n) => (bytes, n),
        };
        let before = self.admitted.fetch_add(amount, Ordering::Relaxed);
        let due = self.start + Duration::from_secs_f64(before as f64 / per_second);
        if let Some(ahead) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(ahead);
        }
    }
}

/// A run of the offset map: `count` records at consecutive source offsets from `source_first`
/// went to consecutive target offsets from `target_first`. A hole in the source's offsets
/// (compaction, transaction markers) starts a new run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OffsetRun {
    pub source_first: i64,
    pub target_first: i64,
    pub count: u64,
}

/// What restoring one partition did.
#[derive(Debug, Default, Serialize)]
pub struct PartitionOutcome {
    /// Records in the cut.
    pub records: u64,
    /// Of those, already in the target from an earlier run of the same command.
    pub already_there: u64,
    pub produced: u64,
    /// Objects an earlier run had read whose records were all there: not read again.
    pub objects_skipped: usize,
    pub first_source_offset: Option<i64>,
    pub last_source_offset: Option<i64>,
    pub offset_map: Vec<OffsetRun>,
}

impl PartitionOutcome {
    pub(super) fn map(&mut self, source: i64, target: i64) {
        if let Some(run) = self.offset_map.last_mut() {
            let next = run.count as i64;
            if run.source_first + next == source && run.target_first + next == target {
                run.count += 1;
                return;
            }
        }
        self.offset_map.push(OffsetRun { source_first: source, target_first: target, count: 1 });
    }
}

/// Where a partition's restore starts: its records begin at target offset `base`, and the first
/// `already` records of the cut are there from an earlier run, the last of them being
/// `last_there` (read back from the target, compared before anything is produced).
pub struct Resume {
    pub base: i64,
    pub already: u64,
    pub last_there: Option<TargetRecord>,
    /// Leading objects an earlier run read whose records are all in the target: not read again.
    pub skipped: Skipped,
}

/// Whole objects a re-run does not read again, and what they held.
#[derive(Debug, Default)]
pub struct Skipped {
    pub objects: usize,
    pub records: u64,
    pub offset_map: Vec<OffsetRun>,
    /// The last of them: its end offset, and whether the cut's time window had opened.
    pub last_offset: Option<i64>,
    pub opened: bool,
}

/// What [`for_each_in_cut`] hands on.
pub(super) enum Step<'r, 'a> {
    /// A record of the cut.
    Record(&'r Record<'a>),
    /// Object number n was read to its end; the window had opened by then (or not).
    ObjectRead { index: usize, opened: bool },
}

/// Restores `plan`'s cut into its target partition from where `resume` says.
pub fn restore_partition(
    shared: &Shared<'_>,
    plan: &PartitionPlan,
    cut: Cut,
    resume: &Resume,
) -> Result<PartitionOutcome, RestoreError> {
    let mut tally = Tally::default();
    let outcome = read_and_send(shared, plan, cut, resume, &mut tally);
    tally.flush(shared);
    outcome
}

fn read_and_send(
    shared: &Shared<'_>,
    plan: &PartitionPlan,
    cut: Cut,
    resume: &Resume,
    tally: &mut Tally,
) -> Result<PartitionOutcome, RestoreError> {
    let (base, already) = (resume.base, resume.already);
    let skipped = &resume.skipped;
    let mut outcome = PartitionOutcome {
        records: skipped.records,
        already_there: skipped.records,
        first_source_offset: skipped.offset_map.first().map(|run| run.source_first),
        last_source_offset: skipped.offset_map.last().map(|run| run.source_first + run.count as i64 - 1),
        offset_map: skipped.offset_map.clone(),
        produced: 0,
        objects_skipped: skipped.objects,
    };
    // What the object being read contributes, noted once it is read to its end.
    let mut object = PartitionOutcome::default();
    let target_name = plan.target.to_string();
    let source_name = plan.source.to_string();
    for_each_in_cut(shared, plan, cut, skipped, |step| {
        let record = match step {
            Step::Record(record) => record,
            Step::ObjectRead { index, opened } => {
                let read =
                    ObjectRead { records: object.records, offset_map: std::mem::take(&mut object.offset_map), opened };
                if let Some(progress) = shared.progress {
                    progress.object_read(&target_name, index, read);
                }
                object = PartitionOutcome::default();
                return Ok(true);
            }
        };
        if shared.stopping() {
            return Ok(false);
        }
        let index = outcome.records;
        outcome.map(record.offset, base + index as i64);
        object.map(record.offset, base + index as i64);
        object.records += 1;
        outcome.first_source_offset.get_or_insert(record.offset);
        outcome.last_source_offset = Some(record.offset);
        outcome.records += 1;
        if index < already {
            outcome.already_there += 1;
            if index + 1 == already {
                check_last_there(&plan.target, &plan.source, record, base + index as i64, resume.last_there.as_ref())?;
            }
            return Ok(true);
        }
        tally.add(shared, send(shared, &plan.target, &source_name, record)?);
        outcome.produced += 1;
        Ok(true)
    })?;
    Ok(outcome)
}

/// Streams `plan`'s objects in offset order, after the `skipped` ones, and hands `each` every
/// record of the cut, each offset once (overlapping objects hold some twice: the first copy
/// counts), and the end of each object read; stops when `each` says false. Every object read to
/// its end has its end checked (checksums, last offset).
pub(super) fn for_each_in_cut(
    shared: &Shared<'_>,
    plan: &PartitionPlan,
    cut: Cut,
    skipped: &Skipped,
    mut each: impl FnMut(Step<'_, '_>) -> Result<bool, RestoreError>,
) -> Result<(), RestoreError> {
    let mut cutter = Cutter::resumed(cut, skipped.opened);
    let mut last_offset: Option<i64> = skipped.last_offset;
    for (index, object) in plan.objects.iter().enumerate().skip(skipped.objects) {
        let stream = shared.archive.stream(shared.runtime, &object.key);
        let mut reader = ObjectReader::open(object.url.clone(), stream, shared.decryption)?;
        reader.expect_partition(&plan.source)?;
        while let Some(record) = reader.next_record()? {
            if last_offset.is_some_and(|last| record.offset <= last) {
                continue;
            }
            last_offset = Some(record.offset);
            match cutter.admit(record.offset, record.timestamp) {
                Admit::Skip => continue,
                Admit::Stop => return Ok(()),
                Admit::Take => {}
            }
            if !each(Step::Record(&record))? {
                return Ok(());
            }
        }
        reader.finish_sealed()?;
        if !each(Step::ObjectRead { index, opened: cutter.opened() })? {
            return Ok(());
        }
    }
    Ok(())
}

/// The target's last record of this restore must be the cut's record that the count says it
/// is: otherwise the target is not a prefix of this restore (another writer, a record lost after
/// a timeout, a broker that lost acknowledged records), and continuing would duplicate or lose.
pub(super) fn check_last_there(
    target: &TopicPartition,
    from: &TopicPartition,
    record: &Record<'_>,
    target_offset: i64,
    there: Option<&TargetRecord>,
) -> Result<(), RestoreError> {
    let archived = TargetRecord {
        key: record.key.map(<[u8]>::to_vec),
        value: record.value.map(<[u8]>::to_vec),
        headers: record.headers.map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec))).collect(),
    };
    match there {
        // The source header, if asked for, is the last one: compare what precedes it.
        Some(there)
            if there.key == archived.key
                && there.value == archived.value
                && there.headers.starts_with(&archived.headers) =>
        {
            Ok(())
        }
        _ => Err(RestoreError::NotAPrefix {
            tp: target.clone(),
            target_offset,
            from: from.clone(),
            source_offset: record.offset,
        }),
    }
}

/// Produces one record; returns its key and value bytes.
pub(super) fn send(
    shared: &Shared<'_>,
    target: &TopicPartition,
    source: &str,
    record: &Record<'_>,
) -> Result<usize, RestoreError> {
    let extra = shared.source_header.map(|name| (name, format!("{source}:{}", record.offset)));
    if let Some(rate) = &shared.rate {
        rate.wait(payload_bytes(record));
    }
    let size = record_bytes(record);
    if let Some(&limit) = shared.max_record_bytes.get(&target.topic).filter(|&&limit| size > limit) {
        return Err(RestoreError::TooLarge {
            tp: target.clone(),
            from: source.to_string(),
            offset: record.offset,
            size,
            limit,
        });
    }
    let mut message: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&target.topic).partition(target.partition);
    // A header list is an allocation in librdkafka: only for records that have headers.
    if record.headers.clone().next().is_some() || extra.is_some() {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + usize::from(extra.is_some()));
        for (key, value) in record.headers {
            headers = headers.insert(Header { key, value });
        }
        if let Some((name, value)) = &extra {
            headers = headers.insert(Header { key: name, value: Some(value.as_bytes()) });
        }
        message = message.headers(headers);
    }
    if let Some(key) = record.key {
        message = message.key(key);
    }
    if let Some(value) = record.value {
        message = message.payload(value);
    }
    if record.timestamp >= 0 {
        message = message.timestamp(record.timestamp);
    }
    loop {
        match shared.producer.send(message) {
            Ok(()) => break,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                // The producer's queue is full: its own thread is sending; wait for room.
                message = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(RestoreError::Produce { tp: target.clone(), error }),
        }
    }
    Ok(record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len))
}

/// A record's bytes as Kafka counts them against `max.message.bytes`: its payload, and the batch
/// and record framing around it.
fn record_bytes(record: &Record<'_>) -> u64 {
    const FRAMING: u64 = 61 + 21;
    const PER_HEADER: u64 = 10;
    FRAMING + payload_bytes(record) + PER_HEADER * record.headers.len() as u64
}

/// Key, value, and header keys and values: what `--rate-limit` counts in bytes.
fn payload_bytes(record: &Record<'_>) -> u64 {
    let headers: usize = record.headers.map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len)).sum();
    (record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len) + headers) as u64
}

/// Records and bytes sent by one worker, added to the shared counters now and then: one shared
/// cache line written by every worker at every record costs more than the record.
#[derive(Default)]
pub(super) struct Tally {
    records: u64,
    bytes: u64,
}

impl Tally {
    const EVERY: u64 = 4096;

    pub(super) fn add(&mut self, shared: &Shared<'_>, bytes: usize) {
        self.records += 1;
        self.bytes += bytes as u64;
        if self.records >= Self::EVERY {
            self.flush(shared);
        }
    }

    pub(super) fn flush(&mut self, shared: &Shared<'_>) {
        shared.sent.fetch_add(self.records, Ordering::Relaxed);
        shared.sent_bytes.fetch_add(self.bytes, Ordering::Relaxed);
        *self = Tally::default();
    }
}
