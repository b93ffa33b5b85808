//! What `kafkatos3 export --metrics-listen` serves: Prometheus metrics of the export (records,
//! files and bytes, passes, when the last one ended, failing partitions, and per partition how
//! far the export is behind the archive), `/healthz` (the process answers) and `/readyz` (the last
//! pass exported every partition). A registry of its own: the daemon's metrics mean nothing here.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::Report;
use crate::observe::health::Verdict;
use crate::observe::serve::{metrics_answer, not_found, verdict, Answer};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    topic: String,
    partition: String,
}

/// The export's metrics.
pub struct ExportMetrics {
    registry: Registry,
    records: Counter,
    files: Counter,
    archive_bytes: Counter,
    bytes_written: Counter,
    passes: Counter,
    last_pass_end: Gauge<f64, AtomicU64>,
    failing: Gauge,
    behind: Family<PartitionLabel, Gauge>,
    /// The report's totals at the last update (the counters grow by the difference), and why
    /// the export is not ready (None: ready).
    seen: Mutex<(Totals, Option<String>)>,
}

#[derive(Default, Clone, Copy)]
struct Totals {
    records: u64,
    files: u64,
    archive_bytes: u64,
    bytes_written: u64,
}

impl Default for ExportMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ExportMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kafkatos3_export");
        let metrics = ExportMetrics {
            registry: Registry::default(),
            records: Counter::default(),
            files: Counter::default(),
            archive_bytes: Counter::default(),
            bytes_written: Counter::default(),
            passes: Counter::default(),
            last_pass_end: Gauge::default(),
            failing: Gauge::default(),
            behind: Family::default(),
            seen: Mutex::new((Totals::default(), Some("no pass has ended yet".into()))),
        };
        registry.register(
            "build",
            "The version of kafkatos3 running",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register("records", "Records written into Parquet files", metrics.records.clone());
        registry.register("files", "Parquet files written (or found written by a killed run)", metrics.files.clone());
        registry.register("archive_read_bytes", "Bytes of archive objects read", metrics.archive_bytes.clone());
        registry.register("written_bytes", "Bytes of Parquet files written", metrics.bytes_written.clone());
        registry.register("passes", "Passes over the archive (listing, then every partition)", metrics.passes.clone());
        registry.register(
            "last_pass_end_timestamp_seconds",
            "When the last pass ended (Unix time)",
            metrics.last_pass_end.clone(),
        );
        registry.register("failing_partitions", "Partitions whose last pass failed", metrics.failing.clone());
        registry.register(
            "behind_offsets",
            "Per partition, offsets the archive holds past the export's end (as of the last pass that listed the partition)",
            metrics.behind.clone(),
        );
        ExportMetrics { registry, ..metrics }
    }

    /// A pass has ended (`failed`: it stopped before the partitions, e.g. the listing failed):
    /// the counters follow the report's totals.
    pub fn pass_ended(&self, report: &Report, failed: Option<&str>) {
        let mut seen = self.seen.lock().expect("metrics lock");
        let now = Totals {
            records: report.records,
            files: report.files_written + report.files_found,
            archive_bytes: report.bytes_read,
            bytes_written: report.bytes_written,
        };
        let before = seen.0;
        self.records.inc_by(now.records.saturating_sub(before.records));
        self.files.inc_by(now.files.saturating_sub(before.files));
        self.archive_bytes.inc_by(now.archive_bytes.saturating_sub(before.archive_bytes));
        self.bytes_written.inc_by(now.bytes_written.saturating_sub(before.bytes_written));
        self.passes.inc();
        self.last_pass_end.set(crate::observe::metrics::now_ms() as f64 / 1000.0);
        self.failing.set(report.failed.len() as i64);
        for (tp, partition) in &report.partitions {
            let (Some(archived), Some(&(_, exported))) = (partition.archive_end, partition.exported.last()) else {
                continue;
            };
            let Some((topic, number)) = tp.rsplit_once(':') else { continue };
            let label = PartitionLabel { topic: topic.to_string(), partition: number.to_string() };
            self.behind.get_or_create(&label).set((archived - exported).max(0));
        }
        let why = match (failed, report.failed.iter().next()) {
            (Some(error), _) => Some(format!("the last pass failed: {error}")),
            (None, Some((tp, error))) => Some(format!("{} partitions failed, {tp} with: {error}", report.failed.len())),
            (None, None) => None,
        };
        *seen = (now, why);
    }

    /// The endpoints.
    pub fn answer(&self, path: &str) -> Answer {
        match path {
            "/metrics" => metrics_answer(self.encode()),
            "/healthz" => verdict(Verdict { ok: true, body: "ok\n".into() }),
            "/readyz" => {
                let why = self.seen.lock().expect("metrics lock").1.clone();
                verdict(match why {
                    None => Verdict { ok: true, body: "ok: the last pass exported every partition\n".into() },
                    Some(why) => Verdict { ok: false, body: format!("not ready: {why}\n") },
                })
            }
            _ => not_found(),
        }
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::export::partition::PartitionOutcome;

    #[test]
    fn the_counters_follow_the_reports_totals_and_readiness_the_last_pass() {
        let metrics = ExportMetrics::new();
        assert_eq!(metrics.answer("/readyz").0.as_u16(), 503, "before the first pass");
        let mut report = Report { records: 10, files_written: 2, ..Report::default() };
        let outcome = PartitionOutcome { exported: vec![(0, 9)], archive_end: Some(14), ..PartitionOutcome::default() };
        report.partitions.insert("orders:3".into(), outcome);
        metrics.pass_ended(&report, None);
        report.records = 25;
        metrics.pass_ended(&report, None);
        let page = metrics.encode();
        assert!(page.contains("kafkatos3_export_records_total 25"), "{page}");
        assert!(page.contains("kafkatos3_export_passes_total 2"), "{page}");
        assert!(page.contains(r#"kafkatos3_export_behind_offsets{topic="orders",partition="3"} 5"#), "{page}");
        assert_eq!(metrics.answer("/readyz").0.as_u16(), 200);
        report.failed.insert("orders:3".into(), "s3://a/b: damaged".into());
        metrics.pass_ended(&report, None);
        let (status, _, body) = metrics.answer("/readyz");
        assert_eq!(status.as_u16(), 503);
        assert!(body.contains("1 partitions failed, orders:3 with: s3://a/b: damaged"), "{body}");
        assert_eq!(metrics.answer("/healthz").0.as_u16(), 200);
    }
}
