//! The consumer's librdkafka context: what its callbacks (run by `poll` on the consumer's own
//! thread) reach, and the client's logs and errors.

use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientContext;

use crate::kafka::fetch_queue::FetchQueue;
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
    /// Its OAUTHBEARER tokens (Amazon MSK IAM).
    pub tokens: crate::kafka::Tokens,
    /// Where the assigned partitions' records go ([`FetchQueue`]): set once the consumer exists,
    /// taken out again before it goes (see `pipeline::consume::run`).
    pub fetch_queue: Mutex<Option<Arc<FetchQueue>>>,
}

impl ArchiverContext {
    /// The consumer thread's access to its partitions: every record fetched so far is written
    /// first, so the spools stand exactly where the fetched records left them.
    pub fn state(&self) -> MutexGuard<'_, ConsumerState> {
        self.handoff.drain();
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn fetch_queue(&self) -> Option<Arc<FetchQueue>> {
        self.fetch_queue.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Why a client cannot reach or join its brokers, for the codes that say so: what to check. A
/// wrong password or an untrusted certificate is then one error line naming the setting (then at
/// most one per interval with the repeats counted), while librdkafka retries with backoff. The
/// reason text decides when the code does not: a failed certificate check may come as a
/// transport failure.
pub fn connection_problem(code: RDKafkaErrorCode, reason: &str) -> Option<&'static str> {
    use RDKafkaErrorCode as C;
    let tls = reason.contains("SSL") || reason.contains("certificate");
    Some(match code {
        // Made here, not refused there: the reason carries our token source's error.
        C::Authentication if reason.contains("Failed to acquire SASL OAUTHBEARER token") => {
            "no OAUTHBEARER token could be made (the reason says why): with sasl.mechanism = AWS_MSK_IAM, check the AWS credentials and region of the process"
        }
        C::Authentication | C::SaslAuthenticationFailed if !tls && reason.contains("OAUTHBEARER") => {
            "the brokers refused the OAUTHBEARER token: with sasl.mechanism = AWS_MSK_IAM, check that the process's AWS credentials are the intended ones and that their IAM identity may kafka-cluster:Connect to the cluster"
        }
        C::Authentication | C::SaslAuthenticationFailed if !tls => {
            "the brokers refused the credentials: check [kafka] sasl.mechanism, sasl.username and sasl.password (or the OAUTHBEARER token) against the cluster's"
        }
        C::UnsupportedSASLMechanism | C::IllegalSASLState => {
            "the brokers do not offer this SASL mechanism: check [kafka] sasl.mechanism against the listener's"
        }
        _ if is_connection_problem(code) && tls => {
            "the TLS handshake failed: check [kafka] ssl.ca.location (the CA that signed the brokers' certificates), and ssl.certificate.location / ssl.key.location if the brokers ask for a client certificate"
        }
        _ if is_connection_problem(code) => {
            "no connection to the brokers: check kafka_bootstrap, the network, and [kafka] security.protocol (a TLS listener needs SSL or SASL_SSL, a SASL one SASL_PLAINTEXT or SASL_SSL)"
        }
        _ => return None,
    })
}

/// The codes of a client that cannot reach, or log in to, its brokers.
pub fn is_connection_problem(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::Authentication
            | C::SaslAuthenticationFailed
            | C::UnsupportedSASLMechanism
            | C::IllegalSASLState
            | C::SSL
            | C::BrokerTransportFailure
            | C::Resolve
            | C::AllBrokersDown
            | C::BrokerNotAvailable
    )
}

/// The end of a partition's log (`enable.partition.eof`): librdkafka reports it as an error
/// event, which rdkafka hands to the context as a global error before the poll returns it.
pub fn is_log_end(error: &KafkaError) -> bool {
    matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(rdkafka::error::RDKafkaErrorCode::PartitionEOF))
}

impl ClientContext for ArchiverContext {
    crate::kafka::answer_token_refreshes!();

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            // A connection's failure (FAIL) at error level comes to the error callback too, which
            // reports it once per interval with what to check; lower levels do not, and stay.
            L::Emerg | L::Alert | L::Critical | L::Error if fac == "FAIL" => {
                tracing::debug!(target: "librdkafka", consumer = self.id, fac, "{message}")
            }
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
        // report of it, e.g. an unreachable broker or refused credentials.
        // "All brokers down" follows every failed attempt: the failure itself says why.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            tracing::debug!(consumer = self.id, %error, reason, "kafka client error");
            return;
        }
        if let Some(problem) = error.rdkafka_error_code().and_then(|code| connection_problem(code, reason)) {
            // Keyed by what to check: a second, different cause is reported at once.
            if let Some(repeats) = self.errors.admit(problem) {
                tracing::error!(consumer = self.id, reason, repeats, "kafka: {problem}; retrying");
            }
            return;
        }
        if let Some(repeats) = self.errors.admit(&error.to_string()) {
            tracing::warn!(consumer = self.id, %error, reason, repeats, "kafka client error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode as C;

    #[test]
    fn a_connection_problem_names_what_to_check_by_its_code_or_its_reason() {
        let hint = |code, reason| connection_problem(code, reason).unwrap_or("none");
        let sasl = "SASL authentication error: Authentication failed due to invalid credentials with SASL mechanism SCRAM-SHA-512";
        assert!(hint(C::Authentication, sasl).contains("sasl.password"));
        assert!(hint(C::UnsupportedSASLMechanism, "").contains("sasl.mechanism against the listener's"));
        let iam = "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER";
        assert!(hint(C::SaslAuthenticationFailed, iam).contains("kafka-cluster:Connect"));
        let no_token = "Failed to acquire SASL OAUTHBEARER token: Amazon MSK IAM login: no AWS credentials found";
        assert!(hint(C::Authentication, no_token).contains("no OAUTHBEARER token could be made"));
        let cert = "error:0A000086:SSL routines::certificate verify failed (after 1ms in state SSL_HANDSHAKE)";
        assert!(hint(C::SSL, cert).contains("ssl.ca.location"));
        assert!(hint(C::BrokerTransportFailure, cert).contains("ssl.ca.location"), "the reason tells TLS apart");
        assert!(hint(C::BrokerTransportFailure, "Connect to ipv4#127.0.0.1:1 failed: Connection refused")
            .contains("kafka_bootstrap"));
        assert!(hint(C::AllBrokersDown, "1/1 brokers are down").contains("kafka_bootstrap"));
        assert_eq!(hint(C::MessageSizeTooLarge, "too large"), "none");
        assert!(!is_connection_problem(C::MessageSizeTooLarge) && is_connection_problem(C::Resolve));
    }
}
