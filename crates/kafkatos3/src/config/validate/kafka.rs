//! `[kafka]`: librdkafka properties passed on as they are, except those the daemon sets itself;
//! which of them are secrets.

use std::time::Duration;

use super::super::values::whole_number;
use super::super::{ConfigError, ConsumerConfig, KafkaValue, Secret};
use super::View;

pub(super) const KAFKA_SECTION: &str = "kafka";

/// librdkafka properties the daemon sets itself, with what to do instead. Offsets in particular
/// must only be stored and committed by the daemon, after the data is in S3.
const RESERVED_KAFKA_KEYS: &[(&str, &str)] = &[
    ("group.id", "use kafka_consumer_group in [consumer]"),
    ("bootstrap.servers", "use kafka_bootstrap in [consumer]"),
    ("metadata.broker.list", "use kafka_bootstrap in [consumer]"),
    ("auto.offset.reset", "use kafka_auto_offset_reset in [consumer]"),
    ("enable.auto.commit", "offsets are committed by the daemon, only after their messages are in S3"),
    ("auto.commit.enable", "offsets are committed by the daemon, only after their messages are in S3"),
    ("enable.auto.offset.store", "offsets are stored by the daemon, only after their messages are in S3"),
    ("enable.partition.eof", "the daemon sets it for its own use"),
];

/// Name fragments of `[kafka]` properties whose values are kept as [`Secret`]. Over-matching only
/// costs a `<redacted>` in debug output; under-matching leaks a credential.
const SECRET_KAFKA_KEY_PARTS: &[&str] = &["password", "secret", "sasl.jaas", "token", "key.pem", "oauthbearer.config"];

/// librdkafka's default `max.poll.interval.ms`.
const DEFAULT_MAX_POLL_INTERVAL_MS: u64 = 300_000;

pub(super) fn is_secret(section: &str, key: &str) -> bool {
    match section {
        "s3" => key == "s3_secret_key",
        KAFKA_SECTION => SECRET_KAFKA_KEY_PARTS.iter().any(|part| key.contains(part)),
        _ => false,
    }
}

pub(super) fn kafka(
    view: &View,
    consumer_view: &View,
    consumer: &ConsumerConfig,
) -> Result<Vec<(String, KafkaValue)>, ConfigError> {
    let entries = view.section.map_or(&[][..], |section| &section.entries[..]);
    let reserved = entries.iter().find_map(|entry| reserved(&entry.key).map(|(key, reason)| (entry, key, reason)));
    if let Some((entry, key, reason)) = reserved {
        return Err(ConfigError::ReservedKafkaKey { path: view.path.to_owned(), line: entry.line, key, reason });
    }

    let max_poll_interval = view
        .or_default("max.poll.interval.ms", DEFAULT_MAX_POLL_INTERVAL_MS, |v| {
            whole_number(v, 1, "a whole number of milliseconds >= 1")
        })
        .map(Duration::from_millis)?;
    if consumer.rebalance_timeout >= max_poll_interval {
        let line = consumer_view
            .entry("rebalance_timeout_seconds")
            .or_else(|| view.entry("max.poll.interval.ms"))
            .map_or(0, |entry| entry.line);
        return Err(ConfigError::RebalanceTimeoutTooLong {
            path: view.path.to_owned(),
            line,
            rebalance_timeout: consumer.rebalance_timeout,
            max_poll_interval,
        });
    }

    Ok(entries
        .iter()
        .map(|entry| {
            let value = if is_secret(KAFKA_SECTION, &entry.key) {
                KafkaValue::Secret(Secret::new(entry.value.clone()))
            } else {
                KafkaValue::Plain(entry.value.clone())
            };
            (entry.key.clone(), value)
        })
        .collect())
}

fn reserved(key: &str) -> Option<(&'static str, &'static str)> {
    RESERVED_KAFKA_KEYS.iter().find(|(reserved, _)| *reserved == key).copied()
}
