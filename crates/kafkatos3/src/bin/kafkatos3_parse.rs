//! `kafkatos3_parse FILE`: print a MAK archive (any version, codec or encryption; a local path
//! or `s3://bucket/key`), in the original's format or as JSON Lines. The same as `kafkatos3 parse`.

use std::process::ExitCode;

use clap::Parser;
use kafkatos3::tools::parse::cli::{run, ParseArgs};

#[derive(Parser)]
#[command(name = "kafkatos3_parse", version, about = "Print the header and records of a MAK file")]
struct Cli {
    #[command(flatten)]
    args: ParseArgs,
}

fn main() -> ExitCode {
    match run(&Cli::parse().args, &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kafkatos3_parse: {error}");
            ExitCode::FAILURE
        }
    }
}
