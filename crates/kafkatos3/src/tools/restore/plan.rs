//! What a restore will do, decided before anything is produced: per archived partition the
//! objects to read and the cut of its records, and the target partition they go to.

use std::collections::BTreeMap;

use crate::archive::catalog::CatalogObject;
use crate::archive::{Catalog, ObjectHeader};
use crate::names::TopicPartition;

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
