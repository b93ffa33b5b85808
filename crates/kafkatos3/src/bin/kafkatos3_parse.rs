//! `kafkatos3_parse FILE`: print a MAK archive (`.mak` or `.mak.gz`).

use std::io::{BufWriter, ErrorKind, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kafkatos3::parse::{print_file, ParseError};

#[derive(Parser)]
#[command(name = "kafkatos3_parse", version, about = "Print the header and records of a MAK file")]
struct Args {
    /// filename to parse (.mak or .mak.gz)
    file: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let result = print_file(&args.file, &mut out).and_then(|_| out.flush().map_err(ParseError::Output));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `kafkatos3_parse f | head` is not an error.
        Err(ParseError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kafkatos3_parse: {error}");
            ExitCode::FAILURE
        }
    }
}
