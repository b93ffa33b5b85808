//! Codec benchmark: MB/s of one compressor worker for each codec and level on a fixed corpus,
//! next to the same bytes through the codec's command-line tool (`gzip`, `zstd`, `lz4`), both
//! ways. MB = 10^6 bytes of uncompressed MAK file.
//!
//! ```text
//! cargo run --release -p mak --example codec_bench -- [--mib N] [--rounds N] [--threads N]
//! ```
//!
//! `--threads N` (N > 1) adds, for each zstd level, our compression of the same file on N threads
//! (`compression_threads`) against `zstd -T N`.
//!
//! The corpus is a MAK v2 file of `N` MiB (default 64) of the benchmark's records (bench/run.py):
//! ~100-byte log-line-like values, half fixed words and half random hex, from a fixed seed, so
//! every run compresses the same bytes. Our side runs the daemon's code path
//! ([`mak::codec::Compression::encoder`] over a 256 KiB buffered file, one thread); the tool
//! reads the same file and writes to /dev/null. Each figure is the best of `--rounds` (default
//! 3) to keep a busy machine's noise out.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mak::codec::{Codec, Compression, Decoder};
use mak::v2::{MakWriter, RecordRef, TimestampType};

const IO_BUFFER: usize = 256 * 1024;
const LEVELS: &[(Codec, &[i32])] = &[(Codec::Gzip, &[1, 6, 9]), (Codec::Zstd, &[1, 3, 9, 19]), (Codec::Lz4, &[1, 9])];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut mib, mut rounds, mut threads) = (64u64, 3u32, 1u32);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mib" => mib = args.next().ok_or("--mib needs a number")?.parse()?,
            "--rounds" => rounds = args.next().ok_or("--rounds needs a number")?.parse()?,
            "--threads" => threads = args.next().ok_or("--threads needs a number")?.parse()?,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: codec_bench [--mib N] [--rounds N] [--threads N]"
                )
                .into())
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("kafkatos3-codec-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let corpus = dir.join("corpus.mak");
    write_corpus(&corpus, mib << 20)?;
    let size = std::fs::metadata(&corpus)?.len();
    let mb = size as f64 / 1e6;
    println!(
        "corpus: {} ({:.1} MB, MAK v2, ~100-byte log-like values); best of {rounds} rounds, one thread",
        corpus.display(),
        mb
    );
    println!(
        "{:<6} {:>5} {:>7} | {:>10} {:>10} {:>6} | {:>10} {:>10} {:>6}",
        "codec", "level", "ratio", "ours MB/s", "tool MB/s", "ours/t", "unz ours", "unz tool", "ours/t"
    );
    for (codec, levels) in LEVELS {
        for &level in *levels {
            let packed = dir.join(format!("corpus.mak{}", codec.suffix()));
            let compression = Compression::new(*codec, Some(level))?;
            let ours = best(rounds, || compress(&corpus, &packed, compression))?;
            let ratio = size as f64 / std::fs::metadata(&packed)?.len() as f64;
            let tool = best(rounds, || run_tool(*codec, &["-c", &format!("-{level}")], &corpus))?;
            let unz_ours = best(rounds, || decompress(&packed))?;
            let unz_tool = best(rounds, || run_tool(*codec, &["-d", "-c"], &packed))?;
            let rate = |d: Duration| mb / d.as_secs_f64();
            println!(
                "{:<6} {:>5} {:>7.2} | {:>10.1} {:>10.1} {:>6.2} | {:>10.1} {:>10.1} {:>6.2}",
                codec.name(),
                level,
                ratio,
                rate(ours),
                rate(tool),
                tool.as_secs_f64() / ours.as_secs_f64(),
                rate(unz_ours),
                rate(unz_tool),
                unz_tool.as_secs_f64() / unz_ours.as_secs_f64(),
            );
            if *codec == Codec::Zstd && threads > 1 {
                let ours = best(rounds, || compress(&corpus, &packed, compression.with_threads(threads)))?;
                let tool =
                    best(rounds, || run_tool(*codec, &["-c", &format!("-{level}"), &format!("-T{threads}")], &corpus))?;
                println!(
                    "{:<6} {:>5} {:>7} | {:>10.1} {:>10.1} {:>6.2} | on {threads} threads",
                    codec.name(),
                    level,
                    "",
                    mb / ours.as_secs_f64(),
                    mb / tool.as_secs_f64(),
                    tool.as_secs_f64() / ours.as_secs_f64(),
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The benchmark's record values from a fixed seed, into a MAK v2 file of about `bytes`.
fn write_corpus(path: &Path, bytes: u64) -> Result<(), Box<dyn std::error::Error>> {
    const WORDS: &[&str] = &[
        "GET",
        "POST",
        "/api/v1/orders",
        "/api/v1/users",
        "200",
        "404",
        "status",
        "user",
        "latency_ms",
        "region=eu-west-1",
        "region=us-east-1",
        "ok",
        "cache=miss",
        "cache=hit",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pool: Vec<String> = (0..4096)
        .map(|_| {
            let mut text = String::new();
            while text.len() < 100 {
                text.push_str(&format!("{} {:08x} ", WORDS[next() as usize % WORDS.len()], next() as u32));
            }
            text
        })
        .collect();
    let header =
        mak::v2::Header { topic: "bench".into(), partition: 0, start_offset: 0, created_ms: Some(0), writer: None };
    let mut writer = MakWriter::create(path, &header)?;
    let mut value = Vec::with_capacity(128);
    let mut offset = 0i64;
    while writer.len() < bytes {
        value.clear();
        write!(value, "{offset} {}", pool[offset as usize & 4095])?;
        value.truncate(100);
        let record = RecordRef {
            offset,
            timestamp: 1_764_460_800_000 + offset,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: Some(&value),
            headers: &[],
        };
        writer.append(&record)?;
        offset += 1;
    }
    writer.close()?;
    Ok(())
}

fn best(rounds: u32, mut run: impl FnMut() -> io::Result<()>) -> io::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let started = Instant::now();
        run()?;
        best = best.min(started.elapsed());
    }
    Ok(best)
}

/// The compressor worker's path: buffered file in, codec, buffered file out.
fn compress(source: &Path, target: &Path, compression: Compression) -> io::Result<()> {
    let mut input = BufReader::with_capacity(IO_BUFFER, File::open(source)?);
    let mut encoder = compression.encoder(BufWriter::with_capacity(IO_BUFFER, File::create(target)?))?;
    io::copy(&mut input, &mut encoder)?;
    encoder.finish()?.flush()
}

fn decompress(source: &Path) -> io::Result<()> {
    let mut decoder = Decoder::detect(BufReader::with_capacity(IO_BUFFER, File::open(source)?))?;
    let mut buffer = vec![0u8; IO_BUFFER];
    while decoder.read(&mut buffer)? > 0 {}
    Ok(())
}

fn run_tool(codec: Codec, args: &[&str], input: &Path) -> io::Result<()> {
    let tool = match codec {
        Codec::Gzip => "gzip",
        Codec::Zstd => "zstd",
        Codec::Lz4 => "lz4",
        Codec::None => unreachable!("no tool for none"),
    };
    let mut command = Command::new(tool);
    command.args(args);
    if codec != Codec::Gzip {
        command.arg("-q");
    }
    let status = command.arg(input).stdout(Stdio::null()).status()?;
    if !status.success() {
        return Err(io::Error::other(format!("{tool} {args:?} {} failed: {status}", input.display())));
    }
    Ok(())
}
