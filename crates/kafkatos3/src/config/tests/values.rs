//! Each key's values: ranges, enums, sizes, names, and the checks across keys.

use std::time::Duration;

use super::*;

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
fn mak_format_version_is_1_2_or_3_and_anything_else_stops_startup_naming_file_line_and_key() {
    assert_eq!(parse_ok(&with("main", "mak_format_version = 1")).main.mak_format_version, mak::Version::V1);
    assert_eq!(parse_ok(&with("main", "mak_format_version = 2")).main.mak_format_version, mak::Version::V2);
    assert_eq!(parse_ok(&with("main", "mak_format_version = 3")).main.mak_format_version, mak::Version::V3);
    for bad in ["4", "0", "v2", "2.0", "", "two"] {
        let error = parse_err(&with("main", &format!("mak_format_version = {bad}")));
        assert!(
            matches!(&error, ConfigError::InvalidValue { line: 2, key, .. } if *key == "mak_format_version"),
            "{bad:?}: {error:?}"
        );
    }
    assert_eq!(
        message(&with("main", "mak_format_version = 4")),
        "test.cfg:2: [main] mak_format_version = '4': expected 1 (the original's format), 2 or 3"
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
        assert_eq!(parse_ok(&text).store.location, StoreLocation::S3 { bucket: bucket.to_string() });
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
        "test.cfg:8: 'events' is in [consumer] topic_whitelist but [s3] topic_whitelist does not cover it \
         (a pattern must be there as written): its files would never be uploaded, so its offsets would never be committed"
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
fn the_s3_whitelist_covers_consumed_names_by_pattern_and_consumed_patterns_only_as_written() {
    let text = MINIMAL.replace("topic_whitelist = events", "topic_whitelist = orders-eu, ^audit\\..*");
    let covered = text.replace("[s3]\n", "[s3]\ntopic_whitelist = ^orders-.*, ^audit\\..*\n");
    assert!(parse_text(&covered).is_ok());
    let narrower = text.replace("[s3]\n", "[s3]\ntopic_whitelist = ^orders-.*, ^audit\\.eu.*\n");
    let error = parse_text(&narrower).unwrap_err().to_string();
    assert!(error.contains("'^audit\\..*'") && error.contains("does not cover it"), "{error}");
}

#[test]
fn topic_whitelist_is_trimmed_deduplicated_and_checked() {
    let whitelist = |value: &str| {
        let text = MINIMAL.replace("topic_whitelist = events", &format!("topic_whitelist = {value}"));
        parse_text(&text).map(|config| config.consumer.topic_whitelist)
    };
    assert_eq!(whitelist(" a , ,b,a,").expect("valid list"), ["a", "b"]);
    assert_eq!(whitelist("a, ^a.*, ^a.*").expect("valid list"), ["a", "^a.*"]);
    for bad in ["bad topic", "..", "ab/c", &"t".repeat(250), " , ", "^(unclosed"] {
        let error = whitelist(bad).expect_err(bad);
        assert!(
            matches!(&error, ConfigError::InvalidValue { line: 6, key, .. } if *key == "topic_whitelist"),
            "{error}"
        );
    }
    assert!(whitelist(&"t".repeat(249)).is_ok());
    assert!(message(&MINIMAL.replace("topic_whitelist = events", "topic_whitelist = a b"))
        .contains("but 'a b' is not a topic name"));
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
    assert_eq!(parse_ok(&with("s3", "s3_key_prefix =")).store.prefix, "", "empty: the whole bucket");
}

#[test]
fn leftover_timeout_takes_its_earlier_name_too_but_not_both() {
    let new = parse_ok(&with("consumer", "leftover_timeout_seconds = 30"));
    assert_eq!(new.consumer.leftover_timeout, Duration::from_secs(30));
    let earlier = parse_ok(&with("consumer", "orphan_timeout_seconds = 40"));
    assert_eq!(earlier.consumer.leftover_timeout, Duration::from_secs(40));
    let both = message(&with("consumer", "orphan_timeout_seconds = 40\nleftover_timeout_seconds = 30"));
    assert!(
        both.contains("leftover_timeout_seconds and orphan_timeout_seconds are the same setting (the other is on line"),
        "{both}"
    );
}

#[test]
fn group_snapshots_are_off_unless_archive_groups_is_set_and_a_bad_pattern_names_its_line() {
    assert_eq!(parse_ok(MINIMAL).groups, None);
    assert_eq!(parse_ok(&with("groups", "archive_groups_interval_seconds = 5")).groups, None);
    let config = parse_ok(&with("groups", "archive_groups = app-.*"));
    let groups = config.groups.expect("set");
    assert_eq!(groups.interval, Duration::from_secs(60), "the default");
    assert!(groups.archive_groups.is_match("app-1") && !groups.archive_groups.is_match("my-app-1"));
    let error = message(&with("groups", "archive_groups = app-(.*"));
    assert!(
        error.starts_with("test.cfg:10: [groups] archive_groups = 'app-(.*': expected a regular expression"),
        "{error}"
    );
    assert!(!error.contains('\n'), "one line: {error}");
    let error = message(&with("groups", "archive_groups = x\narchive_groups_interval_seconds = 0.5"));
    assert!(error.starts_with("test.cfg:11: [groups] archive_groups_interval_seconds"), "{error}");
}

#[test]
fn metrics_are_served_only_when_listen_is_set_and_a_bad_address_names_the_line() {
    assert_eq!(parse_ok(MINIMAL).metrics, None);
    let config = parse_ok(&format!("{MINIMAL}\n[metrics]\nlisten = 0.0.0.0:9464\n"));
    assert_eq!(config.metrics.map(|m| m.listen), Some("0.0.0.0:9464".parse().unwrap()));
    let config = parse_ok(&format!("{MINIMAL}\n[metrics]\nlisten = [::1]:9464\n"));
    assert_eq!(config.metrics.map(|m| m.listen.port()), Some(9464));
    let text = format!("{MINIMAL}\n[metrics]\nlisten = 9464\n");
    let line = text.lines().count();
    let error = message(&text);
    assert!(error.starts_with(&format!("test.cfg:{line}: [metrics] listen = '9464': expected HOST:PORT")), "{error}");
}

#[test]
fn log_format_is_text_unless_json_is_asked_for() {
    assert_eq!(parse_ok(MINIMAL).main.log_format, LogFormat::Text);
    assert_eq!(parse_ok(&with("main", "log.format = JSON")).main.log_format, LogFormat::Json);
    assert_eq!(
        message(&with("main", "log.format = yaml")),
        "test.cfg:2: [main] log.format = 'yaml': expected text or json"
    );
}

#[test]
fn store_url_names_the_archive_in_any_store_and_its_path_is_the_key_prefix() {
    let without_s3 = MINIMAL.replace("[s3]\ns3_bucket_name = bucket\n", "");
    let store = |url: &str| parse_ok(&format!("{without_s3}[store]\nurl = {url}\n")).store;
    let s3 = store("s3://my-bucket/archive/prod/");
    assert_eq!((s3.location, s3.prefix.as_str()), (StoreLocation::S3 { bucket: "my-bucket".into() }, "archive/prod"));
    assert_eq!(store("s3://my-bucket").prefix, "kafkatos3", "no path: the default prefix");
    assert_eq!(store("gs://my-bucket/a").location, StoreLocation::Gcs { bucket: "my-bucket".into() });
    assert_eq!(store("az://container/a").location, StoreLocation::Azure { container: "container".into() });
    let local = store("file:///var/lib/kafkatos3-archive/");
    assert_eq!(local.location, StoreLocation::Local { root: "/var/lib/kafkatos3-archive".into() });
    assert_eq!(local.location.to_string(), "file:///var/lib/kafkatos3-archive");
    assert_eq!(local.prefix, "", "a directory is the archive's own: no prefix");
    let with_prefix = parse_ok(&format!("{without_s3}[s3]\ns3_key_prefix = p\n[store]\nurl = file:///a\n")).store;
    assert_eq!(with_prefix.prefix, "p", "s3_key_prefix applies under a URL without a path");
}

#[test]
fn a_bad_store_url_or_a_second_archive_location_names_the_lines() {
    let without_s3 = MINIMAL.replace("[s3]\ns3_bucket_name = bucket\n", "");
    for url in ["bucket", "ftp://x", "file://relative/path", "s3://Bad_Bucket!", "az://a"] {
        let text = format!("{without_s3}[store]\nurl = {url}\n");
        let error = message(&text);
        assert!(error.starts_with(&format!("test.cfg:8: [store] url = '{url}': expected ")), "{error}");
    }
    assert_eq!(
        message(&format!("{MINIMAL}[store]\nurl = s3://other\n")),
        "test.cfg:10: [store] url and [s3] s3_bucket_name (line 8) both say where the archive is: keep one"
    );
    let text = format!("{without_s3}[s3]\ns3_key_prefix = p\n[store]\nurl = s3://bucket/q\n");
    assert!(message(&text).contains("[store] url and [s3] s3_key_prefix (line 8) both say"), "{}", message(&text));
}

#[test]
fn s3_encryption_needs_a_kms_key_exactly_when_kms_is_asked_for() {
    use crate::config::{Addressing, ServerSideEncryption};
    let options = |lines: &str| parse_ok(&with("s3", lines)).s3.options;
    assert_eq!(options("s3_sse = AES256").sse, Some(ServerSideEncryption::S3));
    let kms = options("s3_sse = aws:kms\ns3_sse_kms_key_id = alias/archive\ns3_sse_bucket_key = true");
    assert_eq!(kms.sse, Some(ServerSideEncryption::Kms { key_id: "alias/archive".into() }));
    assert_eq!(kms.bucket_key, Some(true));
    assert_eq!(options("s3_addressing = virtual").addressing, Some(Addressing::VirtualHosted));
    assert_eq!(options("").sse, None);
    assert!(message(&with("s3", "s3_sse = aws:kms")).contains("s3_sse_kms_key_id set to the key"));
    assert!(message(&with("s3", "s3_sse = AES256\ns3_sse_kms_key_id = k")).contains("unset with s3_sse = AES256"));
    assert!(message(&with("s3", "s3_sse_kms_key_id = k")).contains("set only with s3_sse = aws:kms"));
    assert!(message(&with("s3", "s3_sse = rot13")).contains("AES256 (SSE-S3), aws:kms or aws:kms:dsse"));
    assert!(message(&with("s3", "s3_sse = AES256\ns3_sse_bucket_key = true")).contains("only with s3_sse = aws:kms"));
}

#[test]
fn storage_class_and_tags_are_refused_where_the_store_cannot_keep_them() {
    let store = |url: &str, lines: &str| {
        MINIMAL.replace("s3_bucket_name = bucket\n", "") + &format!("[store]\nurl = {url}\n{lines}\n")
    };
    let objects = parse_ok(&store("s3://bkt", "storage_class = GLACIER_IR\nobject_tags = team=data")).store.objects;
    assert_eq!(objects.storage_class.as_deref(), Some("GLACIER_IR"));
    assert_eq!(objects.tags, [("team".to_string(), "data".to_string())]);
    assert!(message(&store("file:///a", "storage_class = STANDARD_IA"))
        .contains("a directory archive has no storage classes"));
    assert!(message(&store("gs://bkt", "object_tags = a=b")).contains("Google Cloud Storage has no object tags"));
    assert!(parse_text(&store("gs://bkt", "storage_class = NEARLINE")).is_ok());
}
