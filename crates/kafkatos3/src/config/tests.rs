use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

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
    assert_eq!(config.s3.s3_bucket_name, "my_bucket");
    assert_eq!(config.s3.credentials, None, "\"\" means the credential chain");
    assert_eq!(config.s3.topic_whitelist, ["test"]);
    assert!(config.kafka.is_empty());
}

#[test]
fn original_example_gets_defaults_for_new_keys() {
    let config = load(&fixture("original-example.cfg")).expect("the original example is valid");
    assert_eq!(config.main.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(config.main.mak_format_version, mak::Version::V2, "new installs write version 2");
    assert_eq!(config.consumer.rebalance_timeout, Duration::from_secs(60));
    assert_eq!(config.consumer.flush_interval, Duration::from_millis(1000));
    assert_eq!(config.consumer.max_file_bytes, 1024 * 1024 * 1024);
    assert_eq!(config.consumer.orphan_timeout, Duration::from_secs(600));
    assert_eq!(config.consumer.max_file_records, None);
    assert_eq!(config.s3.s3_endpoint, None);
    assert_eq!(config.s3.s3_region, None);
    assert_eq!(config.s3.s3_key_prefix, "kafkatos3");
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
    assert_eq!(consumer.orphan_timeout, Duration::from_secs(300));
    assert_eq!(consumer.max_file_records, Some(1_000_000));

    let compression = &config.compression;
    assert_eq!(compression.compression_check_interval, Duration::from_millis(2500));
    assert_eq!(compression.compressor_workers, 2);
    assert_eq!(compression.compression_nice_level, 19);

    let s3 = &config.s3;
    assert_eq!(s3.s3upload_check_interval, Duration::from_secs(30));
    assert_eq!(s3.s3uploader_workers, 4);
    assert_eq!(s3.s3_bucket_name, "archive-bucket.example");
    let credentials = s3.credentials.as_ref().expect("both keys are set");
    assert_eq!(credentials.access_key, "AKIAEXAMPLEACCESSKEY");
    assert_eq!(credentials.secret_key.expose(), "full-cfg-secret-value-do-not-print");
    assert_eq!(s3.topic_whitelist, ["orders", "payments", "audit.log", "legacy"]);
    assert_eq!(s3.s3_endpoint.as_deref(), Some("http://127.0.0.1:8014"));
    assert_eq!(s3.s3_region.as_deref(), Some("eu-west-1"));
    assert_eq!(s3.s3_key_prefix, "archive/kafka");
    assert_eq!(s3.max_local_backlog_bytes, 2 << 30);
    assert_eq!(s3.multipart_threshold_bytes, 16 << 20);

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
    assert_eq!(message(&text), "test.cfg: missing required key 's3_bucket_name' in [s3]");
}

#[test]
fn non_numeric_count_is_rejected() {
    assert_eq!(
        message(&with("consumer", "consumer_processes = abc")),
        "test.cfg:4: [consumer] consumer_processes = 'abc': expected a whole number >= 1"
    );
}

#[test]
fn zero_and_empty_counts_are_rejected() {
    for line in ["compressor_workers = 0", "compressor_workers =", "compressor_workers = 1.5"] {
        let error = parse_err(&with("compression", line));
        assert!(
            matches!(&error, ConfigError::InvalidValue { line: 10, key, .. } if *key == "compressor_workers"),
            "{error}"
        );
    }
}

#[test]
fn nice_level_outside_minus_20_to_19_is_rejected() {
    for level in ["20", "-21", "high"] {
        assert_eq!(
            message(&with("consumer", &format!("consumer_nice_level = {level}"))),
            format!("test.cfg:4: [consumer] consumer_nice_level = '{level}': expected a whole number from -20 to 19")
        );
    }
    for level in [-20, 19] {
        let config = parse_ok(&with("compression", &format!("compression_nice_level = {level}")));
        assert_eq!(config.compression.compression_nice_level, level);
    }
}

#[test]
fn unknown_enum_values_are_rejected() {
    assert_eq!(
        message(&with("consumer", "kafka_auto_offset_reset = oldest")),
        "test.cfg:4: [consumer] kafka_auto_offset_reset = 'oldest': expected one of earliest, latest, none"
    );
    assert_eq!(
        message(&with("consumer", "consumer_class = KafkaJavaConsumer")),
        "test.cfg:4: [consumer] consumer_class = 'KafkaJavaConsumer': expected KafkaConfluentConsumer or KafkaPythonConsumer"
    );
    assert_eq!(
        message(&with("main", "log.level = verbose")),
        "test.cfg:2: [main] log.level = 'verbose': expected one of DEBUG, INFO, WARNING, ERROR"
    );
}

#[test]
fn mak_format_version_is_1_or_2_and_anything_else_stops_startup_naming_file_line_and_key() {
    assert_eq!(parse_ok(&with("main", "mak_format_version = 1")).main.mak_format_version, mak::Version::V1);
    assert_eq!(parse_ok(&with("main", "mak_format_version = 2")).main.mak_format_version, mak::Version::V2);
    for bad in ["3", "0", "v2", "2.0", "", "two"] {
        let error = parse_err(&with("main", &format!("mak_format_version = {bad}")));
        assert!(
            matches!(&error, ConfigError::InvalidValue { line: 2, key, .. } if *key == "mak_format_version"),
            "{bad:?}: {error:?}"
        );
    }
    assert_eq!(
        message(&with("main", "mak_format_version = 3")),
        "test.cfg:2: [main] mak_format_version = '3': expected 1 (the original's format) or 2"
    );
}

#[test]
fn enum_aliases_and_any_case_are_accepted() {
    let level = |value: &str| parse_ok(&with("main", &format!("log.level = {value}"))).main.log_level;
    assert_eq!(level("warn"), LogLevel::Warning);
    assert_eq!(level("Warning"), LogLevel::Warning);
    assert_eq!(level("CRITICAL"), LogLevel::Error);
    let reset = |value: &str| {
        parse_ok(&with("consumer", &format!("kafka_auto_offset_reset = {value}"))).consumer.kafka_auto_offset_reset
    };
    assert_eq!(reset("smallest"), OffsetReset::Earliest);
    assert_eq!(reset("largest"), OffsetReset::Latest);
    assert_eq!(reset("NONE"), OffsetReset::None);
    assert_eq!(OffsetReset::None.as_librdkafka(), "error");
}

#[test]
fn invalid_bucket_names_are_rejected() {
    for bucket in ["ab", "My-Bucket", "-bucket", "bucket-", "bu cket", &"b".repeat(64)] {
        let text = MINIMAL.replace("s3_bucket_name = bucket", &format!("s3_bucket_name = {bucket}"));
        let error = parse_err(&text);
        assert!(
            matches!(&error, ConfigError::InvalidValue { line: 8, key, .. } if *key == "s3_bucket_name"),
            "{bucket}: {error}"
        );
        assert!(error.to_string().contains("expected an S3 bucket name"), "{error}");
    }
    for bucket in ["my_bucket", "a.b-c", "abc", &"b".repeat(63)] {
        let text = MINIMAL.replace("s3_bucket_name = bucket", &format!("s3_bucket_name = {bucket}"));
        assert_eq!(parse_ok(&text).s3.s3_bucket_name, bucket);
    }
}

#[test]
fn endpoint_without_http_scheme_is_rejected() {
    for endpoint in ["s3.amazonaws.com", "ftp://host", "http://", "http://a b"] {
        let error = parse_err(&with("s3", &format!("s3_endpoint = {endpoint}")));
        assert!(
            error.to_string().ends_with("expected an http:// or https:// URL, e.g. http://127.0.0.1:9000"),
            "{error}"
        );
    }
    let config = parse_ok(&with("s3", "s3_endpoint = https://minio.internal:9000"));
    assert_eq!(config.s3.s3_endpoint.as_deref(), Some("https://minio.internal:9000"));
    assert_eq!(parse_ok(&with("s3", "s3_endpoint =")).s3.s3_endpoint, None);
}

#[test]
fn one_credential_without_the_other_is_rejected() {
    assert_eq!(
        message(&with("s3", "s3_access_key = AKIAONLY\ns3_secret_key = \"\"")),
        "test.cfg:8: [s3] s3_access_key is set but s3_secret_key is not: set both, or leave both empty to use the AWS credential chain"
    );
    assert_eq!(
        message(&with("s3", "s3_secret_key = lonely-secret")),
        "test.cfg:8: [s3] s3_secret_key is set but s3_access_key is not: set both, or leave both empty to use the AWS credential chain"
    );
}

#[test]
fn empty_or_quoted_empty_credentials_mean_the_credential_chain() {
    for pair in [
        "s3_access_key = \"\"\ns3_secret_key = \"\"",
        "s3_access_key = ''\ns3_secret_key = ''",
        "s3_access_key =\ns3_secret_key =",
    ] {
        assert_eq!(parse_ok(&with("s3", pair)).s3.credentials, None, "{pair}");
    }
}

#[test]
fn reserved_kafka_keys_are_refused_with_the_key_to_use_instead() {
    assert_eq!(
        message(&with("kafka", "group.id = other")),
        "test.cfg:10: [kafka] group.id cannot be set: use kafka_consumer_group in [consumer]"
    );
    for key in [
        "bootstrap.servers",
        "metadata.broker.list",
        "enable.auto.commit",
        "auto.commit.enable",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "enable.partition.eof",
    ] {
        let error = parse_err(&with("kafka", &format!("{key} = x")));
        assert!(
            matches!(&error, ConfigError::ReservedKafkaKey { key: refused, line: 10, .. } if *refused == key),
            "{error}"
        );
    }
}

#[test]
fn kafka_keys_are_lowercased_and_passed_through_in_file_order() {
    let config = parse_ok(&with("kafka", "Security.Protocol = SSL\nclient.id = Archiver"));
    assert_eq!(
        config.kafka,
        [
            ("security.protocol".to_owned(), KafkaValue::Plain("SSL".to_owned())),
            ("client.id".to_owned(), KafkaValue::Plain("Archiver".to_owned())),
        ]
    );
}

#[test]
fn duplicate_key_names_both_lines() {
    assert_eq!(
        message(&with("consumer", "consumer_processes = 1\nconsumer_processes = 2")),
        "test.cfg:5: duplicate key 'consumer_processes' in [consumer], first set on line 4"
    );
}

#[test]
fn duplicate_section_names_both_lines() {
    assert_eq!(message(&format!("{MINIMAL}[main]\n")), "test.cfg:9: duplicate section [main], first defined on line 1");
}

#[test]
fn key_before_any_section_is_rejected() {
    assert_eq!(
        message(&format!("log.level = INFO\n{MINIMAL}")),
        "test.cfg:1: key 'log.level' is outside any section: add a [section] header above it"
    );
}

#[test]
fn consumed_topic_missing_from_s3_whitelist_is_rejected() {
    assert_eq!(
        message(&with("s3", "topic_whitelist = other")),
        "test.cfg:8: topic 'events' is in [consumer] topic_whitelist but not in [s3] topic_whitelist: \
         its files would never be uploaded, so its offsets would never be committed"
    );
}

#[test]
fn s3_whitelist_defaults_to_consumer_whitelist_and_may_be_larger() {
    let text = MINIMAL.replace("topic_whitelist = events", "topic_whitelist = a, b");
    assert_eq!(parse_ok(&text).s3.topic_whitelist, ["a", "b"]);
    let text = text.replace("[s3]\n", "[s3]\ntopic_whitelist = b,a,old\n");
    assert_eq!(parse_ok(&text).s3.topic_whitelist, ["b", "a", "old"]);
}

#[test]
fn topic_whitelist_is_trimmed_deduplicated_and_checked() {
    let whitelist = |value: &str| {
        let text = MINIMAL.replace("topic_whitelist = events", &format!("topic_whitelist = {value}"));
        parse_text(&text).map(|config| config.consumer.topic_whitelist)
    };
    assert_eq!(whitelist(" a , ,b,a,").expect("valid list"), ["a", "b"].map(String::from));
    for bad in ["bad topic", "..", "ab/c", &"t".repeat(250), " , "] {
        let error = whitelist(bad).expect_err(bad);
        assert!(
            matches!(&error, ConfigError::InvalidValue { line: 6, key, .. } if *key == "topic_whitelist"),
            "{error}"
        );
    }
    assert!(whitelist(&"t".repeat(249)).is_ok());
    assert!(
        message(&MINIMAL.replace("topic_whitelist = events", "topic_whitelist = a b")).contains("but 'a b' is not one")
    );
}

#[test]
fn sizes_take_binary_suffixes() {
    let backlog = |value: &str| {
        parse_text(&with("s3", &format!("max_local_backlog_bytes = {value}")))
            .map(|config| config.s3.max_local_backlog_bytes)
    };
    assert_eq!(backlog("1048576").expect("plain bytes"), 1 << 20);
    assert_eq!(backlog("1024K").expect("K"), 1 << 20);
    assert_eq!(backlog("3 MiB").expect("MiB"), 3 << 20);
    assert_eq!(backlog("2GB").expect("GB"), 2 << 30);
    assert_eq!(backlog("1t").expect("t"), 1 << 40);
    assert!(backlog("1048575").is_err(), "below 1MiB");
}

#[test]
fn size_with_unknown_suffix_is_rejected() {
    for value in ["10XB", "1.5G", "G", "-1G", "99999999999T"] {
        let text = with("s3", &format!("max_local_backlog_bytes = {value}"));
        let error = parse_err(&text);
        assert!(
            error
                .to_string()
                .starts_with(&format!("test.cfg:8: [s3] max_local_backlog_bytes = '{value}': expected a size >= 1MiB")),
            "{error}"
        );
    }
}

#[test]
fn multipart_threshold_must_fit_s3_part_limits() {
    let threshold = |value: &str| {
        parse_text(&with("s3", &format!("multipart_threshold_bytes = {value}")))
            .map(|config| config.s3.multipart_threshold_bytes)
    };
    assert_eq!(threshold("5MiB").expect("minimum"), 5 << 20);
    assert_eq!(threshold("5GiB").expect("maximum"), 5 << 30);
    assert!(threshold("4M").is_err());
    assert!(threshold("6G").is_err());
}

#[test]
fn check_intervals_accept_fractions_but_not_below_one_second() {
    let interval = |value: &str| {
        parse_text(&with("s3", &format!("s3upload_check_interval = {value}")))
            .map(|config| config.s3.s3upload_check_interval)
    };
    assert_eq!(interval("1.5").expect("fraction"), Duration::from_millis(1500));
    assert_eq!(interval("1").expect("one"), Duration::from_secs(1));
    for bad in ["0.5", "0", "-3", "inf", "NaN", "1e300", "soon"] {
        assert!(interval(bad).is_err(), "{bad}");
    }
}

#[test]
fn new_timing_keys_enforce_their_minimums() {
    assert!(
        message(&with("consumer", "flush_interval_ms = 9")).ends_with("expected a whole number of milliseconds >= 10")
    );
    assert!(message(&with("consumer", "rebalance_timeout_seconds = 0"))
        .ends_with("expected a whole number of seconds >= 1"));
    assert!(message(&with("main", "shutdown_timeout_seconds = 0")).ends_with("expected a number of seconds > 0"));
    let config = parse_ok(&with("main", "shutdown_timeout_seconds = 0.5"));
    assert_eq!(config.main.shutdown_timeout, Duration::from_millis(500));
}

#[test]
fn rebalance_timeout_must_be_shorter_than_max_poll_interval() {
    assert_eq!(
        message(&with("consumer", "rebalance_timeout_seconds = 300")),
        "test.cfg:4: [consumer] rebalance_timeout_seconds (300s) must be less than [kafka] \
         max.poll.interval.ms (300000 ms): a slower handover would get the consumer evicted from the group"
    );
    let error = parse_err(&with("kafka", "max.poll.interval.ms = 60000"));
    assert!(matches!(error, ConfigError::RebalanceTimeoutTooLong { line: 10, .. }), "{error}");
    let text = with("consumer", "rebalance_timeout_seconds = 300");
    let text = format!("{text}[kafka]\nmax.poll.interval.ms = 301000\n");
    assert_eq!(parse_ok(&text).consumer.rebalance_timeout, Duration::from_secs(300));
}

#[test]
fn non_numeric_max_poll_interval_is_rejected() {
    assert_eq!(
        message(&with("kafka", "max.poll.interval.ms = 5m")),
        "test.cfg:10: [kafka] max.poll.interval.ms = '5m': expected a whole number of milliseconds >= 1"
    );
}

#[test]
fn key_prefix_must_not_start_or_end_with_slash() {
    for prefix in ["/archive", "archive/"] {
        assert!(parse_text(&with("s3", &format!("s3_key_prefix = {prefix}"))).is_err());
    }
    assert_eq!(parse_ok(&with("s3", "s3_key_prefix =")).s3.s3_key_prefix, "");
}

#[test]
fn continuation_lines_comments_and_blank_lines() {
    let text = "\
# a comment
; another comment
[main]
   # an indented comment
working_directory = /data

[consumer]
kafka_bootstrap = kafka:9092
kafka_consumer_group = group
topic_whitelist = one,
  two,
  # a comment inside a continued value is skipped

  three
[s3]
s3_bucket_name = bucket
";
    let config = parse_ok(text);
    assert_eq!(config.consumer.topic_whitelist, ["one", "two", "three"]);
    assert_eq!(config.main.working_directory, PathBuf::from("/data"));
}

#[test]
fn continuation_lines_are_joined_with_newlines() {
    let error = parse_err(&with("consumer", "consumer_processes = 1\n  2"));
    match error {
        ConfigError::InvalidValue { value, line, .. } => {
            assert_eq!(value.as_deref(), Some("1\n2"));
            assert_eq!(line, 4, "a value is reported at its key's line");
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(message(&with("consumer", "consumer_processes = 1\n  2")).contains("'1\\n2'"), "messages stay on one line");
}

#[test]
fn colon_separator_and_uppercase_keys_are_accepted() {
    let text = MINIMAL
        .replace("kafka_bootstrap = kafka:9092", "Kafka_Bootstrap: kafka:9092")
        .replace("kafka_consumer_group = group", "kafka_consumer_group=a:b");
    let config = parse_ok(&text);
    assert_eq!(config.consumer.kafka_bootstrap, "kafka:9092");
    assert_eq!(config.consumer.kafka_consumer_group, "a:b", "the first of '=' or ':' separates");
}

#[test]
fn semicolon_after_whitespace_starts_an_inline_comment_but_hash_does_not() {
    let text = MINIMAL
        .replace("group\n", "group ; the archiver's group\n")
        .replace("kafka:9092", "kafka:9092;x")
        .replace("/data", "/data # not a comment");
    let config = parse_ok(&text);
    assert_eq!(config.consumer.kafka_consumer_group, "group");
    assert_eq!(config.consumer.kafka_bootstrap, "kafka:9092;x");
    assert_eq!(config.main.working_directory, PathBuf::from("/data # not a comment"));
}

#[test]
fn section_headers_may_carry_a_comment_but_nothing_else() {
    let config = parse_ok(&MINIMAL.replace("[main]", "[ main ] # process settings"));
    assert_eq!(config.main.working_directory, PathBuf::from("/data"));
    for header in ["[main", "[]", "[main] junk"] {
        let error = parse_err(&MINIMAL.replace("[main]", header));
        assert_eq!(error.to_string(), "test.cfg:1: malformed section header: expected '[name]'");
    }
}

#[test]
fn line_without_separator_is_rejected() {
    assert_eq!(
        message(&with("main", "working_directory /data")),
        "test.cfg:2: expected '[section]', 'key = value' or 'key: value'"
    );
    assert!(matches!(parse_err(&with("main", "= value")), ConfigError::MalformedLine { line: 2, .. }));
}

#[test]
fn windows_line_endings_and_byte_order_mark_are_accepted() {
    let text = format!("\u{feff}{}", MINIMAL.replace('\n', "\r\n"));
    assert_eq!(parse_ok(&text).consumer.kafka_bootstrap, "kafka:9092");
}

#[test]
fn unreadable_file_error_names_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("absent.cfg");
    let error = load(&path).expect_err("the file does not exist");
    assert!(matches!(error, ConfigError::Io { .. }));
    assert!(error.to_string().starts_with(&format!("{}: cannot read config file: ", path.display())), "{error}");
}

#[test]
fn load_names_the_file_in_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.cfg");
    std::fs::write(&path, with("consumer", "consumer_processes = 0")).expect("write");
    let error = load(&path).expect_err("invalid value");
    assert!(error.to_string().starts_with(&format!("{}:4: ", path.display())), "{error}");
}

#[test]
fn secrets_never_appear_in_error_messages() {
    const SECRET: &str = "hunter2-very-secret";
    let cases = [
        // One key without the other.
        with("s3", &format!("s3_secret_key = {SECRET}")),
        // The same secret key twice.
        with("s3", &format!("s3_access_key = AK\ns3_secret_key = {SECRET}\ns3_secret_key = {SECRET}")),
        // A secret whose `=` was forgotten.
        with("s3", &format!("s3_secret_key {SECRET}")),
        // A secret line before any section.
        format!("s3_secret_key = {SECRET}\n{MINIMAL}"),
        // An unknown key holding a secret.
        with("s3", &format!("s3_secret = {SECRET}")),
        // A valid secret in a file that fails later.
        with("kafka", &format!("sasl.password = {SECRET}\ngroup.id = {SECRET}")),
        with("kafka", &format!("sasl.password = {SECRET}\nmax.poll.interval.ms = 1")),
    ];
    for text in cases {
        let error = parse_err(&text);
        let display = error.to_string();
        let debug = format!("{error:?}");
        assert!(!display.contains(SECRET), "{display}");
        assert!(!debug.contains(SECRET), "{debug}");
    }
}

#[test]
fn credential_continued_on_next_line_is_rejected_without_echoing_it() {
    let text = with("s3", "s3_access_key = AK\ns3_secret_key = hunter2\n  s3_region = x");
    assert_eq!(
        message(&text),
        "test.cfg:9: [s3] s3_secret_key = <redacted>: expected a single line \
         (the next line is indented, so it continues this value)"
    );
    assert!(!format!("{:?}", parse_err(&text)).contains("hunter2"));
    assert!(message(&with("s3", "s3_access_key = AK\n  x\ns3_secret_key = s"))
        .starts_with("test.cfg:8: [s3] s3_access_key = 'AK\\nx': expected a single line"));
}

#[test]
fn invalid_secret_value_is_shown_as_redacted() {
    let error = ConfigError::InvalidValue {
        path: PathBuf::from("test.cfg"),
        line: 3,
        section: "kafka",
        key: "sasl.password",
        value: None,
        expected: "something else".to_owned(),
    };
    assert_eq!(error.to_string(), "test.cfg:3: [kafka] sasl.password = <redacted>: expected something else");
}

#[test]
fn secret_debug_is_redacted_and_expose_returns_the_value() {
    let secret = Secret::new("swordfish");
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(secret.expose(), "swordfish");
    let value = KafkaValue::Secret(secret);
    assert!(!format!("{value:?}").contains("swordfish"));
    assert_eq!(value.expose(), "swordfish");
}

#[test]
fn compression_defaults_to_gzip_6_and_takes_each_codec_with_its_own_level_range() {
    use mak::codec::Codec;
    let default = parse_ok(MINIMAL).compression.compression;
    assert_eq!((default.codec(), default.level()), (Codec::Gzip, 6));
    let zstd19 = with("compression", "compression = zstd\ncompression_level = 19")
        .replace("[main]\n", "[main]\nmemory_limit_bytes = 512MiB\n");
    let zstd = parse_ok(&zstd19).compression.compression;
    assert_eq!((zstd.codec(), zstd.level()), (Codec::Zstd, 19));
    let lz4 = parse_ok(&with("compression", "compression = lz4")).compression.compression;
    assert_eq!((lz4.codec(), lz4.level()), (Codec::Lz4, 1));
    assert_eq!(parse_ok(&with("compression", "compression = none")).compression.compression.codec(), Codec::None);
}

#[test]
fn an_unknown_codec_or_a_level_outside_its_range_stops_startup_naming_the_line() {
    assert_eq!(
        message(&with("compression", "compression = bz2")),
        "test.cfg:10: [compression] compression = 'bz2': expected one of gzip, zstd, lz4, none"
    );
    assert_eq!(
        message(&with("compression", "compression = zstd\ncompression_level = 22")),
        "test.cfg:11: [compression] compression_level = '22': expected a zstd level from 1 to 19"
    );
    assert_eq!(
        message(&with("compression", "compression_level = 10")),
        "test.cfg:10: [compression] compression_level = '10': expected a gzip level from 1 to 9"
    );
    assert_eq!(
        message(&with("compression", "compression = none\ncompression_level = 3")),
        "test.cfg:11: [compression] compression_level = '3': expected no level: none has none"
    );
}

#[test]
fn memory_limit_defaults_to_256mib_and_takes_sizes() {
    let default = parse_ok(MINIMAL);
    assert_eq!(default.main.memory_limit_bytes, 256 << 20);
    assert_eq!(default.memory.limit, 256 << 20);
    let set = parse_ok(&with("main", "memory_limit_bytes = 1GiB"));
    assert_eq!(set.memory.limit, 1 << 30);
    assert_eq!(
        message(&with("main", "memory_limit_bytes = 1MiB")),
        "test.cfg:2: [main] memory_limit_bytes = '1MiB': expected a size >= 16MiB: a whole number of bytes, \
         optionally followed by K, M, G or T (or KiB, KB, ...; all powers of 1024)"
    );
}

#[test]
fn a_codec_level_too_large_for_the_memory_limit_stops_startup_saying_what_would_fit() {
    let text = with("compression", "compression = zstd\ncompression_level = 19");
    let error = message(&text);
    assert!(error.starts_with("test.cfg:0: [main] memory_limit_bytes = 268435456: the compression share"), "{error}");
    assert!(error.contains("zstd level 19") && error.contains("raise memory_limit_bytes to at least"), "{error}");
    let error = message(&with("s3", "s3uploader_workers = 16"));
    assert!(error.contains("cannot hold 16 uploader worker(s)"), "{error}");
}
