//! `kafkatos3 CONFIG`: the archiving daemon. `kafkatos3 verify ...`: check an archive in S3.
//! `kafkatos3 parse ...`: print an archive file (the same as `kafkatos3_parse`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use kafkatos3::tools::source::{ArchiveArgs, Source, SourceError};
use kafkatos3::tools::{export, ls, restore, verify};

#[derive(Parser)]
#[command(
    name = "kafkatos3",
    version,
    about = "Archive Kafka topics to S3 as MAK files",
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// kafkatos3 config file to use (the original's INI format): runs the daemon
    configfile: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check an archive in S3: offsets covered per partition, gaps, overlaps, unreadable objects.
    /// Exit status 0 only when clean.
    Verify(VerifyArgs),
    /// List what an archive holds per topic and partition: objects, offsets, time range (from
    /// the objects' headers, one ranged read each), bytes, gaps and claims.
    Ls(LsArgs),
    /// Archive every whitelisted partition up to its end offset as of now, then exit: no group
    /// is joined, each partition resumes where the archive ends (the daemon's or an earlier
    /// snapshot's), and the claims keep it from archiving a record twice beside a running daemon.
    /// Exit status 0 only when every partition is in the archive up to its end.
    Snapshot(SnapshotArgs),
    /// Produce archived records back into Kafka, exactly once at the target across restarts.
    Restore(Box<restore::cli::RestoreArgs>),
    /// Write the archive's records as a Parquet dataset (Hive-style folders by topic and hour)
    /// that DuckDB, Spark, Trino and Athena read: each record exactly once, across restarts and
    /// with --follow as the archive grows. Exit status 0 only when every selected partition was
    /// exported.
    Export(Box<export::cli::ExportArgs>),
    /// Print the header and records of a MAK file (any version, codec or encryption), from a
    /// local path or s3://bucket/key: the same as kafkatos3_parse.
    Parse(kafkatos3::tools::parse::cli::ParseArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    #[command(flatten)]
    source: ArchiveArgs,
    /// Decode every record and check offsets are strictly increasing (default: headers only)
    #[arg(long)]
    deep: bool,
    /// Kafka brokers to compare with (default: the config's kafka_bootstrap and [kafka] settings):
    /// gaps below Kafka's log start are reported as expired, not lost
    #[arg(long)]
    bootstrap: Option<String>,
    /// Do not ask Kafka, only S3
    #[arg(long, conflicts_with = "bootstrap")]
    offline: bool,
    /// Write the report as one JSON document (the exit status is the same)
    #[arg(long)]
    json: bool,
    /// Seconds between progress lines on stderr when it is not a terminal (a bar when it is)
    #[arg(long, default_value_t = 10)]
    progress: u64,
}

#[derive(clap::Args)]
struct SnapshotArgs {
    /// kafkatos3 config file (the daemon's): Kafka, topics, store, working directory, memory
    #[arg(long)]
    config: PathBuf,
    /// Move the consumer group's offsets to what was archived (refused by Kafka while the group
    /// has running members)
    #[arg(long)]
    commit: bool,
    /// Consumers to share the partitions among (default: the larger of consumer_processes and the
    /// number of cores, at most one per partition)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    consumers: Option<u16>,
    /// Seconds between progress lines when stderr is not a terminal (a bar when it is)
    #[arg(long, default_value_t = 10)]
    progress: u64,
}

#[derive(clap::Args)]
struct LsArgs {
    #[command(flatten)]
    source: ArchiveArgs,
    /// Only this topic (repeatable)
    #[arg(long)]
    topic: Vec<String>,
    /// Only this partition number (repeatable)
    #[arg(long)]
    partition: Vec<i32>,
    /// Only objects holding offsets at or after this one
    #[arg(long)]
    from_offset: Option<i64>,
    /// Only objects holding offsets at or before this one
    #[arg(long)]
    to_offset: Option<i64>,
    /// Only objects that can hold records of this time or later: ms since the epoch or RFC 3339
    #[arg(long, value_parser = kafkatos3::tools::parse::cli::parse_time)]
    from_time: Option<i64>,
    /// Only objects that can hold records before this time: ms since the epoch or RFC 3339
    #[arg(long, value_parser = kafkatos3::tools::parse::cli::parse_time)]
    to_time: Option<i64>,
    /// Also list each object: offsets, size, MAK version, codec, time range, key
    #[arg(long)]
    objects: bool,
    /// Write the listing as one JSON document
    #[arg(long)]
    json: bool,
    /// Seconds between progress lines on stderr when it is not a terminal (a bar when it is)
    #[arg(long, default_value_t = 10)]
    progress: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match (args.command, args.configfile) {
        (Some(Command::Verify(verify)), _) => run_verify(verify),
        (Some(Command::Ls(ls)), _) => run_ls(ls),
        (Some(Command::Snapshot(snapshot)), _) => run_snapshot(&snapshot),
        (Some(Command::Restore(restore)), _) => run_restore(&restore),
        (Some(Command::Export(export)), _) => run_export(&export),
        (Some(Command::Parse(parse)), _) => run_parse(&parse),
        (None, Some(configfile)) => run_daemon(configfile),
        (None, None) => {
            let _ = Args::command().write_help(&mut std::io::stderr());
            ExitCode::from(2)
        }
    }
}

fn run_daemon(configfile: PathBuf) -> ExitCode {
    let config = match kafkatos3::config::load(&configfile) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("kafkatos3: {error}");
            return ExitCode::from(2);
        }
    };
    kafkatos3::observe::logging::init(config.main.log_level, config.main.log_format);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %configfile.display(), "kafkatos3 starting");
    match kafkatos3::daemon::run(config, kafkatos3::daemon::signals()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{:#}", anyhow::Error::from(error));
            ExitCode::FAILURE
        }
    }
}

fn run_snapshot(args: &SnapshotArgs) -> ExitCode {
    let config = match kafkatos3::config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("kafkatos3 snapshot: {error}");
            return ExitCode::from(2);
        }
    };
    // On a terminal the progress bar tells how it goes; the info lines would scroll it away.
    let level = if std::io::stderr().is_terminal() {
        config.main.log_level.max(kafkatos3::config::LogLevel::Warning)
    } else {
        config.main.log_level
    };
    kafkatos3::observe::logging::init(level, config.main.log_format);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %args.config.display(), "kafkatos3 snapshot starting");
    let options = kafkatos3::daemon::snapshot::Options {
        consumers: args.consumers.map(usize::from),
        commit: args.commit,
        progress_every: std::time::Duration::from_secs(args.progress.max(1)),
    };
    match kafkatos3::daemon::snapshot::run(config, &options, kafkatos3::daemon::signals()) {
        Ok(report) => {
            // Not print!: a closed stdout must not panic past exit_now (see there).
            use std::io::Write;
            let _ = write!(std::io::stdout().lock(), "{}", report.render());
            exit_now(0)
        }
        Err(error) => {
            tracing::error!("{:#}", anyhow::Error::from(error));
            exit_now(1)
        }
    }
}

/// Ends a snapshot's process at once, with its Kafka clients still closing in the background
/// (`close_in_background`): that changes nothing once the snapshot returned - every stage has
/// stopped, every file is on disk or in the store, the last commits made synchronously - and waiting
/// for it would add 0.1-0.2 s to a run that may take one second. `_exit` rather than `exit`:
/// `exit` runs OpenSSL's clean-up, which must not run while those clients' threads may still be
/// using it (a TLS connection being shut down).
#[allow(unsafe_code)]
fn exit_now(status: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` takes no pointers and never returns; what it skips (atexit handlers and
    // Rust's stdout buffer, flushed above) is not needed, as said above.
    unsafe { libc::_exit(status) }
}

fn run_parse(args: &kafkatos3::tools::parse::cli::ParseArgs) -> ExitCode {
    match kafkatos3::tools::parse::cli::run(args, &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kafkatos3 parse: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_verify(args: VerifyArgs) -> ExitCode {
    let Source { config, archive, decryption } = match args.source.open() {
        Ok(source) => source,
        // Status 1 means "problems found": an archive that could not be checked at all is 2.
        Err(error) => return source_failed("verify", &error, 2),
    };
    let result = (|| -> anyhow::Result<verify::Report> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let options = verify::Options {
            deep: args.deep,
            decryption: decryption.as_ref(),
            progress_every: Some(std::time::Duration::from_secs(args.progress)),
        };
        let mut report = verify::verify(&archive, &options, &runtime)?;
        let kafka = match (&args.bootstrap, &config) {
            _ if args.offline => None,
            (Some(bootstrap), _) => {
                let mut client = rdkafka::ClientConfig::new();
                client.set("bootstrap.servers", bootstrap);
                Some(client)
            }
            (None, Some(config)) => Some(kafkatos3::config::kafka::client_config(config, 0)),
            (None, None) => None,
        };
        if let Some(client) = kafka {
            let (marks, unknown) = verify::kafka_watermarks(&client, report.partitions.keys())?;
            report.apply_kafka(&marks);
            report.kafka_unknown = unknown;
        }
        Ok(report)
    })();
    match result {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.render());
            }
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("kafkatos3 verify: {error}");
            ExitCode::from(2)
        }
    }
}

fn run_ls(args: LsArgs) -> ExitCode {
    let Source { archive, decryption, .. } = match args.source.open() {
        Ok(source) => source,
        Err(error) => return source_failed("ls", &error, if error.is_usage() { 2 } else { 1 }),
    };
    let selection = kafkatos3::archive::Selection {
        topics: args.topic,
        partitions: args.partition,
        from_offset: args.from_offset,
        to_offset: args.to_offset,
        from_ms: args.from_time,
        to_ms: args.to_time,
        known_below: Default::default(),
    };
    let options = ls::Options {
        selection,
        decryption: decryption.as_ref(),
        objects: args.objects,
        progress_every: Some(std::time::Duration::from_secs(args.progress)),
    };
    let result = (|| -> anyhow::Result<ls::Listing> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        Ok(ls::ls(&archive, &options, &runtime)?)
    })();
    match result {
        Ok(listing) if args.json => {
            println!("{}", serde_json::to_string_pretty(&listing).expect("a listing is plain data"));
            ExitCode::SUCCESS
        }
        Ok(listing) => {
            print!("{}", listing.render());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kafkatos3 ls: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A tool that could not open its archive: the reason on one line.
fn source_failed(tool: &str, error: &SourceError, status: u8) -> ExitCode {
    eprintln!("kafkatos3 {tool}: {error}");
    ExitCode::from(status)
}

fn run_restore(args: &restore::cli::RestoreArgs) -> ExitCode {
    match restore::cli::run(args) {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("kafkatos3 restore: warning: {warning}");
            }
            print!("{}", report.render());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kafkatos3 restore: {error}");
            ExitCode::from(if error.is_usage() { 2 } else { 1 })
        }
    }
}

fn run_export(args: &export::cli::ExportArgs) -> ExitCode {
    match export::cli::run(args, kafkatos3::daemon::signals()) {
        Ok(report) => {
            // (--follow said each as it appeared.)
            for warning in report.warnings.iter().filter(|_| !args.follow) {
                eprintln!("kafkatos3 export: warning: {warning}");
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("a report is plain data"));
            } else {
                print!("{}", report.render());
            }
            // Stopped by a signal, a one-shot export has not exported everything; --follow stops
            // that way by design.
            if report.failed.is_empty() && (args.follow || !report.interrupted) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("kafkatos3 export: {error}");
            ExitCode::from(if error.is_usage() { 2 } else { 1 })
        }
    }
}
