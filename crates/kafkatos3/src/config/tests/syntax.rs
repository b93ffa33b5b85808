//! The file's syntax (the original's ConfigParser rules), its errors, and secrets in them.

use super::*;

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
fn compression_defaults_to_zstd_3_or_gzip_6_for_mak_v1_and_takes_each_codec_with_its_own_level_range() {
    use mak::codec::Codec;
    let default = parse_ok(MINIMAL).compression.compression;
    assert_eq!((default.codec(), default.level()), (Codec::Zstd, 3));
    let v2 = parse_ok(&with("main", "mak_format_version = 2")).compression.compression;
    assert_eq!((v2.codec(), v2.level()), (Codec::Zstd, 3));
    let v1 = parse_ok(&with("main", "mak_format_version = 1")).compression.compression;
    assert_eq!((v1.codec(), v1.level()), (Codec::Gzip, 6), "the original's readers expect gzip");
    let level_alone = parse_ok(&with("compression", "compression_level = 9")).compression.compression;
    assert_eq!((level_alone.codec(), level_alone.level()), (Codec::Gzip, 9), "a level set alone was gzip's");
    let zstd19 = with("compression", "compression = zstd\ncompression_level = 19")
        .replace("[main]\n", "[main]\nmemory_limit_bytes = 512MiB\n");
    let zstd = parse_ok(&zstd19).compression.compression;
    assert_eq!((zstd.codec(), zstd.level()), (Codec::Zstd, 19));
    let lz4 = parse_ok(&with("compression", "compression = lz4")).compression.compression;
    assert_eq!((lz4.codec(), lz4.level()), (Codec::Lz4, 1));
    assert_eq!(parse_ok(&with("compression", "compression = none")).compression.compression.codec(), Codec::None);
}

#[test]
fn compression_threads_split_one_zstd_file_and_are_refused_for_other_codecs_naming_the_line() {
    let zstd = parse_ok(&with("compression", "compression_threads = 2")).compression.compression;
    assert_eq!((zstd.codec(), zstd.threads()), (mak::codec::Codec::Zstd, 2));
    assert_eq!(parse_ok(MINIMAL).compression.compression.threads(), 1);
    assert_eq!(
        message(&with("compression", "compression = gzip\ncompression_threads = 2")),
        "test.cfg:11: [compression] compression_threads = '2': expected 1: only zstd compresses one file on several threads, not gzip"
    );
    assert_eq!(
        message(&with("compression", "compression_threads = 0")),
        "test.cfg:10: [compression] compression_threads = '0': expected a whole number from 1 to 64"
    );
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
        message(&with("compression", "compression = gzip\ncompression_level = 10")),
        "test.cfg:11: [compression] compression_level = '10': expected a gzip level from 1 to 9"
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
