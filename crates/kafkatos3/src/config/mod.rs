//! The daemon's configuration file: an INI file compatible with the original Python KafkatoS3.
//!
//! Loading happens in one step, [`load`] (or [`parse`] for text already in memory): the raw file is
//! read by a small INI reader (`ini.rs`) and then validated into a typed [`Config`] (`validate.rs`).
//! Nothing is looked up by string after that, so a typo or a bad value stops the daemon at start-up
//! with a one-line message naming the file and line, never hours later in a worker.
//!
//! The reader follows the original's Python 2 `ConfigParser.RawConfigParser`, so its files keep
//! working unchanged:
//! - `[section]` headers; `key = value` or `key: value`, split at the first `=` or `:`;
//!   keys are trimmed and lowercased, values trimmed; section names are case-sensitive.
//! - Lines whose first non-blank character is `#` or `;` are comments.
//! - A line starting with whitespace continues the previous value (joined with `\n`).
//! - A `;` that opens a value or follows whitespace starts an inline comment (only the first `;`
//!   of the first line is considered, as Python 2 did); `#` after a value is *not* a comment.
//! - A value that is exactly `""` (or `''`) is empty.
//!
//! Unlike the original it is strict, as Python 3's parser is: a duplicate section or key is an
//! error, and so is any section or key this version does not know. See the README's configuration reference
//! for every key.

pub mod budget;
mod ini;
pub mod kafka;
pub mod topics;
mod validate;
mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[main]`: process-wide settings.
    pub main: MainConfig,
    /// `[consumer]`: what to consume from Kafka and how.
    pub consumer: ConsumerConfig,
    /// `[compression]`: the stage that compresses sealed files.
    pub compression: CompressionConfig,
    /// `[encryption]`: age recipients or passphrase source the compressed files are encrypted
    /// to; None when the section is absent or empty. Validated (key files read) at load time.
    pub encryption: Option<EncryptionConfig>,
    /// Where the archive is: `[store] url`, or `[s3] s3_bucket_name` and `s3_key_prefix`.
    pub store: StoreConfig,
    /// `[s3]`: the stage that uploads compressed files, and how S3 is reached.
    pub s3: S3Config,
    /// `[kafka]`: extra librdkafka properties, in file order, passed to the consumer as they are.
    /// The properties the daemon sets itself are refused at load time, so these never conflict.
    pub kafka: Vec<(String, KafkaValue)>,
    /// `[groups]`: the consumer groups whose committed offsets are kept in the archive; None
    /// unless `archive_groups` is set.
    pub groups: Option<GroupsConfig>,
    /// `[metrics]`: where the metrics and health endpoints are served; None unless `listen` is set.
    pub metrics: Option<MetricsConfig>,
    /// `[main] memory_limit_bytes` split into one share per buffering stage.
    pub memory: crate::config::budget::MemoryBudget,
}

impl Config {
    /// Whether `[kafka]` sets librdkafka property `key`: the defaults the daemon chooses give way.
    pub fn kafka_sets(&self, key: &str) -> bool {
        self.kafka.iter().any(|(set, _)| set == key)
    }
}

/// `[encryption]` section, validated: the keys were read once, at load time.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// `age_recipients`, `age_recipients_file`, `age_passphrase` as given.
    pub spec: mak::crypt::EncryptionSpec,
    /// What every file is encrypted to.
    pub keys: std::sync::Arc<mak::crypt::Encryption>,
}

impl PartialEq for EncryptionConfig {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

/// `[groups]` section.
#[derive(Debug, Clone)]
pub struct GroupsConfig {
    /// `archive_groups`: a regular expression that a whole group name must match.
    pub archive_groups: regex::Regex,
    /// `archive_groups_interval_seconds`: how often their committed offsets are read (and
    /// stored when they changed). Default 60.
    pub interval: Duration,
}

impl PartialEq for GroupsConfig {
    fn eq(&self, other: &Self) -> bool {
        self.archive_groups.as_str() == other.archive_groups.as_str() && self.interval == other.interval
    }
}

/// `[metrics]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `listen`: the address `/metrics`, `/healthz` and `/readyz` are served on.
    pub listen: std::net::SocketAddr,
}

/// `[main]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct MainConfig {
    /// `log.level`: the least severe level that is logged.
    pub log_level: LogLevel,
    /// `log.format`: one line of text per event (the default), or one JSON object per line.
    pub log_format: LogFormat,
    /// `working_directory`: where in-progress, compressed and to-be-uploaded files live. It must
    /// persist across restarts: the daemon resumes from what it finds there.
    pub working_directory: PathBuf,
    /// `shutdown_timeout_seconds`: how long a graceful shutdown may take before the remaining work
    /// is abandoned (and redone after restart).
    pub shutdown_timeout: Duration,
    /// `mak_format_version`: the MAK version new files are written in (3, the default: blocks,
    /// a seventh to three quarters of 2's bytes once compressed; 2: a CRC per record; 1: the original's, for
    /// downstream readers that expect it - no null, headers or timestamps). An in-progress file
    /// found on disk is finished in the version it was started in.
    pub mak_format_version: mak::Version,
    /// `memory_limit_bytes`: what the daemon may buffer in memory, beyond its fixed base; split
    /// into shares (see [`crate::config::budget`]).
    pub memory_limit_bytes: u64,
}

/// `[consumer]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerConfig {
    /// `consumer_processes`: number of Kafka consumers in the group run by this daemon.
    pub consumer_processes: usize,
    /// `kafka_bootstrap`: librdkafka's `bootstrap.servers`, e.g. `kafka1:9092,kafka2:9092`.
    pub kafka_bootstrap: String,
    /// `kafka_consumer_group`: librdkafka's `group.id`; committed offsets are stored under it.
    pub kafka_consumer_group: String,
    /// `kafka_auto_offset_reset`: where to start when the group has no committed offset.
    pub kafka_auto_offset_reset: OffsetReset,
    /// `consumer_nice_level`: the consumers' scheduling niceness, -20..=19.
    pub consumer_nice_level: i32,
    /// `topic_whitelist`: the topics to archive; at least one, each a valid Kafka topic name or
    /// a `^` pattern.
    pub topic_whitelist: topics::TopicSet,
    /// `max_age_seconds`: an open file is sealed once it is this old.
    pub max_age: Duration,
    /// `consumer_class`: accepted for compatibility; both values use librdkafka.
    pub consumer_class: ConsumerClass,
    /// `rebalance_timeout_seconds`: how long a revoked partition's files may take to be uploaded
    /// and committed before the handover gives up on them.
    pub rebalance_timeout: Duration,
    /// `flush_interval_ms`: how often in-progress files are made durable.
    pub flush_interval: Duration,
    /// `max_file_bytes`: an open file is also sealed once it is this large, so no single file
    /// outgrows what the disk can hold next to its compressed copy.
    pub max_file_bytes: u64,
    /// `max_file_records`: an open file is also sealed once it holds this many records.
    pub max_file_records: Option<u64>,
    /// `seal_at_end_bytes`: a partition whose consumer reaches the end of its log seals an open
    /// file of at least this many bytes at once instead of waiting for `max_age`; 0: never.
    /// Default 16 MiB, or `max_file_bytes` when smaller.
    pub seal_at_end_bytes: u64,
    /// `leftover_timeout_seconds` (or its earlier name `orphan_timeout_seconds`): local files of a
    /// partition this daemon has not owned for this long are resolved (uploaded if they continue
    /// this disk's own uploads, else deleted).
    pub leftover_timeout: Duration,
}

/// `[compression]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressionConfig {
    /// `compression_check_interval`: period of the fallback rescan for files to compress.
    pub compression_check_interval: Duration,
    /// `compressor_workers`: number of files compressed at the same time.
    pub compressor_workers: usize,
    /// `compression_nice_level`: the compressors' scheduling niceness, -20..=19.
    pub compression_nice_level: i32,
    /// `compression` (gzip, zstd, lz4, none; default gzip) and `compression_level` (the codec's
    /// command-line numbering; default the tool's default).
    pub compression: mak::codec::Compression,
}

/// Where the archive is kept, and the key prefix under which it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub location: StoreLocation,
    /// Prepended to every object key, without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// `storage_class`, `object_tags`: what data objects are written with.
    pub objects: ObjectOptions,
}

/// How data objects (not claims, which are read at every start) are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectOptions {
    /// `storage_class`: S3's storage class, GCS's storage class or Azure's access tier.
    pub storage_class: Option<String>,
    /// `object_tags`: `key=value` tags (S3 object tags, Azure blob index tags).
    pub tags: Vec<(String, String)>,
}

/// `[s3]`'s server-side encryption and addressing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `s3_sse` (with `s3_sse_kms_key_id`): `None` leaves it to the bucket's default.
    pub sse: Option<ServerSideEncryption>,
    /// `s3_sse_bucket_key`: S3 Bucket Keys for SSE-KMS; `None` leaves it to the bucket.
    pub bucket_key: Option<bool>,
    /// `s3_addressing`: `None` is path style with `s3_endpoint`, virtual-hosted style on AWS.
    pub addressing: Option<Addressing>,
}

/// Server-side encryption of every object written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// SSE-S3 (`AES256`): S3's own keys.
    S3,
    /// SSE-KMS (`aws:kms`) with this key.
    Kms { key_id: String },
    /// DSSE-KMS (`aws:kms:dsse`): two layers, with this key.
    DualKms { key_id: String },
}

/// How a bucket is named in S3 request URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `https://endpoint/bucket/key`: MinIO, Ceph and most S3-compatible servers.
    Path,
    /// `https://bucket.endpoint/key`: AWS's default, and R2's.
    VirtualHosted,
}

/// The store that holds the archive (`[store] url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `s3://BUCKET`: Amazon S3 or an S3-compatible server (`[s3]`: endpoint, region, credentials).
    S3 { bucket: String },
    /// `gs://BUCKET`: Google Cloud Storage, credentials from the environment.
    Gcs { bucket: String },
    /// `az://CONTAINER`: Azure Blob Storage, the account and its credentials from the environment.
    Azure { container: String },
    /// `file:///PATH`: a directory of this machine (a local disk, or a mounted NAS).
    Local { root: PathBuf },
}

impl StoreLocation {
    /// The key prefix when neither the URL nor `s3_key_prefix` names one: the original's
    /// `kafkatos3` in a bucket; none in a directory, which is the archive's own.
    pub fn default_prefix(&self) -> &'static str {
        match self {
            StoreLocation::Local { .. } => "",
            _ => "kafkatos3",
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::S3 { bucket } => write!(f, "s3://{bucket}"),
            StoreLocation::Gcs { bucket } => write!(f, "gs://{bucket}"),
            StoreLocation::Azure { container } => write!(f, "az://{container}"),
            StoreLocation::Local { root } => write!(f, "file://{}", root.display()),
        }
    }
}

/// `[s3]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Config {
    /// `s3upload_check_interval`: period of the fallback rescan for files to upload.
    pub s3upload_check_interval: Duration,
    /// `s3uploader_workers`: number of files uploaded at the same time.
    pub s3uploader_workers: usize,
    /// `s3_access_key` and `s3_secret_key`; `None` means the standard AWS credential chain.
    pub credentials: Option<S3Credentials>,
    /// `topic_whitelist`: the topics whose files are uploaded; covers the consumer's.
    pub topic_whitelist: topics::TopicSet,
    /// `s3_endpoint`: an `http://` or `https://` URL of an S3-compatible server; `None` means AWS.
    pub s3_endpoint: Option<String>,
    /// `s3_region`: `None` means the environment's region, else `us-east-1`.
    pub s3_region: Option<String>,
    /// `max_local_backlog_bytes`: past half of it the partitions holding more than their share
    /// pause; past all of it every partition does (see [`crate::pipeline::consume::pauses`]).
    pub max_local_backlog_bytes: u64,
    /// `multipart_threshold_bytes`: files at least this large are uploaded in parts.
    pub multipart_threshold_bytes: u64,
    /// Server-side encryption and addressing.
    pub options: S3Options,
}

/// Static S3 credentials, set only when both keys are given in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// `s3_access_key`: the access key id (not secret, so it may be logged).
    pub access_key: String,
    /// `s3_secret_key`.
    pub secret_key: Secret,
}

/// A value that must never reach a log line: its `Debug` prints `<redacted>`, and it has no
/// `Display`, so it can only be read on purpose, with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for handing to the client that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The value of a `[kafka]` property; those whose name looks secret are kept as [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaValue {
    /// An ordinary value, safe to log.
    Plain(String),
    /// A password, token, private key or the like.
    Secret(Secret),
}

impl KafkaValue {
    /// The value as librdkafka needs it.
    pub fn expose(&self) -> &str {
        match self {
            Self::Plain(value) => value,
            Self::Secret(secret) => secret.expose(),
        }
    }
}

/// `log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARNING` or `WARN`.
    Warning,
    /// `ERROR`, or Python's `CRITICAL`, which has no counterpart here.
    Error,
}

impl LogLevel {
    /// The level as `tracing`'s filter directives spell it.
    pub fn as_filter_directive(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warn",
            Self::Error => "error",
        }
    }
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `text`: human-readable, coloured on a terminal.
    #[default]
    Text,
    /// `json`: one JSON object per line, for log pipelines; every field of the event a key of it
    /// (`topic` and `partition` on every line about a partition).
    Json,
}

/// `kafka_auto_offset_reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// `earliest` (or librdkafka's `smallest`): start from the oldest retained message.
    Earliest,
    /// `latest` (or librdkafka's `largest`): start from the next message produced.
    Latest,
    /// `none`: fail instead of guessing.
    None,
}

impl OffsetReset {
    /// The value of librdkafka's `auto.offset.reset`: it spells Kafka's `none` as `error`.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Earliest => "earliest",
            Self::Latest => "latest",
            Self::None => "error",
        }
    }
}

/// `consumer_class`: the original chose between two Python Kafka clients. Both names are accepted
/// so its files load unchanged; this version always uses librdkafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerClass {
    /// `KafkaPythonConsumer`.
    KafkaPythonConsumer,
    /// `KafkaConfluentConsumer`.
    KafkaConfluentConsumer,
}

/// Why a configuration file was refused. Every message is one line, starting with the file (and
/// line, when there is one). Secret values are never stored here, so neither `Display` nor `Debug`
/// can leak them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read (including: it is not UTF-8).
    #[error("{}: cannot read config file: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A line that is neither a section header, a comment, nor `key = value`. The line is not
    /// echoed: it may be a secret that lost its key.
    #[error("{}:{line}: expected '[section]', 'key = value' or 'key: value'", .path.display())]
    MalformedLine { path: PathBuf, line: usize },

    /// A line starting with `[` that is not `[name]` (optionally followed by a comment).
    #[error("{}:{line}: malformed section header: expected '[name]'", .path.display())]
    MalformedSectionHeader { path: PathBuf, line: usize },

    /// A `key = value` line before the first section header.
    #[error("{}:{line}: key '{key}' is outside any section: add a [section] header above it", .path.display())]
    KeyOutsideSection { path: PathBuf, line: usize, key: String },

    /// The same section header twice.
    #[error("{}:{line}: duplicate section [{section}], first defined on line {first_line}", .path.display())]
    DuplicateSection { path: PathBuf, line: usize, section: String, first_line: usize },

    /// The same key twice in one section.
    #[error("{}:{line}: duplicate key '{key}' in [{section}], first set on line {first_line}", .path.display())]
    DuplicateKey { path: PathBuf, line: usize, section: String, key: String, first_line: usize },

    /// A section this version does not know, with the nearest known one if any is close.
    #[error("{}:{line}: unknown section [{section}]{}", .path.display(), did_you_mean_section(.suggestion))]
    UnknownSection { path: PathBuf, line: usize, section: String, suggestion: Option<String> },

    /// A key this version does not know in that section.
    #[error("{}:{line}: unknown key '{key}' in [{section}]{}", .path.display(), key_hint(.suggestion))]
    UnknownKey { path: PathBuf, line: usize, section: &'static str, key: String, suggestion: Option<KeySuggestion> },

    /// `[store] url` and `[s3] s3_bucket_name` (or `s3_key_prefix`, when the URL has a prefix)
    /// both say where the archive is.
    #[error("{}:{line}: [store] url and [s3] {other} (line {other_line}) both say where the archive is: keep one", .path.display())]
    ArchiveNamedTwice { path: PathBuf, line: usize, other: &'static str, other_line: usize },

    /// Nothing says where the archive is.
    #[error("{}: no archive named: set [store] url (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///PATH) or [s3] s3_bucket_name", .path.display())]
    NoArchive { path: PathBuf },

    /// A setting given under both of its names.
    #[error("{}:{line}: [{section}] {key} and {other} are the same setting (the other is on line {first_line}): keep one", .path.display())]
    SameSettingTwice {
        path: PathBuf,
        line: usize,
        section: &'static str,
        key: &'static str,
        /// The setting's other name.
        other: &'static str,
        first_line: usize,
    },

    /// A required key that is absent.
    #[error("{}: missing required key '{key}' in [{section}]", .path.display())]
    MissingKey { path: PathBuf, section: &'static str, key: &'static str },

    /// A value that does not parse or is out of range.
    #[error("{}:{line}: [{section}] {key} = {}: expected {expected}", .path.display(), shown(.value))]
    InvalidValue {
        path: PathBuf,
        line: usize,
        section: &'static str,
        key: &'static str,
        /// The offending value; `None` when the key holds a secret.
        value: Option<String>,
        /// What would have been accepted, e.g. `a whole number >= 1`.
        expected: String,
    },

    /// A `[kafka]` property that the daemon sets itself.
    #[error("{}:{line}: [kafka] {key} cannot be set: {reason}", .path.display())]
    ReservedKafkaKey {
        path: PathBuf,
        line: usize,
        key: &'static str,
        /// Which setting to use instead, or why the daemon owns it.
        reason: &'static str,
    },

    /// Only one of `s3_access_key` and `s3_secret_key` is set.
    #[error(
        "{}:{line}: [s3] {set_key} is set but {missing_key} is not: set both, or leave both empty to use the AWS credential chain",
        .path.display()
    )]
    IncompleteCredentials { path: PathBuf, line: usize, set_key: &'static str, missing_key: &'static str },

    /// A consumed topic that the uploader would skip: its offsets could never be committed.
    #[error(
        "{}:{line}: '{topic}' is in [consumer] topic_whitelist but [s3] topic_whitelist does not cover it (a pattern must be there as written): its files would never be uploaded, so its offsets would never be committed",
        .path.display()
    )]
    TopicNotUploaded {
        path: PathBuf,
        /// The line of `[s3] topic_whitelist`.
        line: usize,
        topic: String,
    },

    /// The memory limit cannot hold the configured workers.
    #[error("{}:{line}: [main] memory_limit_bytes = {limit}: {source}", .path.display())]
    MemoryBudget {
        path: PathBuf,
        /// The line of `memory_limit_bytes`, 0 when the default is in use.
        line: usize,
        limit: u64,
        source: crate::config::budget::BudgetError,
    },

    /// A handover could outlast librdkafka's poll deadline and get the consumer evicted mid-way.
    #[error(
        "{}:{line}: [consumer] rebalance_timeout_seconds ({}s) must be less than [kafka] max.poll.interval.ms ({} ms): a slower handover would get the consumer evicted from the group",
        .path.display(), .rebalance_timeout.as_secs(), .max_poll_interval.as_millis()
    )]
    RebalanceTimeoutTooLong {
        path: PathBuf,
        /// The line of `rebalance_timeout_seconds`, or of `max.poll.interval.ms` if only that is set.
        line: usize,
        rebalance_timeout: Duration,
        max_poll_interval: Duration,
    },
}

/// What an [`ConfigError::UnknownKey`] message suggests instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySuggestion {
    /// A key of the same section with a similar name.
    DidYouMean(String),
    /// The key is valid, but in this other section.
    OtherSection(String),
    /// The key is dotted like a librdkafka property, which belongs in `[kafka]`.
    KafkaSection,
}

fn did_you_mean_section(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(section) => format!("; did you mean [{section}]?"),
        None => String::new(),
    }
}

fn key_hint(suggestion: &Option<KeySuggestion>) -> String {
    match suggestion {
        Some(KeySuggestion::DidYouMean(key)) => format!("; did you mean '{key}'?"),
        Some(KeySuggestion::OtherSection(section)) => format!("; it belongs in [{section}]"),
        Some(KeySuggestion::KafkaSection) => "; librdkafka properties belong in [kafka]".to_owned(),
        None => String::new(),
    }
}

/// Quotes a value for a one-line message: continuation lines show as `\n`.
fn shown(value: &Option<String>) -> String {
    match value {
        Some(value) => format!("'{}'", value.escape_debug()),
        None => "<redacted>".to_owned(),
    }
}

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
    parse(&text, path)
}

/// Parses a store URL as `[store] url` takes it (`s3://BUCKET[/PREFIX]`, `gs://`, `az://`,
/// `file:///PATH`): the location and the key prefix the URL names, if any; else what is expected.
pub fn parse_store_url(url: &str) -> Result<(StoreLocation, Option<String>), String> {
    validate::store_url(url)
}

/// Validates configuration text; `path` is only used to name the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let file = ini::parse(text, path)?;
    validate::validate(&file, path)
}
