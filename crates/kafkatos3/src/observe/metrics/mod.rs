//! Every metric the daemon exports, named once here (Prometheus text format, served by
//! [`crate::observe::serve`] when `[metrics] listen` is set).
//!
//! The metrics are process-wide, as the `/metrics` page is: [`global`] is reached from every
//! stage rather than threaded through each stage's handle. Updating them costs an atomic add
//! per batch, upload or tick, never a label lookup per record: per-partition figures are
//! plain atomics the spool holds a handle to ([`partition::PartitionMetrics`]), encoded on each
//! scrape, so only assigned partitions have series.

pub mod partition;
pub mod work_dir;

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::observe::health::Health;
pub use partition::{PartitionMetrics, Partitions};

/// Why an upload attempt failed (`kafkatos3_upload_failures_total{reason}`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FailureReason {
    /// Credentials refused or missing.
    denied,
    /// The bucket (or a key it needs) does not exist.
    not_found,
    /// Anything else the store answered, or no answer: timeouts, 5xx, an unreachable endpoint.
    store,
    /// Something at a claim key that is not one of ours.
    foreign_claim,
    /// Reading the local file, or recording the confirmation on the local disk.
    local,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: FailureReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodecLabel {
    pub codec: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShareLabel {
    share: &'static str,
}

/// The metrics of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub partitions: Arc<Partitions>,
    pub health: Arc<Health>,
    pub upload_duration: Histogram,
    pub upload_retries: Counter,
    pub upload_failures: Family<ReasonLabel, Counter>,
    pub fence_give_way: Counter,
    pub compression_input_bytes: Family<CodecLabel, Counter>,
    pub compression_output_bytes: Family<CodecLabel, Counter>,
    pub rebalances: Counter,
    memory_budget: Family<ShareLabel, Gauge>,
    /// The working directory whose stages are counted on each scrape.
    work: Arc<work_dir::StageFiles>,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Milliseconds since the Unix epoch (record timestamps are in it).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("kafkatos3");
        let partitions = Arc::new(Partitions::default());
        let health = Arc::new(Health::default());
        // 10 ms to ~3 min: a small object on a local store to a large multipart upload on a
        // slow link.
        let upload_duration = Histogram::new(exponential_buckets(0.01, 2.0, 15));
        let work = Arc::new(work_dir::StageFiles::default());
        let metrics = Metrics {
            registry: Registry::default(),
            partitions: partitions.clone(),
            health,
            upload_duration: upload_duration.clone(),
            upload_retries: Counter::default(),
            upload_failures: Family::default(),
            fence_give_way: Counter::default(),
            compression_input_bytes: Family::default(),
            compression_output_bytes: Family::default(),
            rebalances: Counter::default(),
            memory_budget: Family::default(),
            work: work.clone(),
        };
        registry.register(
            "build",
            "The version of kafkatos3 running",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(partitions));
        registry.register_collector(Box::new(work));
        registry.register_collector(Box::new(work_dir::ProcessFigures { partitions: metrics.partitions.clone() }));
        registry.register(
            "upload_duration_seconds",
            "Time to upload one file and create its claim, from the first request to the answer",
            upload_duration,
        );
        registry.register(
            "upload_retries",
            "Upload attempts of a file whose previous attempt failed",
            metrics.upload_retries.clone(),
        );
        registry.register("upload_failures", "Failed upload attempts, by reason", metrics.upload_failures.clone());
        registry.register(
            "fence_give_way",
            "Uploads that found another instance's claim at the same offset and gave way to it",
            metrics.fence_give_way.clone(),
        );
        registry.register(
            "compression_input_bytes",
            "Bytes of sealed MAK files compressed, by codec",
            metrics.compression_input_bytes.clone(),
        );
        registry.register(
            "compression_output_bytes",
            "Bytes the compressed (and encrypted) files came to, by codec",
            metrics.compression_output_bytes.clone(),
        );
        registry.register("rebalances", "Partition assignments and revocations", metrics.rebalances.clone());
        registry.register("memory_budget_bytes", "memory_limit_bytes and its shares", metrics.memory_budget.clone());
        Metrics { registry, ..metrics }
    }

    /// What the scrape sees of the daemon's configuration: the memory budget, and how the
    /// working directory's stages are counted.
    pub fn configure(&self, memory: &crate::config::budget::MemoryBudget, count_stages: work_dir::CountStages) {
        for (share, bytes) in [
            ("limit", memory.limit),
            ("fetch", memory.fetch),
            ("write_buffers", memory.write_buffers),
            ("compression", memory.compression),
            ("uploads", memory.uploads),
        ] {
            self.memory_budget.get_or_create(&ShareLabel { share }).set(bytes as i64);
        }
        self.work.watch(count_stages);
    }

    /// Files waiting in `tos3/` (0 before the daemon configured its working directory).
    pub fn uploads_waiting(&self) -> u64 {
        self.work.files_in("tos3")
    }

    pub fn upload_failed(&self, reason: FailureReason) {
        self.upload_failures.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn compressed(&self, codec: &str, input: u64, output: u64) {
        let label = CodecLabel { codec: codec.to_string() };
        self.compression_input_bytes.get_or_create(&label).inc_by(input);
        self.compression_output_bytes.get_or_create(&label).inc_by(output);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; a collector's error would be a bug in it.
        if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "encoding the metrics failed");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::TopicPartition;

    /// A page with every series present: a partition with a log end and an upload, a stage count,
    /// a failure.
    fn full_page() -> String {
        let metrics = Metrics::new();
        let partition = metrics.partitions.assigned(&TopicPartition::new("orders", 0));
        partition.committed(0);
        partition.high_watermark(10, now_ms());
        partition.file_archived(0, 9, 100);
        let text = "[main]\nworking_directory = /w\n[consumer]\nkafka_bootstrap = k:9092\nkafka_consumer_group = g\n\
                    topic_whitelist = orders\n[s3]\ns3_bucket_name = bucket\n";
        let config = crate::config::parse(text, std::path::Path::new("test.cfg")).unwrap();
        let stages = || Some(vec![("inprogress", 1, 10), ("tocompress", 0, 0), ("tos3", 2, 20)]);
        metrics.configure(&config.memory, Box::new(stages));
        metrics.upload_failed(FailureReason::store);
        metrics.compressed("zstd", 100, 10);
        metrics.upload_duration.observe(0.5);
        metrics.encode()
    }

    #[test]
    fn every_metric_the_alert_rules_and_the_dashboard_query_is_on_the_page() {
        let page = full_page();
        let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let names = regex::Regex::new(r"kafkatos3_[a-z_]+").unwrap();
        for file in [
            "prometheus/kafkatos3-alerts.yml",
            "prometheus/kafkatos3-alerts.test.yml",
            "grafana/kafkatos3-dashboard.json",
        ] {
            let text = std::fs::read_to_string(deploy.join(file)).unwrap();
            for name in names.find_iter(&text).map(|m| m.as_str()) {
                // Alert and dashboard names (KafkatoS3..., kafkatos3-dashboard) are not metrics.
                if name.starts_with("kafkatos3_") && !page.contains(&format!("\n{name}")) {
                    panic!("{file} uses {name}, which the daemon does not export:\n{page}");
                }
            }
        }
    }

    #[test]
    fn counters_end_in_total_and_every_series_has_help_and_type() {
        let page = full_page();
        for line in page.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut words = line.split_whitespace().skip(2);
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            assert!(name.starts_with("kafkatos3_"), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            assert!(page.contains(&format!("# HELP {name} ")), "{name} has no help");
        }
        assert!(page.contains(r#"kafkatos3_upload_failures_total{reason="store"} 1"#), "{page}");
        assert!(page.contains(r#"kafkatos3_records_archived_total{topic="orders",partition="0"} 10"#), "{page}");
        assert!(page.contains(r#"kafkatos3_files{stage="tos3"} 2"#), "{page}");
    }
}
