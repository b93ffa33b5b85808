//! Turns the raw INI sections into a typed [`Config`]: the list of known keys, their defaults,
//! value syntax, and the checks that span several keys.

use mak::codec::{Codec, Compression};
use mak::crypt::{CryptError, Encryption, EncryptionSpec, SecretSource};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ini::{Entry, Ini, Section};
use super::topics::TopicSet;
use super::values::*;
use super::{
    CompressionConfig, Config, ConfigError, ConsumerClass, ConsumerConfig, EncryptionConfig, KeySuggestion, LogFormat,
    LogLevel, MainConfig, OffsetReset, S3Config, S3Credentials, Secret,
};
use crate::config::budget::{MemoryBudget, Workers};
use kafka::{is_secret, kafka, KAFKA_SECTION};

mod groups;
mod kafka;
mod metrics;
mod objects;
mod store;
pub(super) use store::store_url;

const MAIN_KEYS: &[&str] = &[
    "log.level",
    "log.format",
    "working_directory",
    "shutdown_timeout_seconds",
    "mak_format_version",
    "memory_limit_bytes",
];
const CONSUMER_KEYS: &[&str] = &[
    "consumer_processes",
    "kafka_bootstrap",
    "kafka_consumer_group",
    "kafka_auto_offset_reset",
    "consumer_nice_level",
    "topic_whitelist",
    "max_age_seconds",
    "consumer_class",
    "rebalance_timeout_seconds",
    "flush_interval_ms",
    "max_file_bytes",
    "leftover_timeout_seconds",
    "orphan_timeout_seconds",
    "max_file_records",
    "seal_at_end_bytes",
];
const COMPRESSION_KEYS: &[&str] = &[
    "compression_check_interval",
    "compressor_workers",
    "compression_nice_level",
    "compression",
    "compression_level",
    "compression_threads",
];
const S3_KEYS: &[&str] = &[
    "s3upload_check_interval",
    "s3uploader_workers",
    "s3_bucket_name",
    "s3_access_key",
    "s3_secret_key",
    "topic_whitelist",
    "s3_endpoint",
    "s3_region",
    "s3_key_prefix",
    "max_local_backlog_bytes",
    "multipart_threshold_bytes",
    "s3_sse",
    "s3_sse_kms_key_id",
    "s3_sse_bucket_key",
    "s3_addressing",
];
/// Sections with a fixed set of keys; `[kafka]` accepts any key and is handled apart.
const ENCRYPTION_KEYS: &[&str] = &["age_recipients", "age_recipients_file", "age_passphrase"];
const FIXED_SECTIONS: &[(&str, &[&str])] = &[
    ("main", MAIN_KEYS),
    ("consumer", CONSUMER_KEYS),
    ("compression", COMPRESSION_KEYS),
    ("encryption", ENCRYPTION_KEYS),
    ("s3", S3_KEYS),
    ("groups", groups::GROUPS_KEYS),
    ("metrics", metrics::METRICS_KEYS),
    ("store", store::STORE_KEYS),
];

/// `seal_at_end_bytes` when not set (or `max_file_bytes` when smaller): an object of this size
/// costs a request per 16 MiB, which is nothing beside the minutes a backlog's last records would
/// otherwise wait for `max_age_seconds`.
const DEFAULT_SEAL_AT_END: u64 = 16 * MIB;

/// `memory_limit_bytes` when not set: librdkafka's own default queue (64 MiB) plus room for
/// one of each worker and a few thousand partitions.
const DEFAULT_MEMORY_LIMIT: u64 = 256 * MIB;

/// zstd's own ceiling is 200; more than this many threads on one file is a typo.
const MAX_COMPRESSION_THREADS: u64 = 64;

/// Below this suggestions are noise rather than help.
const SUGGESTION_THRESHOLD: f64 = 0.8;

pub(super) fn validate(file: &Ini, path: &Path) -> Result<Config, ConfigError> {
    check_names(file, path)?;
    let view = |name: &'static str| View { path, name, section: file.sections.iter().find(|s| s.name == name) };
    // Section by section in the usual file order, so errors come roughly in reading order.
    let main = main(&view("main"))?;
    let consumer = consumer(&view("consumer"))?;
    let compression = compression(&view("compression"), main.mak_format_version)?;
    let encryption = encryption(&view("encryption"))?;
    let store = store::store(&view("store"), &view("s3"))?;
    let s3 = s3(&view("s3"), &consumer)?;
    let kafka = kafka(&view(KAFKA_SECTION), &view("consumer"), &consumer)?;
    let groups = groups::groups(&view("groups"))?;
    let metrics = metrics::metrics(&view("metrics"))?;
    let memory = memory(&view("main"), &main, &consumer, &compression, encryption.is_some(), &s3)?;
    Ok(Config { main, consumer, compression, encryption, store, s3, kafka, groups, metrics, memory })
}

/// Refuses unknown sections and keys before any value is looked at, so a typo is reported as a
/// typo and not as the missing key it leaves behind.
fn check_names(file: &Ini, path: &Path) -> Result<(), ConfigError> {
    for section in &file.sections {
        if section.name == KAFKA_SECTION {
            continue;
        }
        let Some((name, keys)) = FIXED_SECTIONS.iter().find(|(name, _)| *name == section.name) else {
            let known = FIXED_SECTIONS.iter().map(|(name, _)| *name);
            return Err(ConfigError::UnknownSection {
                path: path.to_owned(),
                line: section.line,
                section: section.name.clone(),
                suggestion: nearest(&section.name, known.chain([KAFKA_SECTION])),
            });
        };
        if let Some(entry) = section.entries.iter().find(|e| !keys.contains(&e.key.as_str())) {
            return Err(ConfigError::UnknownKey {
                path: path.to_owned(),
                line: entry.line,
                section: name,
                key: entry.key.clone(),
                suggestion: suggest_key(name, keys, &entry.key),
            });
        }
    }
    Ok(())
}

fn suggest_key(section: &str, keys: &[&str], key: &str) -> Option<KeySuggestion> {
    let elsewhere = FIXED_SECTIONS.iter().find(|(name, other_keys)| *name != section && other_keys.contains(&key));
    if let Some((name, _)) = elsewhere {
        return Some(KeySuggestion::OtherSection((*name).to_owned()));
    }
    if let Some(nearest) = nearest(key, keys.iter().copied()) {
        return Some(KeySuggestion::DidYouMean(nearest));
    }
    // The fixed sections' only dotted keys are `log.level` and `log.format`; anything else dotted
    // is librdkafka's.
    key.contains('.').then_some(KeySuggestion::KafkaSection)
}

fn nearest<'a>(unknown: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let unknown = unknown.to_lowercase();
    candidates
        .map(|candidate| (strsim::jaro_winkler(&unknown, candidate), candidate))
        .filter(|(score, _)| *score >= SUGGESTION_THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate.to_owned())
}

/// One known section of the file (possibly absent), with the lookups that build its errors.
struct View<'a> {
    path: &'a Path,
    name: &'static str,
    section: Option<&'a Section>,
}

/// A value parser: `Err` carries what would have been accepted, for the message.
type Parser<T> = fn(&str) -> Result<T, String>;

impl<'a> View<'a> {
    fn entry(&self, key: &str) -> Option<&'a Entry> {
        self.section.and_then(|section| section.get(key))
    }

    /// The value of `key`, or `None` when the key is absent or empty.
    fn optional<T>(&self, key: &'static str, parse: Parser<T>) -> Result<Option<T>, ConfigError> {
        match self.entry(key) {
            Some(entry) if !entry.value.is_empty() => {
                parse(&entry.value).map(Some).map_err(|expected| self.invalid(key, entry, expected))
            }
            _ => Ok(None),
        }
    }

    fn or_default<T>(&self, key: &'static str, default: T, parse: Parser<T>) -> Result<T, ConfigError> {
        match self.entry(key) {
            Some(entry) => parse(&entry.value).map_err(|expected| self.invalid(key, entry, expected)),
            None => Ok(default),
        }
    }

    fn required<T>(&self, key: &'static str, parse: Parser<T>) -> Result<T, ConfigError> {
        let entry = self.entry(key).ok_or_else(|| ConfigError::MissingKey {
            path: self.path.to_owned(),
            section: self.name,
            key,
        })?;
        parse(&entry.value).map_err(|expected| self.invalid(key, entry, expected))
    }

    fn invalid(&self, key: &'static str, entry: &Entry, expected: String) -> ConfigError {
        let value = (!is_secret(self.name, key)).then(|| entry.value.clone());
        ConfigError::InvalidValue {
            path: self.path.to_owned(),
            line: entry.line,
            section: self.name,
            key,
            value,
            expected,
        }
    }
}

fn main(view: &View) -> Result<MainConfig, ConfigError> {
    Ok(MainConfig {
        log_level: view.or_default("log.level", LogLevel::Info, log_level)?,
        log_format: view.or_default("log.format", LogFormat::Text, log_format)?,
        working_directory: view
            .required("working_directory", |v| non_empty(v, "a directory path").map(PathBuf::from))?,
        shutdown_timeout: view.or_default("shutdown_timeout_seconds", Duration::from_secs(30), |v| {
            seconds(v, 0.0, false, "a number of seconds > 0")
        })?,
        mak_format_version: view.or_default("mak_format_version", mak::Version::V3, mak_format_version)?,
        memory_limit_bytes: view.or_default("memory_limit_bytes", DEFAULT_MEMORY_LIMIT, |v| {
            byte_size(v, 16 * MIB, u64::MAX, "a size >= 16MiB")
        })?,
    })
}

/// The memory budget's shares: refused here, naming `memory_limit_bytes`, when the configured
/// workers cannot fit in it.
fn memory(
    view: &View,
    main: &MainConfig,
    consumer: &ConsumerConfig,
    compression: &CompressionConfig,
    encrypted: bool,
    s3: &S3Config,
) -> Result<MemoryBudget, ConfigError> {
    let workers = Workers {
        consumers: consumer.consumer_processes,
        compressors: compression.compressor_workers,
        uploaders: s3.s3uploader_workers,
        compression: &compression.compression,
        encrypted,
    };
    MemoryBudget::split(main.memory_limit_bytes, &workers).map_err(|source| ConfigError::MemoryBudget {
        path: view.path.to_owned(),
        line: view.entry("memory_limit_bytes").map_or(0, |entry| entry.line),
        limit: main.memory_limit_bytes,
        source,
    })
}

fn consumer(view: &View) -> Result<ConsumerConfig, ConfigError> {
    let max_file_bytes = view.or_default("max_file_bytes", GIB, |v| byte_size(v, MIB, u64::MAX, "a size >= 1MiB"))?;
    Ok(ConsumerConfig {
        consumer_processes: view.or_default("consumer_processes", 1, count)?,
        kafka_bootstrap: view.required("kafka_bootstrap", |v| non_empty(v, "a comma-separated list of host:port"))?,
        kafka_consumer_group: view.required("kafka_consumer_group", |v| non_empty(v, "a consumer group name"))?,
        kafka_auto_offset_reset: view.or_default("kafka_auto_offset_reset", OffsetReset::Earliest, offset_reset)?,
        consumer_nice_level: view.or_default("consumer_nice_level", 0, nice_level)?,
        topic_whitelist: view.required("topic_whitelist", TopicSet::parse)?,
        max_age: view.or_default("max_age_seconds", Duration::from_secs(1800), whole_seconds)?,
        consumer_class: view.or_default("consumer_class", ConsumerClass::KafkaConfluentConsumer, consumer_class)?,
        rebalance_timeout: view.or_default("rebalance_timeout_seconds", Duration::from_secs(60), whole_seconds)?,
        flush_interval: view.or_default("flush_interval_ms", Duration::from_secs(1), |v| {
            whole_number(v, 10, "a whole number of milliseconds >= 10").map(Duration::from_millis)
        })?,
        max_file_bytes,
        max_file_records: view.optional("max_file_records", |v| whole_number(v, 1, "a whole number >= 1"))?,
        seal_at_end_bytes: view
            .optional("seal_at_end_bytes", |v| byte_size(v, 0, u64::MAX, "a size (0: off)"))?
            .unwrap_or(DEFAULT_SEAL_AT_END.min(max_file_bytes)),
        leftover_timeout: leftover_timeout(view)?,
    })
}

/// `leftover_timeout_seconds`, or `orphan_timeout_seconds`, its name before the `orphaned/`
/// folder (files set aside) and the leftovers sweep were told apart; not both.
fn leftover_timeout(view: &View) -> Result<Duration, ConfigError> {
    const KEY: &str = "leftover_timeout_seconds";
    const EARLIER: &str = "orphan_timeout_seconds";
    match (view.entry(KEY), view.entry(EARLIER)) {
        (Some(entry), Some(earlier)) => Err(ConfigError::SameSettingTwice {
            path: view.path.to_owned(),
            line: entry.line.max(earlier.line),
            section: view.name,
            key: KEY,
            other: EARLIER,
            first_line: entry.line.min(earlier.line),
        }),
        (None, Some(_)) => view.or_default(EARLIER, Duration::from_secs(600), whole_seconds),
        _ => view.or_default(KEY, Duration::from_secs(600), whole_seconds),
    }
}

fn compression(view: &View, version: mak::Version) -> Result<CompressionConfig, ConfigError> {
    Ok(CompressionConfig {
        compression_check_interval: view.or_default(
            "compression_check_interval",
            Duration::from_secs(60),
            check_interval,
        )?,
        compressor_workers: view.or_default("compressor_workers", 1, count)?,
        compression_nice_level: view.or_default("compression_nice_level", 0, nice_level)?,
        compression: codec_and_level(view, version)?,
    })
}

/// `compression` and `compression_level`: the level's range depends on the codec, so a bad
/// level is reported on its own line with the codec's range. The default is zstd (faster and
/// smaller than gzip), except with `mak_format_version = 1`, the original's readers' format,
/// which they expect gzipped, and for a `compression_level` set alone: that meant a gzip level
/// before zstd became the default, and still does.
fn codec_and_level(view: &View, version: mak::Version) -> Result<Compression, ConfigError> {
    let level_alone = view.entry("compression_level").is_some() && view.entry("compression").is_none();
    let default = if version == mak::Version::V1 || level_alone { Codec::Gzip } else { Codec::Zstd };
    let codec = view.or_default("compression", default, |v| {
        Codec::from_name(v).ok_or_else(|| "one of gzip, zstd, lz4, none".to_owned())
    })?;
    let level = view.optional("compression_level", |v| v.parse::<i32>().map_err(|_| "a whole number".to_owned()))?;
    let compression = Compression::new(codec, level).map_err(|_| {
        let levels = codec.levels();
        let expected = match (levels.start(), levels.end()) {
            (only, last) if only == last => format!("no level: {codec} has none"),
            (first, last) => format!("a {codec} level from {first} to {last}"),
        };
        // The level is set: without one the codec's default is used, which is in range.
        let entry = view.entry("compression_level").expect("a level out of range was set");
        view.invalid("compression_level", entry, expected)
    })?;
    // One file on several threads: zstd's own multithreaded mode, which writes one ordinary frame.
    let threads = view.or_default("compression_threads", 1, |v| match whole_number(v, 1, "a whole number >= 1") {
        Ok(n) if n <= MAX_COMPRESSION_THREADS => Ok(n as u32),
        _ => Err(format!("a whole number from 1 to {MAX_COMPRESSION_THREADS}")),
    })?;
    if threads > 1 && codec != Codec::Zstd {
        let entry = view.entry("compression_threads").expect("set above 1");
        return Err(view.invalid(
            "compression_threads",
            entry,
            format!("1: only zstd compresses one file on several threads, not {codec}"),
        ));
    }
    Ok(compression.with_threads(threads))
}

/// `[encryption]`: absent or empty means no encryption. The keys are read here, once, so a bad
/// recipient or an unreadable passphrase stops startup naming the line that set it.
fn encryption(view: &View) -> Result<Option<EncryptionConfig>, ConfigError> {
    let recipients: Vec<String> = view
        .optional("age_recipients", |v| Ok(v.split([',', ' ']).filter(|r| !r.is_empty()).map(String::from).collect()))?
        .unwrap_or_default();
    let recipients_files: Vec<PathBuf> =
        view.optional("age_recipients_file", |v| Ok(vec![PathBuf::from(v)]))?.unwrap_or_default();
    let passphrase = view.optional("age_passphrase", |v| SecretSource::passphrase(v).map_err(|e| e.to_string()))?;
    if recipients.is_empty() && recipients_files.is_empty() && passphrase.is_none() {
        return Ok(None);
    }
    let spec = EncryptionSpec { recipients, recipients_files, passphrase };
    let keys = Encryption::new(&spec).map_err(|error| {
        // The key the problem comes from: the passphrase, else the file, else the literal keys.
        let key = match &error {
            CryptError::BadRecipient { .. } => "age_recipients",
            _ if spec.passphrase.is_some() => "age_passphrase",
            _ if !spec.recipients_files.is_empty() => "age_recipients_file",
            _ => "age_recipients",
        };
        let entry = view.entry(key).expect("the key was set");
        view.invalid(key, entry, format!("usable age keys ({error})"))
    })?;
    Ok(Some(EncryptionConfig { spec, keys: std::sync::Arc::new(keys) }))
}

fn s3(view: &View, consumer: &ConsumerConfig) -> Result<S3Config, ConfigError> {
    let topic_whitelist =
        view.optional("topic_whitelist", TopicSet::parse)?.unwrap_or_else(|| consumer.topic_whitelist.clone());
    if let Some(topic) = topic_whitelist.first_not_covered(&consumer.topic_whitelist) {
        // The s3 whitelist differs from the consumer's only when it is set, so the entry exists.
        let line = view.entry("topic_whitelist").map_or(0, |entry| entry.line);
        return Err(ConfigError::TopicNotUploaded { path: view.path.to_owned(), line, topic: topic.to_owned() });
    }
    Ok(S3Config {
        s3upload_check_interval: view.or_default("s3upload_check_interval", Duration::from_secs(60), check_interval)?,
        s3uploader_workers: view.or_default("s3uploader_workers", 1, count)?,
        credentials: credentials(view)?,
        topic_whitelist,
        s3_endpoint: view.optional("s3_endpoint", endpoint)?,
        s3_region: view.optional("s3_region", |v| no_whitespace(v, "a region name such as eu-west-1"))?,
        max_local_backlog_bytes: view
            .or_default("max_local_backlog_bytes", 10 * GIB, |v| byte_size(v, MIB, u64::MAX, "a size >= 1MiB"))?,
        multipart_threshold_bytes: view.or_default("multipart_threshold_bytes", 64 * MIB, |v| {
            // S3 refuses parts under 5 MiB and single uploads over 5 GiB.
            byte_size(v, 5 * MIB, 5 * GIB, "a size from 5MiB to 5GiB")
        })?,
        options: objects::s3_options(view)?,
    })
}

fn credentials(view: &View) -> Result<Option<S3Credentials>, ConfigError> {
    // A continuation line merged into a key (an indented line below it) would otherwise only
    // show up as an authentication failure at the first upload.
    let one_line = |key: &'static str| match view.entry(key).filter(|e| !e.value.is_empty()) {
        Some(entry) if entry.value.contains('\n') => Err(view.invalid(
            key,
            entry,
            "a single line (the next line is indented, so it continues this value)".to_owned(),
        )),
        entry => Ok(entry),
    };
    let access = one_line("s3_access_key")?;
    let secret = one_line("s3_secret_key")?;
    let incomplete = |entry: &Entry, set_key, missing_key| ConfigError::IncompleteCredentials {
        path: view.path.to_owned(),
        line: entry.line,
        set_key,
        missing_key,
    };
    match (access, secret) {
        (None, None) => Ok(None),
        (Some(access), Some(secret)) => {
            Ok(Some(S3Credentials { access_key: access.value.clone(), secret_key: Secret::new(secret.value.clone()) }))
        }
        (Some(access), None) => Err(incomplete(access, "s3_access_key", "s3_secret_key")),
        (None, Some(secret)) => Err(incomplete(secret, "s3_secret_key", "s3_access_key")),
    }
}
