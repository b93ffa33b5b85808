//! The per-partition series: a [`PartitionMetrics`] of plain atomics per assigned partition,
//! updated by the stages without a label lookup (the spool holds its partition's handle), and
//! encoded on each scrape by [`Partitions`], so a revoked partition's series go with it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::names::TopicPartition;

/// Not known yet (a high watermark before librdkafka's first statistics, a commit before the first).
const UNKNOWN: i64 = -1;

/// One assigned partition's figures. Counters only grow; they start again from 0 when the
/// partition is assigned again (Prometheus' `rate` and `increase` handle the reset).
#[derive(Debug)]
pub struct PartitionMetrics {
    records_consumed: AtomicU64,
    bytes_consumed: AtomicU64,
    records_archived: AtomicU64,
    bytes_uploaded: AtomicU64,
    committed: AtomicI64,
    /// One past the last offset known to be in the archive.
    archived_to: AtomicI64,
    /// The log end as librdkafka last saw it (its last stable offset).
    high_watermark: AtomicI64,
    /// When the partition was last seen behind its log end with nothing consumed waiting
    /// (ms since the epoch; 0: not behind): the age of records known to exist but not consumed.
    behind_since_ms: AtomicI64,
    paused: AtomicBool,
    /// Local files not yet in the archive, by start offset: the timestamp of their first record
    /// (ms since the epoch) and how many records they hold once sealed.
    unarchived: Mutex<BTreeMap<i64, FileFacts>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileFacts {
    first_timestamp_ms: i64,
    records: Option<u64>,
}

impl Default for PartitionMetrics {
    fn default() -> Self {
        PartitionMetrics {
            records_consumed: AtomicU64::new(0),
            bytes_consumed: AtomicU64::new(0),
            records_archived: AtomicU64::new(0),
            bytes_uploaded: AtomicU64::new(0),
            committed: AtomicI64::new(UNKNOWN),
            archived_to: AtomicI64::new(UNKNOWN),
            high_watermark: AtomicI64::new(UNKNOWN),
            behind_since_ms: AtomicI64::new(0),
            paused: AtomicBool::new(false),
            unarchived: Mutex::new(BTreeMap::new()),
        }
    }
}

impl PartitionMetrics {
    fn files(&self) -> MutexGuard<'_, BTreeMap<i64, FileFacts>> {
        self.unarchived.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A run of records written to the partition's spool (once per run, not per record).
    pub fn consumed(&self, records: u64, bytes: u64) {
        self.records_consumed.fetch_add(records, Relaxed);
        self.bytes_consumed.fetch_add(bytes, Relaxed);
    }

    /// A local file was started at `start` with a record of this timestamp (ms since the epoch).
    pub fn file_started(&self, start: i64, first_timestamp_ms: i64) {
        self.files().insert(start, FileFacts { first_timestamp_ms, records: None });
    }

    /// The file that starts at `start` was sealed with `records` records.
    pub fn file_sealed(&self, start: i64, records: u64) {
        if let Some(facts) = self.files().get_mut(&start) {
            facts.records = Some(records);
        }
    }

    /// The local files from offset `from` on were dropped (their records are fetched again).
    pub fn files_dropped_from(&self, from: i64) {
        self.files().retain(|&start, _| start < from);
    }

    /// The file `start..=end` is in the archive: `bytes` were uploaded for it.
    pub fn file_archived(&self, start: i64, end: i64, bytes: u64) {
        let facts = self.files().remove(&start);
        // A file adopted after a restart was not counted as it was written: its offsets stand in.
        let records = facts.and_then(|f| f.records).unwrap_or_else(|| (end - start + 1).max(0) as u64);
        self.records_archived.fetch_add(records, Relaxed);
        self.bytes_uploaded.fetch_add(bytes, Relaxed);
        self.archived_to.fetch_max(end + 1, Relaxed);
    }

    /// Everything below `offset` is in the archive (the group's committed offset on assignment,
    /// or a commit).
    pub fn committed(&self, offset: i64) {
        self.committed.store(offset, Relaxed);
        self.archived_to.fetch_max(offset, Relaxed);
    }

    /// Everything below `offset` is in the archive, as the archive's own claims say.
    pub fn archived_below(&self, offset: i64) {
        self.archived_to.fetch_max(offset, Relaxed);
    }

    /// The log end librdkafka reported; `now_ms` is the time of the report.
    pub fn high_watermark(&self, offset: i64, now_ms: i64) {
        self.high_watermark.store(offset, Relaxed);
        let behind = self.lag().is_some_and(|lag| lag > 0) && self.files().is_empty();
        if !behind {
            self.behind_since_ms.store(0, Relaxed);
        } else if self.behind_since_ms.load(Relaxed) == 0 {
            self.behind_since_ms.store(now_ms, Relaxed);
        }
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Relaxed);
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Relaxed)
    }

    /// Records between what is archived (or committed) and the log end; None until both are known.
    pub fn lag(&self) -> Option<i64> {
        let high = self.high_watermark.load(Relaxed);
        let archived = self.archived_to.load(Relaxed);
        (high != UNKNOWN && archived != UNKNOWN).then(|| (high - archived).max(0))
    }

    /// Seconds since the oldest record not in the archive was written (its timestamp), 0 when
    /// everything known is archived. Files already archived up to a commit are left out even if a
    /// confirmation was missed, so a stale entry cannot hold the figure up forever.
    pub fn oldest_unarchived_age_seconds(&self, now_ms: i64) -> f64 {
        let archived = self.archived_to.load(Relaxed);
        let oldest_file = {
            let mut files = self.files();
            if archived != UNKNOWN {
                files.retain(|&start, _| start >= archived);
            }
            files.values().map(|f| f.first_timestamp_ms).min()
        };
        let behind_since = Some(self.behind_since_ms.load(Relaxed)).filter(|&t| t > 0);
        let oldest = [oldest_file, behind_since].into_iter().flatten().min();
        oldest.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0)
    }
}

/// Every assigned partition's figures: the process's registry of [`PartitionMetrics`].
#[derive(Debug, Default)]
pub struct Partitions {
    map: Mutex<HashMap<TopicPartition, Arc<PartitionMetrics>>>,
}

impl Partitions {
    fn map(&self) -> MutexGuard<'_, HashMap<TopicPartition, Arc<PartitionMetrics>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partition's figures, created when it is first assigned here.
    pub fn assigned(&self, tp: &TopicPartition) -> Arc<PartitionMetrics> {
        self.map().entry(tp.clone()).or_default().clone()
    }

    /// The figures of a partition assigned here, None otherwise.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionMetrics>> {
        self.map().get(tp).cloned()
    }

    /// The partition went to another instance: its series disappear.
    pub fn revoked(&self, tp: &TopicPartition) {
        self.map().remove(tp);
    }

    pub fn count(&self) -> usize {
        self.map().len()
    }

    pub fn paused(&self) -> usize {
        self.map().values().filter(|m| m.is_paused()).count()
    }

    fn snapshot(&self) -> Vec<(TopicPartition, Arc<PartitionMetrics>)> {
        let mut all: Vec<_> = self.map().iter().map(|(tp, m)| (tp.clone(), m.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The label set of a per-partition series.
struct Labels<'a>(&'a TopicPartition);

impl prometheus_client::encoding::EncodeLabelSet for Labels<'_> {
    fn encode(&self, encoder: &mut prometheus_client::encoding::LabelSetEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel;
        ("topic", self.0.topic.as_str()).encode(encoder.encode_label())?;
        ("partition", self.0.partition).encode(encoder.encode_label())
    }
}

type Read = fn(&PartitionMetrics, i64) -> Option<Value>;

enum Value {
    Count(u64),
    Gauge(i64),
    Seconds(f64),
}

/// name (without the registry's prefix), help, and how to read it.
const SERIES: &[(&str, &str, Read)] = &[
    ("records_consumed", "Records consumed and written to the local spool.", |m, _| {
        Some(Value::Count(m.records_consumed.load(Relaxed)))
    }),
    ("bytes_consumed", "Key and value bytes consumed.", |m, _| Some(Value::Count(m.bytes_consumed.load(Relaxed)))),
    ("records_archived", "Records in the archive (uploaded and claimed) by this instance.", |m, _| {
        Some(Value::Count(m.records_archived.load(Relaxed)))
    }),
    ("bytes_uploaded", "Object bytes uploaded (compressed, as stored).", |m, _| {
        Some(Value::Count(m.bytes_uploaded.load(Relaxed)))
    }),
    ("committed_offset", "The group's committed offset: every record below it is in the archive.", |m, _| {
        Some(m.committed.load(Relaxed)).filter(|&o| o != UNKNOWN).map(Value::Gauge)
    }),
    ("consumer_lag_records", "Records between the archive's end and the partition's log end.", |m, _| {
        m.lag().map(Value::Gauge)
    }),
    (
        "oldest_unarchived_record_age_seconds",
        "Age of the oldest record consumed or known to exist but not in the archive yet (the archive's recovery point); 0 when all is archived.",
        |m, now_ms| Some(Value::Seconds(m.oldest_unarchived_age_seconds(now_ms))),
    ),
];

impl Collector for Partitions {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = self.snapshot();
        let now_ms = crate::observe::metrics::now_ms();
        for (name, help, read) in SERIES {
            let values: Vec<_> = all.iter().filter_map(|(tp, m)| read(m, now_ms).map(|v| (tp, v))).collect();
            let Some((_, first)) = values.first() else {
                continue;
            };
            let kind = match first {
                Value::Count(_) => prometheus_client::metrics::MetricType::Counter,
                Value::Gauge(_) | Value::Seconds(_) => prometheus_client::metrics::MetricType::Gauge,
            };
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (tp, value) in values {
                let labels = Labels(tp);
                let metric = family.encode_family(&labels)?;
                match value {
                    Value::Count(n) => ConstCounter::new(n).encode(metric)?,
                    Value::Gauge(n) => ConstGauge::new(n).encode(metric)?,
                    Value::Seconds(s) => ConstGauge::new(s).encode(metric)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_archives_end_and_is_unknown_without_a_log_end() {
        let m = PartitionMetrics::default();
        m.committed(100);
        assert_eq!(m.lag(), None);
        m.high_watermark(150, 0);
        assert_eq!(m.lag(), Some(50));
        m.file_archived(100, 139, 4096);
        assert_eq!(m.lag(), Some(10), "an upload moves the archive's end before the commit");
        m.committed(140);
        assert_eq!(m.lag(), Some(10), "a commit behind the archive's end does not move it back");
    }

    #[test]
    fn the_oldest_unarchived_age_follows_the_first_record_of_the_oldest_local_file_and_is_0_once_archived() {
        let m = PartitionMetrics::default();
        m.committed(0);
        m.file_started(0, 10_000);
        m.file_sealed(0, 5);
        m.file_started(5, 20_000);
        assert_eq!(m.oldest_unarchived_age_seconds(30_000), 20.0);
        m.file_archived(0, 4, 100);
        assert_eq!(m.records_archived.load(Relaxed), 5, "the sealed file's own count");
        assert_eq!(m.oldest_unarchived_age_seconds(30_000), 10.0);
        m.files_dropped_from(5);
        assert_eq!(m.oldest_unarchived_age_seconds(30_000), 0.0);
    }

    #[test]
    fn records_known_to_exist_but_not_consumed_age_from_when_the_partition_was_first_seen_behind() {
        let m = PartitionMetrics::default();
        m.committed(10);
        m.high_watermark(10, 1_000);
        assert_eq!(m.oldest_unarchived_age_seconds(5_000), 0.0, "at the log end");
        m.high_watermark(12, 2_000);
        m.high_watermark(14, 3_000);
        assert_eq!(m.oldest_unarchived_age_seconds(5_000), 3.0, "behind since the first report of it");
        m.high_watermark(14, 4_000);
        m.committed(14);
        m.high_watermark(14, 4_500);
        assert_eq!(m.oldest_unarchived_age_seconds(5_000), 0.0);
    }

    #[test]
    fn a_file_left_behind_by_a_missed_confirmation_does_not_hold_the_age_up_once_committed_past() {
        let m = PartitionMetrics::default();
        m.file_started(0, 1_000);
        m.committed(50);
        assert_eq!(m.oldest_unarchived_age_seconds(9_000), 0.0);
    }

    #[test]
    fn a_revoked_partitions_series_are_no_longer_encoded() {
        let partitions = Partitions::default();
        let tp = TopicPartition::new("orders", 3);
        partitions.assigned(&tp).consumed(7, 700);
        let mut registry = prometheus_client::registry::Registry::with_prefix("kafkatos3");
        let partitions = Arc::new(partitions);
        registry.register_collector(Box::new(partitions.clone()));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(text.contains(r#"kafkatos3_records_consumed_total{topic="orders",partition="3"} 7"#), "{text}");
        partitions.revoked(&tp);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(!text.contains("orders"), "{text}");
    }
}
