//! `kafkatos3 CONFIG`: the archiving daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Archive Kafka topics to S3 as MAK files")]
struct Args {
    /// kafkatos3 config file to use (the original's INI format)
    configfile: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match kafkatos3::config::load(&args.configfile) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("kafkatos3: {error}");
            return ExitCode::from(2);
        }
    };
    kafkatos3::logging::init(config.main.log_level);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %args.configfile.display(), "kafkatos3 starting");
    match kafkatos3::daemon::run(config, kafkatos3::daemon::signals()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{:#}", anyhow::Error::from(error));
            ExitCode::FAILURE
        }
    }
}
