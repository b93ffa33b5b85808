//! `kafkatos3 verify`: checks an archive in S3 on its own, without the daemon or its working
//! directory. It lists the objects under a prefix, reads each object's header (a ranged GET of
//! its first bytes) or, with `--deep`, every record, and reports per partition the offset ranges
//! covered, the gaps and overlaps between objects, and the objects that cannot be read.
//!
//! Objects tile a partition's offsets: each file starts where the previous one ended, so a hole
//! between two objects is offsets nobody archived, and an overlap is offsets archived twice.
//! Offsets Kafka itself skips (compaction, transaction markers) fall inside files, never between.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use flate2::read::MultiGzDecoder;
use futures::TryStreamExt;
use mak::MakReader;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::layout::{SealedName, TopicPartition};

/// Compressed bytes fetched to read a header: the header is the first few hundred bytes of the
/// MAK stream, which gzip keeps in its first block.
const HEADER_FETCH: u64 = 64 * 1024;

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
    pub name: SealedName,
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
}

impl PartitionReport {
    pub fn first_offset(&self) -> Option<i64> {
        self.objects.iter().map(|o| o.name.start).min()
    }

    pub fn last_offset(&self) -> Option<i64> {
        self.objects.iter().map(|o| o.name.end).max()
    }

    pub fn is_clean(&self) -> bool {
        self.gaps.is_empty() && self.overlaps.is_empty() && self.objects.iter().all(|o| o.problem.is_none())
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub partitions: BTreeMap<TopicPartition, PartitionReport>,
    /// Keys under the prefix that are not archive objects (left alone, reported).
    pub foreign: Vec<String>,
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
            for object in partition.objects.iter().filter(|o| o.problem.is_some()) {
                let _ = writeln!(out, "  UNREADABLE {}: {}", object.key, object.problem.as_deref().unwrap_or_default());
            }
        }
        for key in &self.foreign {
            let _ = writeln!(out, "ignored {key}: not an archive object name");
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

/// Verifies every archive object under `prefix` (an empty prefix means the whole bucket).
pub async fn verify(store: &dyn ObjectStore, bucket: &str, prefix: &str, deep: bool) -> Result<Report, VerifyError> {
    let list_prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
    let listed: Vec<ObjectMeta> = store
        .list(list_prefix.as_ref())
        .try_collect()
        .await
        .map_err(|source| VerifyError::List { bucket: bucket.to_string(), prefix: prefix.to_string(), source })?;
    let mut report = Report::default();
    for meta in listed {
        let key = meta.location.to_string();
        let Some(name) = archive_name(prefix, &key) else {
            report.foreign.push(key);
            continue;
        };
        let checked = check_object(store, &meta, name, deep).await;
        report.partitions.entry(checked.name.tp.clone()).or_default().objects.push(checked);
    }
    for partition in report.partitions.values_mut() {
        partition.objects.sort_by_key(|o| (o.name.start, o.name.end));
        let (gaps, overlaps) = coverage(partition.objects.iter().map(|o| (o.name.start, o.name.end)));
        partition.gaps = gaps;
        partition.overlaps = overlaps;
    }
    Ok(report)
}

/// `<prefix>/<topic>/<partition>/<name>.mak.gz` with a name that agrees with its directories.
fn archive_name(prefix: &str, key: &str) -> Option<SealedName> {
    let rest = if prefix.is_empty() { key } else { key.strip_prefix(prefix)?.strip_prefix('/')? };
    let mut parts = rest.split('/');
    let (topic, partition, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !file.ends_with(crate::layout::GZ_SUFFIX) {
        return None;
    }
    let name = SealedName::parse(file)?;
    (name.tp.topic == topic && name.tp.partition.to_string() == partition).then_some(name)
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

async fn check_object(store: &dyn ObjectStore, meta: &ObjectMeta, name: SealedName, deep: bool) -> CheckedObject {
    let key = meta.location.to_string();
    let fetched = if deep || meta.size <= HEADER_FETCH {
        match store.get(&meta.location).await {
            Ok(result) => result.bytes().await,
            Err(error) => Err(error),
        }
    } else {
        store.get_range(&meta.location, 0..HEADER_FETCH).await
    };
    let (records, problem) = match fetched {
        Ok(bytes) => match check_bytes(&bytes, &name, deep) {
            Ok(records) => (records, None),
            Err(problem) => (None, Some(problem)),
        },
        Err(error) => (None, Some(format!("cannot be read: {error}"))),
    };
    CheckedObject { key, name, records, problem }
}

/// Checks an object's (possibly partial, when not deep) bytes against its name.
fn check_bytes(bytes: &[u8], name: &SealedName, deep: bool) -> Result<Option<u64>, String> {
    let mut reader = MakReader::new(MultiGzDecoder::new(bytes)).map_err(|e| format!("header: {e}"))?;
    let header = reader.header();
    if header.topic != name.tp.topic || header.partition != name.tp.partition || header.start_offset != name.start {
        return Err(format!(
            "header says {}:{} from offset {}, the name says {} from offset {}",
            header.topic, header.partition, header.start_offset, name.tp, name.start
        ));
    }
    if reader.last_offset_field() != name.end as u64 {
        return Err(format!(
            "header's last offset {} differs from the name's {}",
            reader.last_offset_field(),
            name.end
        ));
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
    if previous != Some(name.end) {
        return Err(format!("last record has offset {previous:?}, the name says {}", name.end));
    }
    // Reading to the end checks gzip's CRC and length trailer.
    std::io::copy(&mut reader.into_inner(), &mut std::io::sink()).map_err(|e| format!("gzip stream: {e}"))?;
    Ok(Some(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_objects_have_no_gaps_or_overlaps() {
        assert_eq!(coverage([(0, 9), (10, 19), (20, 20)].into_iter()), (vec![], vec![]));
    }

    #[test]
    fn holes_and_double_coverage_are_reported_as_offset_ranges() {
        let (gaps, overlaps) = coverage([(0, 9), (15, 19), (18, 30), (25, 26)].into_iter());
        assert_eq!(gaps, vec![(10, 14)]);
        assert_eq!(overlaps, vec![(18, 19), (25, 26)]);
    }

    #[test]
    fn only_names_under_the_prefix_that_match_their_directories_are_archive_objects() {
        let ok = archive_name("p", "p/t/0/t-0_0-9_240101.mak.gz").unwrap();
        assert_eq!((ok.start, ok.end), (0, 9));
        assert!(archive_name("", "t/0/t-0_0-9_240101.mak.gz").is_some());
        assert!(archive_name("p", "p/t/1/t-0_0-9_240101.mak.gz").is_none(), "partition directory disagrees");
        assert!(archive_name("p", "p/t/0/t-0_0-9_240101.mak").is_none());
        assert!(archive_name("p", "p/t/0/x/t-0_0-9_240101.mak.gz").is_none());
        assert!(archive_name("p", "q/t/0/t-0_0-9_240101.mak.gz").is_none());
    }
}
