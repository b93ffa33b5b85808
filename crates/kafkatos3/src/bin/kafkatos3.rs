//! `kafkatos3 CONFIG`: the archiving daemon. `kafkatos3 verify ...`: check an archive in S3.
//! `kafkatos3 parse ...`: print an archive file (the same as `kafkatos3_parse`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use kafkatos3::archive::store::S3Target;
use kafkatos3::tools::verify;

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
    /// Print the header and records of a MAK file (any version, codec or encryption), from a
    /// local path or s3://bucket/key: the same as kafkatos3_parse.
    Parse(kafkatos3::tools::parse::cli::ParseArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// Take bucket, key prefix, endpoint, region and credentials from this config file
    #[arg(long)]
    config: Option<PathBuf>,
    /// Bucket to check (overrides the config's s3_bucket_name)
    #[arg(long)]
    bucket: Option<String>,
    /// Key prefix of the archive (overrides the config's s3_key_prefix; default kafkatos3)
    #[arg(long)]
    prefix: Option<String>,
    /// S3-compatible endpoint URL (overrides the config's s3_endpoint)
    #[arg(long)]
    endpoint: Option<String>,
    /// Region (overrides the config's s3_region)
    #[arg(long)]
    region: Option<String>,
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
    /// To read .age objects: an age identity file (PATH, file:PATH or env:NAME); repeatable
    #[arg(long, value_name = "SOURCE")]
    identity: Vec<String>,
    /// To read .age objects encrypted to a passphrase: file:PATH or env:NAME
    #[arg(long, value_name = "SOURCE")]
    passphrase: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match (args.command, args.configfile) {
        (Some(Command::Verify(verify)), _) => run_verify(verify),
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
    kafkatos3::observe::logging::init(config.main.log_level);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %configfile.display(), "kafkatos3 starting");
    match kafkatos3::daemon::run(config, kafkatos3::daemon::signals()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{:#}", anyhow::Error::from(error));
            ExitCode::FAILURE
        }
    }
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
    let config = match args.config.as_deref().map(kafkatos3::config::load).transpose() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("kafkatos3 verify: {error}");
            return ExitCode::from(2);
        }
    };
    let s3 = config.as_ref().map(|c| &c.s3);
    let Some(bucket) = args.bucket.as_deref().or(s3.map(|s| s.s3_bucket_name.as_str())) else {
        eprintln!("kafkatos3 verify: name the bucket with --bucket or --config");
        return ExitCode::from(2);
    };
    let prefix = args.prefix.as_deref().or(s3.map(|s| s.s3_key_prefix.as_str())).unwrap_or("kafkatos3");
    let target = S3Target::from_flags(s3, bucket, args.endpoint.as_deref(), args.region.as_deref());
    let result = (|| -> anyhow::Result<verify::Report> {
        let archive = target.archive(prefix)?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let decryption = kafkatos3::tools::parse::cli::decryption(&args.identity, args.passphrase.as_deref())?;
        let options = verify::Options { deep: args.deep, decryption: decryption.as_ref() };
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
            print!("{}", report.render());
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
