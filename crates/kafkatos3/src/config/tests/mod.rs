//! The configuration, as a specification: the original's files, defaults, unknown keys and
//! secrets here; the values of each key in `values.rs`; the file syntax and errors in `syntax.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

mod syntax;
mod values;

/// The smallest valid file. Line numbers matter: [main] 1, [consumer] 3, [s3] 7.
const MINIMAL: &str = "\
[main]
working_directory = /data
[consumer]
kafka_bootstrap = kafka:9092
kafka_consumer_group = group
topic_whitelist = events
[s3]
s3_bucket_name = bucket
";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config_examples").join(name)
}

fn parse_text(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("test.cfg"))
}

fn parse_ok(text: &str) -> Config {
    match parse_text(text) {
        Ok(config) => config,
        Err(error) => panic!("expected a valid config, got: {error}"),
    }
}

fn parse_err(text: &str) -> ConfigError {
    match parse_text(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error,
    }
}

fn message(text: &str) -> String {
    parse_err(text).to_string()
}

/// MINIMAL with `lines` put right after `[section]`'s header (so the first is on the header's line
/// + 1), or in a new section appended at the end (header on line 9, first line on 10).
fn with(section: &str, lines: &str) -> String {
    let header = format!("[{section}]\n");
    match MINIMAL.find(&header) {
        Some(at) => {
            let (before, after) = MINIMAL.split_at(at + header.len());
            format!("{before}{lines}\n{after}")
        }
        None => format!("{MINIMAL}{header}{lines}\n"),
    }
}

#[test]
fn original_example_parses_unchanged() {
    let config = load(&fixture("original-example.cfg")).expect("the original example is valid");
    assert_eq!(config.main.log_level, LogLevel::Info);
    assert_eq!(config.main.working_directory, PathBuf::from("/home/ubuntu/kafkatos3/data"));
    assert_eq!(config.consumer.consumer_processes, 1);
    assert_eq!(config.consumer.kafka_bootstrap, "kafka:9092");
    assert_eq!(config.consumer.kafka_consumer_group, "kafkatos3");
    assert_eq!(config.consumer.kafka_auto_offset_reset, OffsetReset::Latest);
    assert_eq!(config.consumer.consumer_nice_level, 15);
    assert_eq!(config.consumer.topic_whitelist, ["test"]);
    assert_eq!(config.consumer.max_age, Duration::from_secs(1800));
    assert_eq!(config.consumer.consumer_class, ConsumerClass::KafkaPythonConsumer);
    assert_eq!(config.compression.compression_check_interval, Duration::from_secs(600));
    assert_eq!(config.compression.compressor_workers, 1);
    assert_eq!(config.compression.compression_nice_level, 10);
    assert_eq!(config.s3.s3upload_check_interval, Duration::from_secs(600));
    assert_eq!(config.store.location, StoreLocation::S3 { bucket: "my_bucket".into() });
    assert_eq!(config.store.prefix, "kafkatos3");
    assert_eq!(config.s3.credentials, None, "\"\" means the credential chain");
    assert_eq!(config.s3.topic_whitelist, ["test"]);
    assert!(config.kafka.is_empty());
}

#[test]
fn original_example_gets_defaults_for_new_keys() {
    let config = load(&fixture("original-example.cfg")).expect("the original example is valid");
    assert_eq!(config.main.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(config.main.mak_format_version, mak::Version::V3, "new installs write version 3");
    assert_eq!(config.consumer.rebalance_timeout, Duration::from_secs(60));
    assert_eq!(config.consumer.flush_interval, Duration::from_millis(1000));
    assert_eq!(config.consumer.max_file_bytes, 1024 * 1024 * 1024);
    assert_eq!(config.consumer.leftover_timeout, Duration::from_secs(600));
    assert_eq!(config.consumer.max_file_records, None);
    assert_eq!(config.s3.s3_endpoint, None);
    assert_eq!(config.s3.s3_region, None);
    assert_eq!(config.store.prefix, "kafkatos3");
    assert_eq!(config.s3.max_local_backlog_bytes, 10 << 30);
    assert_eq!(config.s3.multipart_threshold_bytes, 64 << 20);
}

#[test]
fn full_example_sets_every_key() {
    let config = load(&fixture("full.cfg")).expect("full.cfg is valid");
    let main = &config.main;
    assert_eq!(main.log_level, LogLevel::Debug);
    assert_eq!(main.working_directory, PathBuf::from("/var/lib/kafkatos3"));
    assert_eq!(main.shutdown_timeout, Duration::from_secs(45));
    assert_eq!(main.mak_format_version, mak::Version::V1);

    let consumer = &config.consumer;
    assert_eq!(consumer.consumer_processes, 3);
    assert_eq!(consumer.kafka_bootstrap, "kafka1:9092,kafka2:9092");
    assert_eq!(consumer.kafka_consumer_group, "archiver");
    assert_eq!(consumer.kafka_auto_offset_reset, OffsetReset::Earliest);
    assert_eq!(consumer.consumer_nice_level, -5);
    assert_eq!(consumer.topic_whitelist, ["orders", "payments", "audit.log"]);
    assert_eq!(consumer.max_age, Duration::from_secs(900));
    assert_eq!(consumer.consumer_class, ConsumerClass::KafkaConfluentConsumer);
    assert_eq!(consumer.rebalance_timeout, Duration::from_secs(120));
    assert_eq!(consumer.flush_interval, Duration::from_millis(250));
    assert_eq!(consumer.max_file_bytes, 512 * 1024 * 1024);
    assert_eq!(consumer.leftover_timeout, Duration::from_secs(300));
    assert_eq!(consumer.max_file_records, Some(1_000_000));

    let compression = &config.compression;
    assert_eq!(compression.compression_check_interval, Duration::from_millis(2500));
    assert_eq!(compression.compressor_workers, 2);
    assert_eq!(compression.compression_nice_level, 19);

    let s3 = &config.s3;
    assert_eq!(s3.s3upload_check_interval, Duration::from_secs(30));
    assert_eq!(s3.s3uploader_workers, 4);
    assert_eq!(config.store.location, StoreLocation::S3 { bucket: "archive-bucket.example".into() });
    let credentials = s3.credentials.as_ref().expect("both keys are set");
    assert_eq!(credentials.access_key, "AKIAEXAMPLEACCESSKEY");
    assert_eq!(credentials.secret_key.expose(), "full-cfg-secret-value-do-not-print");
    assert_eq!(s3.topic_whitelist, ["orders", "payments", "audit.log", "legacy"]);
    assert_eq!(s3.s3_endpoint.as_deref(), Some("http://127.0.0.1:8014"));
    assert_eq!(s3.s3_region.as_deref(), Some("eu-west-1"));
    assert_eq!(config.store.prefix, "archive/kafka");
    assert_eq!(s3.max_local_backlog_bytes, 2 << 30);
    assert_eq!(s3.multipart_threshold_bytes, 16 << 20);

    let groups = config.groups.as_ref().expect("archive_groups is set");
    assert_eq!(groups.interval, Duration::from_secs(30));
    assert!(groups.archive_groups.is_match("billing-eu") && groups.archive_groups.is_match("orders-1"));
    assert!(!groups.archive_groups.is_match("old-billing-eu"), "the whole name must match");

    let kafka: Vec<(&str, &str)> = config.kafka.iter().map(|(key, value)| (key.as_str(), value.expose())).collect();
    assert_eq!(
        kafka,
        [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "archiver"),
            ("sasl.password", "full-cfg-kafka-password-do-not-print"),
            ("ssl.ca.location", "/etc/ssl/certs/ca-certificates.crt"),
            ("session.timeout.ms", "6000"),
            ("max.poll.interval.ms", "600000"),
        ]
    );
}

#[test]
fn debug_output_redacts_secrets() {
    let config = load(&fixture("full.cfg")).expect("full.cfg is valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains("full-cfg-secret-value-do-not-print"), "{debug}");
    assert!(!debug.contains("full-cfg-kafka-password-do-not-print"), "{debug}");
    assert!(debug.contains("<redacted>"));
    assert!(
        debug.contains("AKIAEXAMPLEACCESSKEY") && debug.contains("SCRAM-SHA-512"),
        "non-secret values stay visible: {debug}"
    );
}

#[test]
fn secret_looking_kafka_keys_are_kept_as_secrets() {
    let config = parse_ok(&with(
        "kafka",
        "sasl.password = a\nssl.key.password = b\nsasl.jaas.config = c\n\
         sasl.oauthbearer.client.secret = d\nssl.key.pem = e\nsome.token = f\nclient.id = g",
    ));
    let secret_keys: Vec<&str> = config
        .kafka
        .iter()
        .filter(|(_, value)| matches!(value, KafkaValue::Secret(_)))
        .map(|(key, _)| key.as_str())
        .collect();
    assert_eq!(
        secret_keys,
        [
            "sasl.password",
            "ssl.key.password",
            "sasl.jaas.config",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "some.token"
        ]
    );
}

#[test]
fn minimal_file_gets_documented_defaults() {
    let config = parse_ok(MINIMAL);
    assert_eq!(config.main.log_level, LogLevel::Info);
    assert_eq!(config.consumer.consumer_processes, 1);
    assert_eq!(config.consumer.kafka_auto_offset_reset, OffsetReset::Earliest);
    assert_eq!(config.consumer.consumer_nice_level, 0);
    assert_eq!(config.consumer.consumer_class, ConsumerClass::KafkaConfluentConsumer);
    assert_eq!(config.consumer.max_age, Duration::from_secs(1800));
    assert_eq!(config.compression.compression_check_interval, Duration::from_secs(60));
    assert_eq!(config.compression.compressor_workers, 1);
    assert_eq!(config.s3.s3upload_check_interval, Duration::from_secs(60));
    assert_eq!(config.s3.s3uploader_workers, 1);
    assert_eq!(config.s3.credentials, None);
    assert_eq!(config.s3.topic_whitelist, ["events"]);
}

#[test]
fn unknown_key_suggests_nearest_valid_key() {
    assert_eq!(
        message(&with("consumer", "kafka_bootstrapp = kafka:9092")),
        "test.cfg:4: unknown key 'kafka_bootstrapp' in [consumer]; did you mean 'kafka_bootstrap'?"
    );
}

#[test]
fn unknown_key_valid_in_another_section_names_that_section() {
    assert_eq!(
        message(&with("s3", "compressor_workers = 2")),
        "test.cfg:8: unknown key 'compressor_workers' in [s3]; it belongs in [compression]"
    );
}

#[test]
fn unknown_dotted_key_points_to_kafka_section() {
    assert_eq!(
        message(&with("consumer", "session.timeout.ms = 6000")),
        "test.cfg:4: unknown key 'session.timeout.ms' in [consumer]; librdkafka properties belong in [kafka]"
    );
}

#[test]
fn unknown_key_far_from_every_valid_key_gets_no_suggestion() {
    assert_eq!(message(&with("main", "zzz = 1")), "test.cfg:2: unknown key 'zzz' in [main]");
}

#[test]
fn unknown_section_suggests_nearest_section() {
    assert_eq!(
        message(&format!("{MINIMAL}[compresion]\ncompressor_workers = 2\n")),
        "test.cfg:9: unknown section [compresion]; did you mean [compression]?"
    );
    assert_eq!(message(&format!("{MINIMAL}[S3]\n")), "test.cfg:9: unknown section [S3]; did you mean [s3]?");
}

#[test]
fn missing_required_key_names_section_and_key() {
    let text = MINIMAL.replace("kafka_bootstrap = kafka:9092\n", "");
    assert_eq!(message(&text), "test.cfg: missing required key 'kafka_bootstrap' in [consumer]");
    let text = MINIMAL.replace("[s3]\ns3_bucket_name = bucket\n", "");
    assert_eq!(
        message(&text),
        "test.cfg: no archive named: set [store] url (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///PATH) or [s3] s3_bucket_name"
    );
}
