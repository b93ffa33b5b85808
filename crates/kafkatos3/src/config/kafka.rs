//! The librdkafka client configuration the daemon's consumers use, and the tools that ask the
//! brokers (the same bootstrap and security settings).

use rdkafka::ClientConfig;

use super::Config;

/// See [`client_config`].
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// Often enough for a 15 s scrape; each report is a JSON document of every assigned partition.
const STATISTICS_INTERVAL_MS: &str = "5000";

/// The `[kafka]` settings alone (security, client tuning): what a client other than the daemon's
/// consumer - a restore's producer - takes from the config.
pub fn security_config(config: &Config) -> ClientConfig {
    let mut client = ClientConfig::new();
    for (key, value) in &config.kafka {
        client.set(key, value.expose());
    }
    client
}

/// The librdkafka consumer configuration of consumer `id`: `[kafka]` first, then what the
/// daemon sets itself (the properties `[kafka]` may not set are refused at load time).
pub fn client_config(config: &Config, id: usize) -> ClientConfig {
    let consumer = &config.consumer;
    let mut client = security_config(config);
    client
        .set("bootstrap.servers", &consumer.kafka_bootstrap)
        .set("group.id", &consumer.kafka_consumer_group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // The end of a partition's log is where a backlog's last file is sealed (seal_at_end_bytes).
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", consumer.kafka_auto_offset_reset.as_librdkafka());
    // The fetch queue's share of the memory budget, unless [kafka] sets it.
    for (key, value) in config.memory.librdkafka_properties(&config.kafka) {
        client.set(key, value);
    }
    // librdkafka stops fetching a partition whose local queue is over its thresholds and, by
    // default, waits a whole second before fetching it again: the daemon, which drains its queue
    // in microseconds per record, then sat idle three quarters of the time (bench: 106 k records/s
    // with the default, 490 k with 10 ms on the same run). The queue stays bounded by the same
    // thresholds; only the pause after reaching them is shorter.
    if !config.kafka_sets("fetch.queue.backoff.ms") {
        client.set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
    }
    // The metrics' log ends (consumer lag) and broker connections (readiness) come from
    // librdkafka's statistics.
    if config.metrics.is_some() && !config.kafka_sets("statistics.interval.ms") {
        client.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    }
    if !config.kafka_sets("client.id") {
        client.set("client.id", format!("kafkatos3-{id}"));
    }
    // librdkafka's pattern subscriptions match internal topics too (__consumer_offsets): they are
    // left out, as every other stage leaves them out (TopicSet::matches).
    if config.consumer.topic_whitelist.has_patterns() {
        let user = config.kafka.iter().find(|(key, _)| key == "topic.blacklist").map(|(_, value)| value.expose());
        let blacklist = match user {
            Some(user) if !user.trim().is_empty() => format!("{INTERNAL_TOPICS},{user}"),
            _ => INTERNAL_TOPICS.to_owned(),
        };
        client.set("topic.blacklist", blacklist);
    }
    client
}

/// Internal topics, as a librdkafka `topic.blacklist` entry.
const INTERNAL_TOPICS: &str = "^__.*";

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(extra_kafka: &str) -> crate::config::Config {
        let text = format!(
            "[main]\nworking_directory = /data\nmemory_limit_bytes = 128MiB\n[consumer]\nkafka_bootstrap = k:9092\n\
             kafka_consumer_group = g\ntopic_whitelist = t\nconsumer_processes = 2\n[s3]\ns3_bucket_name = bucket\n\
             [kafka]\n{extra_kafka}\n"
        );
        crate::config::parse(&text, std::path::Path::new("test.cfg")).unwrap()
    }

    #[test]
    fn a_pattern_whitelist_leaves_internal_topics_out_of_the_subscription_beside_the_users_blacklist() {
        let text = |extra: &str| {
            let base = config_with(extra);
            let mut config = base.clone();
            config.consumer.topic_whitelist = crate::config::topics::TopicSet::parse("^orders.*").unwrap();
            config
        };
        assert_eq!(client_config(&text(""), 0).get("topic.blacklist"), Some("^__.*"));
        assert_eq!(
            client_config(&text("topic.blacklist = ^orders-test.*"), 0).get("topic.blacklist"),
            Some("^__.*,^orders-test.*")
        );
        assert_eq!(
            client_config(&config_with(""), 0).get("topic.blacklist"),
            None,
            "names alone: nothing to leave out"
        );
    }

    #[test]
    fn each_consumer_queues_at_most_its_part_of_the_fetch_share_unless_kafka_sets_it() {
        // 40% of 128 MiB, quartered (a fetch response may land on a full queue, and a take holds
        // a queue's worth out of it), per consumer of 2.
        let client = client_config(&config_with(""), 0);
        let expected = (128 * 1024 * 40 / 100 / 4 / 2).to_string();
        assert_eq!(client.get("queued.max.messages.kbytes"), Some(expected.as_str()));
        let client = client_config(&config_with("queued.max.messages.kbytes = 4096"), 0);
        assert_eq!(client.get("queued.max.messages.kbytes"), Some("4096"), "the user's value wins");
    }
}
