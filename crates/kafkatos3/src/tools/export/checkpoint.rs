//! What an export destination holds of one archived partition, kept beside its files under
//! `_kafkatos3_export/` (where engines do not look: Spark, Hive and Trino skip names starting
//! with `_`, and a `*.parquet` glob does not match it).
//!
//! The checkpoint is the export's proof of "exactly once": `exported` names every offset whose
//! record is in one of the destination's files, so no later run - of this command or another
//! selection - writes it again. An object is exported in two steps, each a whole-object write of
//! the checkpoint: first the ranges about to be written are noted as `pending`, then the files
//! are created (if absent), then the ranges move to `exported`. A run that finds a pending object
//! (the one before it was killed) first writes that object's ranges again, the same records into
//! the same file names, whatever its own selection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::TopicPartition;

/// The format of the checkpoint (a newer one is refused, not misread).
pub const FORMAT: u32 = 1;

/// First and last offset, inclusive.
pub type Range = (i64, i64);

/// A set of offsets as sorted, disjoint, non-adjacent ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ranges(Vec<Range>);

impl Ranges {
    pub fn as_slice(&self) -> &[Range] {
        &self.0
    }

    pub fn add(&mut self, (first, last): Range) {
        if first > last {
            return;
        }
        let (mut first, mut last) = (first, last);
        // Every range that overlaps or touches the new one is merged into it.
        self.0.retain(|&(a, b)| {
            let apart = b.saturating_add(1) < first || a > last.saturating_add(1);
            if !apart {
                first = first.min(a);
                last = last.max(b);
            }
            apart
        });
        let at = self.0.partition_point(|&(a, _)| a < first);
        self.0.insert(at, (first, last));
    }

    pub fn contains(&self, offset: i64) -> bool {
        let at = self.0.partition_point(|&(a, _)| a <= offset);
        at > 0 && self.0[at - 1].1 >= offset
    }

    /// Whether every offset of `first..=last` is in the set (an empty range is).
    pub fn covers(&self, (first, last): Range) -> bool {
        if first > last {
            return true;
        }
        let at = self.0.partition_point(|&(a, _)| a <= first);
        at > 0 && self.0[at - 1].1 >= last
    }
}

/// An object whose files were being written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The archive object's key.
    pub object: String,
    /// The ranges of its records being exported; each gives its own files.
    pub ranges: Vec<Range>,
}

/// How far one selection with a time window has read the partition: a window's cut depends on
/// the records before it, which a run that skips what it has read must still know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Objects' offsets read to their end (or to the end of the window).
    pub scanned: Ranges,
    /// The record that opened the window (the first stamped at or after its start).
    pub opened_at: Option<i64>,
    /// The record that closed it (the first stamped at or after its end).
    pub closed_at: Option<i64>,
}

/// One partition's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: u32,
    pub topic: String,
    pub partition: i32,
    /// Offsets whose records are in the destination's files (offsets without a record in the
    /// archive, inside or at the edges of an exported object, count as exported too).
    pub exported: Ranges,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// By selection (see [`cursor_key`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cursors: BTreeMap<String, Cursor>,
    /// Records and files the destination holds for this partition.
    pub records: u64,
    pub files: u64,
    /// When it was last written (ms since the epoch).
    pub updated_ms: i64,
}

impl Checkpoint {
    pub fn new(tp: &TopicPartition) -> Self {
        Checkpoint {
            format: FORMAT,
            topic: tp.topic.clone(),
            partition: tp.partition,
            exported: Ranges::default(),
            pending: None,
            cursors: BTreeMap::new(),
            records: 0,
            files: 0,
            updated_ms: 0,
        }
    }

    /// The checkpoint as read, its ranges in order (an edited or foreign one is refused when a
    /// range runs backwards, and put in order otherwise: the searches need sorted ranges).
    pub fn check(mut self) -> Result<Checkpoint, String> {
        let backwards = |&(first, last): &Range| first > last;
        let pending = self.pending.iter().flat_map(|p| &p.ranges);
        if let Some((first, last)) = self.exported.0.iter().chain(pending).find(|r| backwards(r)) {
            return Err(format!("the range {first}-{last} runs backwards: not written by kafkatos3"));
        }
        let mut exported = Ranges::default();
        for range in self.exported.0.drain(..) {
            exported.add(range);
        }
        self.exported = exported;
        for cursor in self.cursors.values_mut() {
            let mut scanned = Ranges::default();
            for range in cursor.scanned.0.drain(..).filter(|r| !backwards(r)) {
                scanned.add(range);
            }
            cursor.scanned = scanned;
        }
        Ok(self)
    }

    /// Where it is kept, under the export's root.
    pub fn key(tp: &TopicPartition) -> String {
        format!("_kafkatos3_export/checkpoints/{}/{:05}.json", tp.topic, tp.partition)
    }
}

/// The cursor of a selection: its offset bounds and time window for this partition.
pub fn cursor_key(cut: &crate::tools::selection::Cut) -> String {
    let bound = |b: Option<i64>| b.map_or("-".to_string(), |v| v.to_string());
    format!(
        "offsets={}..{},ms={}..{}",
        bound(cut.from_offset),
        bound(cut.to_offset),
        bound(cut.from_ms),
        bound(cut.to_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_when_they_overlap_or_touch_and_stay_apart_otherwise() {
        let mut set = Ranges::default();
        for range in [(10, 19), (30, 39), (20, 25), (0, 3), (27, 29), (5, 5)] {
            set.add(range);
        }
        assert_eq!(set.as_slice(), &[(0, 3), (5, 5), (10, 25), (27, 39)]);
        set.add((4, 26));
        assert_eq!(set.as_slice(), &[(0, 39)]);
        set.add((7, 3));
        assert_eq!(set.as_slice(), &[(0, 39)], "an empty range adds nothing");
    }

    #[test]
    fn ranges_tell_whether_they_contain_an_offset_or_cover_a_whole_range() {
        let mut set = Ranges::default();
        set.add((10, 19));
        set.add((30, 39));
        assert!(set.contains(10) && set.contains(19) && set.contains(35));
        assert!(!set.contains(9) && !set.contains(20) && !set.contains(40));
        assert!(set.covers((12, 19)) && set.covers((30, 30)) && set.covers((5, 4)));
        assert!(!set.covers((15, 30)) && !set.covers((0, 10)) && !set.covers((38, 40)));
    }

    #[test]
    fn a_checkpoint_read_back_has_its_ranges_in_order_and_one_running_backwards_is_refused() {
        let tp = TopicPartition::new("orders".to_string(), 0);
        let mut checkpoint = Checkpoint::new(&tp);
        checkpoint.exported = Ranges(vec![(50, 59), (0, 9), (5, 20)]);
        assert_eq!(checkpoint.clone().check().unwrap().exported.as_slice(), &[(0, 20), (50, 59)]);
        checkpoint.exported = Ranges(vec![(9, 0)]);
        assert!(checkpoint.check().unwrap_err().contains("the range 9-0 runs backwards"));
    }

    #[test]
    fn a_checkpoint_reads_back_as_written_and_names_its_partition_in_its_key() {
        let tp = TopicPartition::new("orders".to_string(), 3);
        let mut checkpoint = Checkpoint::new(&tp);
        checkpoint.exported.add((0, 99));
        checkpoint.pending = Some(Pending { object: "kafkatos3/orders/3/x".into(), ranges: vec![(100, 199)] });
        checkpoint.cursors.insert("k".into(), Cursor { opened_at: Some(7), ..Cursor::default() });
        let json = serde_json::to_string(&checkpoint).unwrap();
        assert!(json.contains(r#""exported":[[0,99]]"#), "{json}");
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), checkpoint);
        assert_eq!(Checkpoint::key(&tp), "_kafkatos3_export/checkpoints/orders/00003.json");
    }
}
