//! Which archived records a tool takes - topics (names or globs), partitions, offset bounds and a
//! time window - as `restore` and `export` name them on their command lines, and the cut this
//! makes of each partition's records.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::archive::{Archive, ArchiveError, Catalog, Headers};

/// The selection's flags (flattened into each tool's arguments).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SelectionArgs {
    /// Topics: names or globs (*, ?, [..]); repeatable or comma-separated; default all
    #[arg(long, value_delimiter = ',')]
    pub topics: Vec<String>,
    /// Partition numbers; repeatable or comma-separated; default all
    #[arg(long, value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// First offset: OFFSET for every partition, or PARTITION:OFFSET; repeatable
    #[arg(long, value_delimiter = ',')]
    pub from_offset: Vec<String>,
    /// Last offset (inclusive): OFFSET or PARTITION:OFFSET; repeatable
    #[arg(long, value_delimiter = ',')]
    pub to_offset: Vec<String>,
    /// Start of a time window (ms since the epoch or RFC 3339): from each partition's first record
    /// stamped at or after it (as Kafka's offsets-for-times)
    #[arg(long, value_parser = crate::tools::parse::cli::parse_time)]
    pub from_time: Option<i64>,
    /// End of a time window: up to each partition's last record before the first one stamped at or
    /// after it
    #[arg(long, value_parser = crate::tools::parse::cli::parse_time)]
    pub to_time: Option<i64>,
}

impl SelectionArgs {
    /// The selection, or what is wrong with a flag (one line naming it).
    pub fn select(&self) -> Result<Select, String> {
        let globs = self
            .topics
            .iter()
            .map(|t| glob::Pattern::new(t).map(|_| ()).map_err(|e| format!("--topics {t}: {e}")))
            .collect::<Result<Vec<()>, String>>();
        globs?;
        Ok(Select {
            topics: self.topics.clone(),
            partitions: self.partitions.clone(),
            from_offset: Bound::parse(&self.from_offset).map_err(|e| format!("--from-offset {e}"))?,
            to_offset: Bound::parse(&self.to_offset).map_err(|e| format!("--to-offset {e}"))?,
            from_ms: self.from_time,
            to_ms: self.to_time,
        })
    }
}

/// The records a tool takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Select {
    /// Topics by name or glob (`*`, `?`, `[...]`); empty: every topic.
    pub topics: Vec<String>,
    pub partitions: Vec<i32>,
    /// Offset bounds (inclusive) for every partition, and per partition number.
    pub from_offset: Bound,
    pub to_offset: Bound,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl Select {
    /// The archive's catalog of the selected partitions: the objects that may hold selected
    /// records; with `headers`, their headers read (the time window drops objects only where
    /// they prove it). `known_below`: per partition, where what the caller knows ends (see
    /// [`crate::archive::Selection::known_below`]).
    pub async fn catalog(
        &self,
        archive: &Archive,
        headers: Headers<'_>,
        known_below: &BTreeMap<crate::names::TopicPartition, i64>,
    ) -> Result<Catalog, ArchiveError> {
        let globs = self.topics.iter().any(|t| t.contains(['*', '?', '[']));
        let selection = crate::archive::Selection {
            // Globs match against the listing's topics; plain names narrow the listing itself.
            topics: if globs { Vec::new() } else { self.topics.clone() },
            partitions: self.partitions.clone(),
            // A time window opens and closes at records that may lie below the first offset
            // (the window is the partition's): with one, the objects before it are read too.
            from_offset: match self.has_time_window() {
                true => None,
                false => self.from_offset.by_partition.is_empty().then_some(self.from_offset.all).flatten(),
            },
            to_offset: self.to_offset.by_partition.is_empty().then_some(self.to_offset.all).flatten(),
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            known_below: known_below.clone(),
        };
        let mut catalog = archive.catalog(&selection, headers).await?;
        // SelectionArgs refuses a pattern that does not parse; one that came another way means
        // the name as written.
        let patterns: Vec<glob::Pattern> = self
            .topics
            .iter()
            .map(|t| {
                glob::Pattern::new(t)
                    .unwrap_or_else(|_| glob::Pattern::new(&glob::Pattern::escape(t)).expect("escaped"))
            })
            .collect();
        catalog.partitions.retain(|tp, _| patterns.is_empty() || patterns.iter().any(|g| g.matches(&tp.topic)));
        Ok(catalog)
    }

    pub fn has_time_window(&self) -> bool {
        self.from_ms.is_some() || self.to_ms.is_some()
    }

    /// The cut of `partition`'s records, ending at `last` at the latest (where a first run found
    /// the archive to end, so that a re-run takes the same records).
    pub fn cut(&self, partition: i32, last: Option<i64>) -> Cut {
        let to = match (self.to_offset.for_partition(partition), last) {
            (Some(to), Some(last)) => Some(to.min(last)),
            (to, last) => to.or(last),
        };
        Cut {
            from_offset: self.from_offset.for_partition(partition),
            to_offset: to,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
        }
    }
}

/// An offset bound: one for all partitions, and overrides by partition number (`p:offset`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Bound {
    pub all: Option<i64>,
    pub by_partition: BTreeMap<i32, i64>,
}

impl Bound {
    pub fn for_partition(&self, partition: i32) -> Option<i64> {
        self.by_partition.get(&partition).copied().or(self.all)
    }

    /// `N` for every partition or `P:N` for one; repeatable.
    pub fn parse(values: &[String]) -> Result<Bound, String> {
        let mut bound = Bound::default();
        for value in values {
            let number = |text: &str| {
                text.trim().parse::<i64>().map_err(|_| format!("'{value}' is not OFFSET or PARTITION:OFFSET"))
            };
            match value.split_once(':') {
                Some((partition, offset)) => {
                    let partition =
                        i32::try_from(number(partition)?).map_err(|_| format!("'{value}': no such partition"))?;
                    bound.by_partition.insert(partition, number(offset)?);
                }
                None => bound.all = Some(number(value)?),
            }
        }
        Ok(bound)
    }
}

/// Which records of a partition a tool takes, applied to its records in offset order.
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

impl Cut {
    pub fn has_time_window(&self) -> bool {
        self.from_ms.is_some() || self.to_ms.is_some()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets 0.. with these timestamps, through a cutter: the offsets taken.
    fn taken(cut: Cut, timestamps: &[i64]) -> Vec<i64> {
        let mut cutter = Cutter::new(cut);
        let mut taken = Vec::new();
        for (offset, &ts) in timestamps.iter().enumerate() {
            match cutter.admit(offset as i64, ts) {
                Admit::Skip => {}
                Admit::Take => taken.push(offset as i64),
                Admit::Stop => break,
            }
        }
        taken
    }

    #[test]
    fn a_time_window_cuts_like_list_offsets_and_keeps_out_of_order_records_inside_it() {
        // Offsets:          0    1    2    3    4    5    6    7
        let timestamps = [100, 250, 150, 300, 120, 400, 310, 500];
        let cut = Cut { from_ms: Some(200), to_ms: Some(400), ..Cut::default() };
        // From the first record at or after 200 (offset 1), to the last before the first at or
        // after 400 (offset 5): offsets 2 and 4, stamped before the window, are inside the cut.
        assert_eq!(taken(cut, &timestamps), [1, 2, 3, 4]);
    }

    #[test]
    fn records_without_a_timestamp_neither_open_nor_close_a_time_window() {
        let cut = Cut { from_ms: Some(200), to_ms: Some(400), ..Cut::default() };
        assert_eq!(taken(cut, &[-1, 250, -1, 500, -1]), [1, 2]);
        assert_eq!(taken(cut, &[-1, -1]), Vec::<i64>::new());
    }

    #[test]
    fn offset_bounds_are_inclusive_and_combine_with_a_time_window() {
        let timestamps = [100, 200, 300, 400, 500, 600];
        assert_eq!(taken(Cut { from_offset: Some(2), to_offset: Some(4), ..Cut::default() }, &timestamps), [2, 3, 4]);
        let both = Cut { from_offset: Some(1), to_offset: Some(4), from_ms: Some(300), to_ms: None };
        assert_eq!(taken(both, &timestamps), [2, 3, 4]);
        assert_eq!(taken(Cut::default(), &timestamps), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_time_window_is_the_partitions_and_offset_bounds_narrow_it() {
        // The window opens at offset 1 (stamped 500), before the offset bound: 2 and 3 are in it.
        let opened_before = Cut { from_offset: Some(2), from_ms: Some(400), ..Cut::default() };
        assert_eq!(taken(opened_before, &[100, 500, 150, 160]), [2, 3]);
        // The window closes at offset 1 (stamped 900), before the offset bound: nothing is in it,
        // as the catalog assumes when it drops an object whose first record is past the end.
        let closed_before = Cut { from_offset: Some(2), to_ms: Some(800), ..Cut::default() };
        assert_eq!(taken(closed_before, &[100, 900, 200, 300]), Vec::<i64>::new());
    }

    #[test]
    fn offset_bounds_are_one_number_or_one_per_partition() {
        let bound = Bound::parse(&["10".into(), "3:500".into()]).unwrap();
        assert_eq!((bound.for_partition(0), bound.for_partition(3)), (Some(10), Some(500)));
        assert_eq!(Bound::parse(&[]).unwrap().for_partition(0), None);
        assert!(Bound::parse(&["x:1".into()]).unwrap_err().contains("'x:1' is not OFFSET or PARTITION:OFFSET"));
    }

    #[test]
    fn a_partitions_cut_ends_at_the_earlier_of_its_bound_and_where_the_archive_ended() {
        let select =
            SelectionArgs { to_offset: vec!["50".into(), "2:5".into()], ..SelectionArgs::default() }.select().unwrap();
        assert_eq!(select.cut(0, Some(40)).to_offset, Some(40));
        assert_eq!(select.cut(0, Some(90)).to_offset, Some(50));
        assert_eq!(select.cut(2, None).to_offset, Some(5));
        assert_eq!(Select::default().cut(1, None), Cut::default());
        let bad = SelectionArgs { topics: vec!["[".into()], ..SelectionArgs::default() }.select().unwrap_err();
        assert!(bad.starts_with("--topics [:"), "{bad}");
    }
}
