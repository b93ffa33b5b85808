//! Figures read on each scrape rather than kept up to date: the files of each stage of the
//! working directory, the partitions assigned and paused, and the process's resident memory.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::observe::metrics::Partitions;

/// Counts the files and bytes of each stage of the working directory (the daemon's
/// `WorkDir::area_usage`); None when it cannot be read.
pub type CountStages = Box<dyn Fn() -> Option<Vec<(&'static str, u64, u64)>> + Send + Sync>;

/// `kafkatos3_files` and `kafkatos3_file_bytes` {stage}.
#[derive(Default)]
pub struct StageFiles {
    count: OnceLock<CountStages>,
}

impl std::fmt::Debug for StageFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageFiles").field("watching", &self.count.get().is_some()).finish()
    }
}

impl StageFiles {
    pub fn watch(&self, count: CountStages) {
        let _ = self.count.set(count);
    }

    fn usage(&self) -> Option<Vec<(&'static str, u64, u64)>> {
        self.count.get().and_then(|count| count())
    }

    /// Files in one stage (`tos3`...), 0 when it cannot be read.
    pub fn files_in(&self, stage: &str) -> u64 {
        let usage = self.usage().unwrap_or_default();
        usage.iter().find(|(name, _, _)| *name == stage).map_or(0, |&(_, files, _)| files)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

impl Collector for StageFiles {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A directory that cannot be read leaves the series out rather than reporting 0.
        let Some(usage) = self.usage() else {
            return Ok(());
        };
        type Pick = fn(&(&'static str, u64, u64)) -> u64;
        let series: [(&str, &str, Pick); 2] = [
            ("files", "Local files in each stage of the working directory.", |u| u.1),
            ("file_bytes", "Bytes of the local files in each stage of the working directory.", |u| u.2),
        ];
        for (name, help, pick) in series {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for stage in &usage {
                ConstGauge::new(pick(stage) as i64).encode(family.encode_family(&StageLabel { stage: stage.0 })?)?;
            }
        }
        Ok(())
    }
}

/// `kafkatos3_assigned_partitions`, `kafkatos3_paused_partitions` and
/// `kafkatos3_resident_memory_bytes`.
#[derive(Debug)]
pub struct ProcessFigures {
    pub partitions: Arc<Partitions>,
}

impl Collector for ProcessFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let assigned = ConstGauge::new(self.partitions.count() as i64);
        assigned.encode(encoder.encode_descriptor(
            "assigned_partitions",
            "Partitions assigned to this instance.",
            None,
            MetricType::Gauge,
        )?)?;
        let paused = ConstGauge::new(self.partitions.paused() as i64);
        paused.encode(encoder.encode_descriptor(
            "paused_partitions",
            "Assigned partitions not fetched for now (the local backlog is over its limit, or a write failed).",
            None,
            MetricType::Gauge,
        )?)?;
        if let Some(rss) = resident_bytes() {
            ConstGauge::new(rss as i64).encode(encoder.encode_descriptor(
                "resident_memory_bytes",
                "Resident memory of the process (what memory_limit_bytes bounds, plus code and libraries).",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

/// The resident set from `/proc/self/status` (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
