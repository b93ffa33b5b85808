//! `kafkatos3_rotate WORKING_DIRECTORY`: seal every in-progress file into tocompress/.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kafkatos3::local::layout::WorkDir;

#[derive(Parser)]
#[command(name = "kafkatos3_rotate", version, about = "Rotate all kafkatos3 in-progress files to tocompress")]
struct Args {
    /// kafkatos3 working directory
    workingdir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match kafkatos3::tools::rotate::rotate_all(&WorkDir::new(&args.workingdir), |rotated| {
        let _ = writeln!(std::io::stdout(), "{rotated}");
    }) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kafkatos3_rotate: {error}");
            ExitCode::FAILURE
        }
    }
}
