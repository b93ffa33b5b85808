//! `kafkatos3 verify`: checks an archive in S3 on its own, without the daemon or its working
//! directory. It lists the keys under a prefix and reads every claim (a few bytes each); the
//! archive is the objects the claims name (and the original's objects, which have no claims).
//! With `--deep` it also reads every record of every object. It reports per partition the offset
//! ranges covered, the gaps and overlaps between objects, claims naming missing objects, objects
//! that cannot be read, and the objects no claim names (left by a crash or a lost race; not part
//! of the archive).
//!
//! Objects tile a partition's offsets: each file starts where the previous one ended, so a hole
//! between two objects is offsets nobody archived, and an overlap is offsets archived twice.
//! Offsets Kafka itself skips (compaction, transaction markers) fall inside files, never between.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use futures::{StreamExt, TryStreamExt};
use mak::AnyReader;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::archive::{self, ArchiveKey, Claim, Location, ObjectName, HEADER_FETCH};
use crate::names::TopicPartition;
use crate::names::AGE_SUFFIX;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("listing s3://{bucket}/{prefix}: {source}")]
    List { bucket: String, prefix: String, source: object_store::Error },
}

/// First and last offset, inclusive.
pub type OffsetRange = (i64, i64);

/// One archived object, as far as it could be checked.
#[derive(Debug, Clone)]
pub struct CheckedObject {
    pub key: String,
    pub tp: TopicPartition,
    pub start: i64,
    /// Last offset, from the key.
    pub end: i64,
    /// Records decoded (`--deep` only).
    pub records: Option<u64>,
    /// Why the object cannot be trusted, if it cannot.
    pub problem: Option<String>,
}

/// What was found for one partition.
#[derive(Debug, Default)]
pub struct PartitionReport {
    pub objects: Vec<CheckedObject>,
    /// Offset ranges (inclusive) between objects that no object covers.
    pub gaps: Vec<OffsetRange>,
    /// Offset ranges (inclusive) covered by more than one object.
    pub overlaps: Vec<OffsetRange>,
    /// Gaps, or their parts, below Kafka's log start: gone from Kafka (retention) before they
    /// were archived. Reported, not failing: no archiver could have stored them.
    pub expired: Vec<OffsetRange>,
    /// Kafka's log start and high watermark, when the broker was asked.
    pub kafka: Option<(i64, i64)>,
    /// Claims naming a data object that is not in the bucket: (claim key, object, first, last).
    /// Their offsets are gaps.
    pub missing: Vec<(String, String, i64, i64)>,
}

impl PartitionReport {
    pub fn first_offset(&self) -> Option<i64> {
        self.objects.iter().map(|o| o.start).min()
    }

    pub fn last_offset(&self) -> Option<i64> {
        self.objects.iter().map(|o| o.end).max()
    }

    pub fn is_clean(&self) -> bool {
        self.gaps.is_empty()
            && self.overlaps.is_empty()
            && self.missing.is_empty()
            && self.objects.iter().all(|o| o.problem.is_none())
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub partitions: BTreeMap<TopicPartition, PartitionReport>,
    /// Keys under the prefix that are not archive objects (left alone, reported).
    pub foreign: Vec<String>,
    /// Encrypted objects not read (no identity or passphrase given): checked by claim and name only.
    pub encrypted_unread: usize,
    /// Data objects no claim names: a crash between writing an object and claiming it, or an
    /// instance that lost the claim and could not delete its object. Not part of the archive.
    pub unclaimed: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.partitions.values().all(PartitionReport::is_clean)
    }

    /// The human summary `kafkatos3 verify` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (tp, partition) in &self.partitions {
            let (first, last) = (partition.first_offset().unwrap_or(0), partition.last_offset().unwrap_or(0));
            let records: Option<u64> = partition.objects.iter().map(|o| o.records).sum();
            let _ = write!(out, "{tp}: offsets {first}-{last} in {} objects", partition.objects.len());
            if let Some(records) = records {
                let _ = write!(out, ", {records} records");
            }
            let _ = writeln!(out, "{}", if partition.is_clean() { ", clean" } else { "" });
            for (from, to) in &partition.gaps {
                let _ = writeln!(out, "  GAP offsets {from}-{to}: in no object");
            }
            for (from, to) in &partition.overlaps {
                let _ = writeln!(out, "  OVERLAP offsets {from}-{to}: in more than one object");
            }
            for (claim, object, first, last) in &partition.missing {
                let _ = writeln!(
                    out,
                    "  MISSING {object}: {claim} claims it for offsets {first}-{last}, not in the bucket"
                );
            }
            for object in partition.objects.iter().filter(|o| o.problem.is_some()) {
                let _ = writeln!(out, "  UNREADABLE {}: {}", object.key, object.problem.as_deref().unwrap_or_default());
            }
        }
        let _ = self.render_kafka(&mut out);
        for key in &self.foreign {
            let _ = writeln!(out, "ignored {key}: not an archive object name");
        }
        if self.encrypted_unread > 0 {
            let _ = writeln!(
                out,
                "{} encrypted objects checked by claim and name only (give --identity or --passphrase to read them)",
                self.encrypted_unread
            );
        }
        for key in &self.unclaimed {
            let _ = writeln!(out, "ignored {key}: no claim names it (an interrupted or losing upload; safe to delete)");
        }
        let bad = self.partitions.values().filter(|p| !p.is_clean()).count();
        let _ = writeln!(
            out,
            "{} partitions, {} objects: {}",
            self.partitions.len(),
            self.partitions.values().map(|p| p.objects.len()).sum::<usize>(),
            if bad == 0 { "clean".to_string() } else { format!("{bad} partitions with problems") }
        );
        out
    }
}

impl Report {
    /// Splits each gap at Kafka's log start: the part below it is expired, not lost.
    pub fn apply_kafka(&mut self, watermarks: &HashMap<TopicPartition, (i64, i64)>) {
        for (tp, partition) in &mut self.partitions {
            let Some(&(low, high)) = watermarks.get(tp) else {
                continue;
            };
            partition.kafka = Some((low, high));
            let mut lost = Vec::new();
            for &(from, to) in &partition.gaps {
                if to < low {
                    partition.expired.push((from, to));
                } else if from < low {
                    partition.expired.push((from, low - 1));
                    lost.push((low, to));
                } else {
                    lost.push((from, to));
                }
            }
            partition.gaps = lost;
        }
    }

    fn render_kafka(&self, out: &mut String) -> std::fmt::Result {
        let mut first = true;
        for (tp, partition) in &self.partitions {
            let Some((low, high)) = partition.kafka else {
                continue;
            };
            if first {
                writeln!(out, "compared with kafka's log start and end:")?;
                first = false;
            }
            for (from, to) in &partition.expired {
                writeln!(out, "  {tp}: EXPIRED offsets {from}-{to}: removed from Kafka before they were archived (not counted as loss)")?;
            }
            let archived_to = partition.last_offset().unwrap_or(-1);
            if high - 1 < archived_to {
                // Real Kafka never reports an end before records it served; a broker that
                // under-reports (the test broker), or lost records after they were archived.
                writeln!(out, "  {tp}: kafka's log starts at {low}; it reports its end at {high}, before the archive's last offset {archived_to}")?;
            } else {
                let pending = high - 1 - archived_to;
                writeln!(out, "  {tp}: kafka holds offsets {low}-{}: {pending} not archived yet", high - 1)?;
            }
        }
        Ok(())
    }
}

/// Kafka's log start and high watermark of each partition, asked with `client` (bootstrap and
/// security settings). Partitions the broker cannot tell about are left out, with a warning.
pub fn kafka_watermarks<'a>(
    client: &rdkafka::ClientConfig,
    partitions: impl Iterator<Item = &'a TopicPartition>,
) -> Result<HashMap<TopicPartition, (i64, i64)>, rdkafka::error::KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = client.create()?;
    let mut marks = HashMap::new();
    for tp in partitions {
        match consumer.fetch_watermarks(&tp.topic, tp.partition, std::time::Duration::from_secs(10)) {
            Ok(range) => {
                marks.insert(tp.clone(), range);
            }
            Err(error) => eprintln!("kafkatos3 verify: kafka cannot tell the offsets of {tp}: {error}"),
        }
    }
    Ok(marks)
}

/// Verifies the archive under `prefix` (an empty prefix means the whole bucket).
/// Encrypted objects are read only with `decryption`; without it their claims and names are all
/// that is checked (counted in [`Report::encrypted_unread`]).
pub async fn verify(
    store: &dyn ObjectStore,
    bucket: &str,
    prefix: &str,
    deep: bool,
    decryption: Option<&mak::crypt::Decryption>,
) -> Result<Report, VerifyError> {
    let list_prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
    let listed: Vec<ObjectMeta> = store
        .list(list_prefix.as_ref())
        .try_collect()
        .await
        .map_err(|source| VerifyError::List { bucket: bucket.to_string(), prefix: prefix.to_string(), source })?;
    let at = Location::new(prefix);
    let mut report = Report::default();
    let mut objects: HashMap<String, (ObjectMeta, ObjectName)> = HashMap::new();
    let mut claims = Vec::new();
    for meta in listed {
        let key = meta.location.to_string();
        match at.parse_key(&key) {
            Some(ArchiveKey::Object(name)) => {
                objects.insert(key, (meta, name));
            }
            Some(ArchiveKey::Claim { tp, start }) => claims.push((meta.location, tp, start)),
            None => report.foreign.push(key),
        }
    }
    // The archive: the original's objects, and the objects the claims name.
    let mut archived: Vec<(ObjectMeta, ObjectName)> = Vec::new();
    let read = futures::stream::iter(claims)
        .map(|(key, tp, start)| async move { (archive::read_claim(store, &key).await, key, tp, start) })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (claim, key, tp, start) in read {
        let problem = match claim {
            Ok(Some(claim)) => match claimed_object(&claim, &tp, start, &key, &mut objects) {
                Ok(Some(found)) => {
                    archived.push(found);
                    continue;
                }
                Ok(None) => {
                    let missing = (key.to_string(), claim.object, claim.first, claim.last);
                    report.partitions.entry(tp).or_default().missing.push(missing);
                    continue;
                }
                Err(problem) => problem,
            },
            Ok(None) => "listed but gone".to_string(),
            Err(error) => error.to_string(),
        };
        let checked = CheckedObject {
            key: key.to_string(),
            tp: tp.clone(),
            start,
            end: start,
            records: None,
            problem: Some(problem),
        };
        report.partitions.entry(tp).or_default().objects.push(checked);
    }
    for (key, (meta, name)) in objects {
        if name.original {
            archived.push((meta, name));
        } else {
            report.unclaimed.push(key);
        }
    }
    report.unclaimed.sort();
    for (meta, name) in archived {
        if meta.location.as_ref().ends_with(AGE_SUFFIX) && decryption.is_none() {
            report.encrypted_unread += 1;
        }
        let checked = check_object(store, &meta, name, deep, decryption).await;
        report.partitions.entry(checked.tp.clone()).or_default().objects.push(checked);
    }
    for partition in report.partitions.values_mut() {
        partition.objects.sort_by_key(|o| (o.start, o.end));
        let (gaps, overlaps) = coverage(partition.objects.iter().map(|o| (o.start, o.end)));
        partition.gaps = gaps;
        partition.overlaps = overlaps;
    }
    Ok(report)
}

/// The listed object `claim` names, taken out of `objects` (None: not in the bucket); or why the
/// claim is not sound.
fn claimed_object(
    claim: &Claim,
    tp: &TopicPartition,
    start: i64,
    key: &ObjectPath,
    objects: &mut HashMap<String, (ObjectMeta, ObjectName)>,
) -> Result<Option<(ObjectMeta, ObjectName)>, String> {
    if claim.tp() != *tp || claim.first != start {
        return Err(format!("claims {} from offset {}, not what its key names", claim.tp(), claim.first));
    }
    let dir = key.as_ref().rsplit_once('/').map_or("", |(dir, _)| dir);
    let object_key = format!("{dir}/{}", claim.object);
    let expected = archive::parse_file_name(&claim.object);
    let fits = matches!(&expected, Some(ArchiveKey::Object(name))
        if name.tp == *tp && name.start == claim.first && name.end == claim.last && !name.original);
    if !fits {
        return Err(format!("names {}, whose name does not hold offsets {}-{}", claim.object, claim.first, claim.last));
    }
    Ok(objects.remove(&object_key))
}

/// Gaps and overlaps between inclusive ranges sorted by start.
pub fn coverage(ranges: impl Iterator<Item = OffsetRange>) -> (Vec<OffsetRange>, Vec<OffsetRange>) {
    let (mut gaps, mut overlaps) = (Vec::new(), Vec::new());
    let mut covered_to: Option<i64> = None;
    for (start, end) in ranges {
        if let Some(to) = covered_to {
            if start > to + 1 {
                gaps.push((to + 1, start - 1));
            } else if start <= to {
                overlaps.push((start, end.min(to)));
            }
        }
        covered_to = Some(covered_to.map_or(end, |to| to.max(end)));
    }
    (gaps, overlaps)
}

async fn check_object(
    store: &dyn ObjectStore,
    meta: &ObjectMeta,
    name: ObjectName,
    deep: bool,
    decryption: Option<&mak::crypt::Decryption>,
) -> CheckedObject {
    let key = meta.location.to_string();
    let encrypted = key.ends_with(AGE_SUFFIX);
    // age decrypts whole 64 KiB chunks: the header needs the first one complete.
    let head = if encrypted { 3 * HEADER_FETCH } else { HEADER_FETCH };
    let checked = if encrypted && decryption.is_none() {
        // Its claim and name are all that can be checked without a key.
        Ok(None)
    } else {
        let fetched = if deep || meta.size <= head {
            match store.get(&meta.location).await {
                Ok(result) => result.bytes().await,
                Err(error) => Err(error),
            }
        } else {
            store.get_range(&meta.location, 0..head).await
        };
        match fetched {
            Ok(bytes) => check_bytes(&bytes, &name, deep, decryption),
            Err(error) => Err(format!("cannot be read: {error}")),
        }
    };
    let (records, problem) = match checked {
        Ok(records) => (records, None),
        Err(problem) => (None, Some(problem)),
    };
    CheckedObject { key, tp: name.tp, start: name.start, end: name.end, records, problem }
}

/// Checks an object's header (from its first bytes unless `deep`) against its key and, when
/// deep, reads every record; returns the record count when deep.
fn check_bytes(
    bytes: &[u8],
    name: &ObjectName,
    deep: bool,
    decryption: Option<&mak::crypt::Decryption>,
) -> Result<Option<u64>, String> {
    let decoder = mak::layers::archive_reader(bytes, decryption).map_err(|e| format!("header: {e}"))?;
    let mut reader = AnyReader::new(decoder).map_err(|e| format!("header: {e}"))?;
    let header = archive::header_from(&reader)?;
    if header.tp != name.tp || header.start != name.start {
        return Err(format!(
            "header says {} from offset {}, the key says {} from offset {}",
            header.tp, header.start, name.tp, name.start
        ));
    }
    if header.end != name.end {
        return Err(format!("header's last offset {} differs from the key's {}", header.end, name.end));
    }
    if !deep {
        return Ok(None);
    }
    let (mut count, mut previous) = (0u64, None::<i64>);
    while let Some(record) = reader.next_record().map_err(|e| format!("record {count}: {e}"))? {
        if record.offset < name.start || previous.is_some_and(|p| record.offset <= p) {
            return Err(format!("offset {} out of order at record {count}", record.offset));
        }
        previous = Some(record.offset);
        count += 1;
    }
    if previous != Some(header.end) {
        return Err(format!("last record has offset {previous:?}, the header says {}", header.end));
    }
    // Reading to the end checks the codec's checksum and end mark.
    std::io::copy(&mut reader.into_inner(), &mut std::io::sink()).map_err(|e| format!("compressed stream: {e}"))?;
    Ok(Some(count))
}

#[cfg(test)]
mod tests;
