//! The command line of `kafkatos3 restore`: its arguments, turned into [`Options`] and a client
//! configuration, and one run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Options, Report, RestoreError};
use crate::tools::selection::SelectionArgs;
use crate::tools::source::{ArchiveArgs, Source, SourceError};

/// `kafkatos3 restore`'s arguments.
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub source: ArchiveArgs,
    /// Kafka brokers to restore into (default: the config's kafka_bootstrap; the config's `[kafka]`
    /// security settings apply either way)
    #[arg(long)]
    pub bootstrap: Option<String>,
    #[command(flatten)]
    pub select: SelectionArgs,
    /// Restore topic OLD into NEW (same partition numbers); repeatable
    #[arg(long, value_name = "OLD=NEW")]
    pub topic_map: Vec<String>,
    /// Spread each topic over the target's partitions (any number of them) instead of keeping
    /// partition numbers: by key as Kafka's default partitioner (records without a key take
    /// turns), or round-robin; one archived partition is read at a time
    #[arg(long, value_enum, conflicts_with = "groups")]
    pub repartition: Option<super::repartition::Repartition>,
    /// Create missing target topics with the archive's partition count
    #[arg(long)]
    pub create_topics: bool,
    /// Allow target partitions that already hold records (this restore must then be their only
    /// writer until it is complete)
    #[arg(long)]
    pub append: bool,
    /// Restore into a topic the config's daemon archives into this same archive
    #[arg(long)]
    pub force: bool,
    /// Print what would be restored (per partition: objects, offsets, times, bytes) and stop
    #[arg(long)]
    pub dry_run: bool,
    /// Add a header NAME = topic:partition:offset of the archived record
    #[arg(long, value_name = "NAME")]
    pub source_header: Option<String>,
    /// At most this many records per second (5000), or bytes per second (20MB/s, 512KiB/s; keys,
    /// values and headers)
    #[arg(long, value_name = "RATE")]
    pub rate_limit: Option<String>,
    /// A re-run waits until two readings of the targets' ends this many ms apart agree (what a
    /// killed run had sent may still be on its way)
    #[arg(long, default_value_t = 5000)]
    pub settle_ms: u64,
    /// Carry these consumer groups' committed offsets over to the restored topics (regular
    /// expressions matching whole group names; repeatable), from the archive's group snapshots
    /// (kept by the daemon when its config sets archive_groups) or --group-offsets
    #[arg(long, value_name = "REGEX")]
    pub groups: Vec<String>,
    /// Take the groups' offsets from this file instead of the archive's snapshots:
    /// {"GROUP": {"TOPIC": {"PARTITION": OFFSET}}}
    #[arg(long, value_name = "FILE", requires = "groups")]
    pub group_offsets: Option<PathBuf>,
    /// Use the newest group snapshot taken at or before this time (ms since the epoch or RFC 3339;
    /// default: --to-time when given, else the newest)
    #[arg(long, value_parser = crate::tools::parse::cli::parse_time, requires = "groups")]
    pub groups_at: Option<i64>,
    /// Print the translated group offsets, commit nothing
    #[arg(long, requires = "groups")]
    pub groups_plan: bool,
    /// Partitions restored at the same time
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// The state file that lets a re-run of the same command continue where this one stopped
    #[arg(long, default_value = "kafkatos3-restore.state.json")]
    pub state: PathBuf,
    /// Also write the report (per partition: records, offset map) to this file as JSON
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Why `kafkatos3 restore` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Restore(#[from] RestoreError),
    #[error("writing the report {}: {source}", path.display())]
    Report { path: PathBuf, source: std::io::Error },
}

impl CliError {
    /// A mistake in the flags or the config (exit status 2).
    pub fn is_usage(&self) -> bool {
        match self {
            CliError::Source(error) => error.is_usage(),
            CliError::Usage(_) => true,
            _ => false,
        }
    }
}

/// Runs the restore the arguments describe; writes `--report` if asked.
pub fn run(args: &RestoreArgs) -> Result<Report, CliError> {
    let Source { config, archive, decryption } = args.source.open()?;
    let mut topic_map = BTreeMap::new();
    for mapping in &args.topic_map {
        match mapping.split_once('=') {
            Some((old, new)) if !old.is_empty() && !new.is_empty() => {
                topic_map.insert(old.to_string(), new.to_string());
            }
            _ => return Err(CliError::Usage(format!("--topic-map {mapping}: expected OLD=NEW"))),
        }
    }
    let rate_limit =
        args.rate_limit.as_deref().map(super::produce::RateLimit::parse).transpose().map_err(CliError::Usage)?;
    let select = args.select.select().map_err(CliError::Usage)?;
    let mut client = match &config {
        Some(config) => crate::config::kafka::security_config(config),
        None => rdkafka::ClientConfig::new(),
    };
    match (&args.bootstrap, &config) {
        (Some(bootstrap), _) => client.set("bootstrap.servers", bootstrap),
        (None, Some(config)) => client.set("bootstrap.servers", &config.consumer.kafka_bootstrap),
        (None, None) => return Err(CliError::Usage("name the target with --bootstrap or --config".into())),
    };
    // The config's daemon archives its whitelist into this archive, unless the flags name
    // another store, bucket or prefix.
    let archived_by_daemon = match &config {
        Some(config) if args.source.bucket.is_none() && args.source.store.is_none() && args.source.prefix.is_none() => {
            Some(config.consumer.topic_whitelist.clone())
        }
        _ => None,
    };
    let options = Options {
        select,
        topic_map,
        repartition: args.repartition,
        create_topics: args.create_topics,
        append: args.append,
        force: args.force,
        dry_run: args.dry_run,
        source_header: args.source_header.clone(),
        rate_limit,
        parallel: args.parallel,
        state_path: args.state.clone(),
        decryption: decryption.as_ref(),
        archived_by_daemon,
        progress_every: std::time::Duration::from_secs(10),
        settle: std::time::Duration::from_millis(args.settle_ms),
        groups: args.groups.clone(),
        group_offsets: args.group_offsets.clone(),
        groups_at: args.groups_at.or(args.select.to_time),
        groups_plan: args.groups_plan,
    };
    let report = super::restore(&archive, &client, &options)?;
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).expect("a report is plain data");
        std::fs::write(path, json).map_err(|source| CliError::Report { path: path.clone(), source })?;
    }
    Ok(report)
}
