//! What a restore will do, decided before anything is produced: per archived partition the
//! objects to read and the cut of its records, and the target partition they go to.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::archive::catalog::CatalogObject;
use crate::archive::{Catalog, ObjectHeader};
use crate::names::TopicPartition;

/// Which records of a partition a restore takes, applied to its records in offset order.
///
/// Times cut the partition the way Kafka's ListOffsets does: from the first record whose
/// timestamp is at or after `from_ms` (records after that one are taken whatever their
/// timestamp), to the last record before the first one whose timestamp is at or after `to_ms`.
/// So a record inside the window is never dropped because a producer's clock was behind
/// another's. A record without a timestamp (MAK v1, or none was set) neither opens nor closes the
/// window. The offsets (inclusive) then narrow that cut: the window is the partition's, whatever
/// the offset bounds, which is also what the catalog assumes when it rules objects out by their
/// headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cut {
    pub from_offset: Option<i64>,
    pub to_offset: Option<i64>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// What to do with one record, by [`Cutter::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Before the window.
    Skip,
    Take,
    /// The window has ended: this record and every later one are out.
    Stop,
}

/// A [`Cut`] applied to one partition's records, in order.
#[derive(Debug, Clone)]
pub struct Cutter {
    cut: Cut,
    opened: bool,
    closed: bool,
}

impl Cutter {
    pub fn new(cut: Cut) -> Self {
        Cutter { cut, opened: false, closed: false }
    }

    /// A cutter that has already seen records that opened its time window (or not): where a
    /// re-run that skips objects continues.
    pub fn resumed(cut: Cut, opened: bool) -> Self {
        Cutter { cut, opened, closed: false }
    }

    /// Whether the time window has opened (always, without one).
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// Whether the record at `offset`, stamped `timestamp` (ms; negative: none), is in the cut.
    pub fn admit(&mut self, offset: i64, timestamp: i64) -> Admit {
        let stamped = (timestamp >= 0).then_some(timestamp);
        if self.closed || self.cut.to_offset.is_some_and(|to| offset > to) {
            self.closed = true;
            return Admit::Stop;
        }
        if let (Some(to), Some(at)) = (self.cut.to_ms, stamped) {
            if at >= to {
                self.closed = true;
                return Admit::Stop;
            }
        }
        if !self.opened {
            match (self.cut.from_ms, stamped) {
                (None, _) => self.opened = true,
                (Some(from), Some(at)) if at >= from => self.opened = true,
                _ => return Admit::Skip,
            }
        }
        if self.cut.from_offset.is_some_and(|from| offset < from) {
            return Admit::Skip;
        }
        Admit::Take
    }
}

/// One archived partition to restore.
#[derive(Debug)]
pub struct PartitionPlan {
    pub source: TopicPartition,
    pub target: TopicPartition,
    /// The objects to read, in offset order (those the catalog could rule out are not here).
    pub objects: Vec<PlannedObject>,
    /// The first and last offset the objects hold.
    pub first_offset: i64,
    pub last_offset: i64,
    /// The smallest and largest timestamp the objects' headers state, if they do.
    pub min_timestamp: Option<i64>,
    pub max_timestamp: Option<i64>,
    /// Bytes to download.
    pub bytes: u64,
    pub object_count: usize,
    /// MAK v1 objects among them: no headers, no timestamps, null stored as empty.
    pub v1_objects: usize,
    /// Offsets the archive does not hold between its objects, and claims naming missing objects.
    pub gaps: Vec<(i64, i64)>,
    pub missing: Vec<(i64, i64)>,
    /// Offsets more than one object holds (each record is restored once, from the first).
    pub overlaps: Vec<(i64, i64)>,
}

/// One object to read.
#[derive(Debug, Clone)]
pub struct PlannedObject {
    pub key: object_store::path::Path,
    pub url: String,
    pub start: i64,
    pub end: i64,
    pub bytes: u64,
}

/// Per source partition, in order; `map` renames topics (`old -> new`), partitions keep their
/// number. Partitions without objects are left out.
pub fn plan(catalog: &Catalog, map: &BTreeMap<String, String>, url: impl Fn(&str) -> String) -> Vec<PartitionPlan> {
    let mut plans = Vec::new();
    for (tp, partition) in &catalog.partitions {
        if partition.objects.is_empty() {
            continue;
        }
        let headers: Vec<Option<&ObjectHeader>> = partition.objects.iter().map(CatalogObject::read_header).collect();
        let times = headers.iter().flatten().flat_map(|h| {
            let range = h.time_range.map(|(min, max)| [Some(min), Some(max)]);
            range.unwrap_or([h.first_timestamp, h.last_timestamp])
        });
        let times: Vec<i64> = times.flatten().filter(|&t| t >= 0).collect();
        let objects: Vec<PlannedObject> = partition
            .objects
            .iter()
            .map(|o| PlannedObject {
                key: o.key.clone(),
                url: url(o.key.as_ref()),
                start: o.name.start,
                end: o.name.end,
                bytes: o.size,
            })
            .collect();
        let target_topic = map.get(&tp.topic).cloned().unwrap_or_else(|| tp.topic.clone());
        plans.push(PartitionPlan {
            source: tp.clone(),
            target: TopicPartition::new(target_topic, tp.partition),
            first_offset: objects.iter().map(|o| o.start).min().unwrap_or(0),
            last_offset: objects.iter().map(|o| o.end).max().unwrap_or(-1),
            min_timestamp: times.iter().copied().min(),
            max_timestamp: times.iter().copied().max(),
            bytes: objects.iter().map(|o| o.bytes).sum(),
            object_count: objects.len(),
            v1_objects: headers.iter().flatten().filter(|h| h.version == mak::Version::V1).count(),
            gaps: partition.gaps.clone(),
            missing: partition.missing.iter().map(|m| (m.first, m.last)).collect(),
            overlaps: partition.overlaps.clone(),
            objects,
        });
    }
    plans
}

/// The number of partitions each archived topic had, as far as the archive shows: its highest
/// partition number plus one.
pub fn archived_partition_counts(plans: &[PartitionPlan]) -> BTreeMap<String, i32> {
    let mut counts = BTreeMap::new();
    for plan in plans {
        let count = counts.entry(plan.target.topic.clone()).or_insert(0);
        *count = (*count).max(plan.source.partition + 1);
    }
    counts
}
