//! The consumer's librdkafka context: what its callbacks (run by `poll` on the consumer's own
//! thread) reach, and the client's logs and errors.

use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::error::KafkaError;
use rdkafka::ClientContext;

use crate::observe::rate_limit::LogRateLimit;
use crate::pipeline::consume::handoff::Handoff;
use crate::pipeline::consume::state::ConsumerState;
use crate::pipeline::consume::Consumers;

pub struct ArchiverContext {
    pub id: usize,
    pub stage: Arc<Consumers>,
    /// Shared by the consumer's thread (poll and the callbacks it runs) and its writer thread,
    /// which locks it once per batch.
    pub state: Arc<Mutex<ConsumerState>>,
    /// The records fetched, on their way to the writer thread.
    pub handoff: Arc<Handoff>,
    /// Rate limit for the client's and the poll loop's repeated errors.
    pub errors: LogRateLimit,
}

impl ArchiverContext {
    /// The consumer thread's access to its partitions: every record fetched so far is written
    /// first, so the spools stand exactly where the fetched records left them.
    pub fn state(&self) -> MutexGuard<'_, ConsumerState> {
        self.handoff.drain();
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The end of a partition's log (`enable.partition.eof`): librdkafka reports it as an error
/// event, which rdkafka hands to the context as a global error before the poll returns it.
pub fn is_log_end(error: &KafkaError) -> bool {
    matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(rdkafka::error::RDKafkaErrorCode::PartitionEOF))
}

impl ClientContext for ArchiverContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", consumer = self.id, fac, "{message}")
            }
            L::Warning => {
                tracing::warn!(target: "librdkafka", consumer = self.id, fac, "{message}")
            }
            L::Notice | L::Info => {
                tracing::info!(target: "librdkafka", consumer = self.id, fac, "{message}")
            }
            L::Debug => tracing::debug!(target: "librdkafka", consumer = self.id, fac, "{message}"),
        }
    }

    /// librdkafka's statistics (`statistics.interval.ms`, set when the metrics are served): the
    /// log ends behind `kafkatos3_consumer_lag_records`, and the broker connections behind
    /// `/readyz`.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let metrics = crate::observe::metrics::global();
        let connected = statistics.brokers.values().any(|broker| broker.state == "UP");
        metrics.health.broker_connection(self.id, connected);
        let now_ms = crate::observe::metrics::now_ms();
        for (topic, stats) in &statistics.topics {
            for (&partition, stats) in &stats.partitions {
                // The last stable offset is what a read_committed consumer (librdkafka's default)
                // can reach; without transactions it is the high watermark.
                let end = if stats.ls_offset >= 0 { stats.ls_offset } else { stats.hi_offset };
                if partition < 0 || end < 0 {
                    continue;
                }
                if let Some(partition) =
                    metrics.partitions.get(&crate::names::TopicPartition::new(topic.as_str(), partition))
                {
                    partition.high_watermark(end, now_ms);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // The end of a partition's log is news, not an error; the poll loop acts on it.
        if is_log_end(&error) {
            return;
        }
        // librdkafka retries connections itself with backoff (reconnect.backoff.ms); this is the
        // report of it, e.g. an unreachable broker.
        if let Some(repeats) = self.errors.admit(&error.to_string()) {
            tracing::warn!(consumer = self.id, %error, reason, repeats, "kafka client error");
        }
    }
}
