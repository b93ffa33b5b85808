//! Archive size benchmark: bytes per record in the store for MAK v2 and v3 with each codec, next
//! to the floor - the same codec on the bare keys and values, concatenated.
//!
//! ```text
//! cargo run --release -p mak --example size_bench -- [--records N] [--partitions N]
//! ```
//!
//! Two corpora, each of `--partitions` partitions (default 8) x `--records` records (default
//! 250,000) written the way the daemon's spool writes them - a durability point every MiB, the
//! append buffer (version 3's block bound) at 64 KiB (the daemon's size with many partitions)
//! and at 1 MiB (with few) - then compressed whole at the daemon's default levels:
//! - `log-like`: bench/run.py's records: no key, a 100-byte value of log-line-like text (fixed
//!   words and random hex) prefixed by the sequence number;
//! - `repetitive`: short repetitive records: key `key-000000123`, value the record's number
//!   repeated to 87 bytes.
//!
//! Timestamps are CreateTime, 100 records per millisecond; records are spread round-robin over
//! the partitions, as the benchmark's producer spreads them.

use std::io::Write;

use mak::codec::{Codec, Compression};
use mak::v2::{RecordRef, TimestampType};
use mak::{AnyWriter, FileStart, Version};

/// The spool's durability point: every MiB appended.
const FLUSH_BYTES: u64 = 1 << 20;

type Corpus = Vec<Vec<(Option<Vec<u8>>, Vec<u8>)>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut records, mut partitions) = (250_000usize, 8usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> Result<usize, Box<dyn std::error::Error>> {
            Ok(args.next().ok_or(format!("{arg} needs a number"))?.parse()?)
        };
        match arg.as_str() {
            "--records" => records = number()?,
            "--partitions" => partitions = number()?,
            other => {
                return Err(format!("unknown argument {other}; usage: size_bench [--records N] [--partitions N]").into())
            }
        }
    }
    let dir = tempfile::tempdir()?;
    let codecs = [Codec::Gzip, Codec::Zstd, Codec::Lz4];
    println!("bytes per record in the store; {partitions} partitions x {records} records; codec levels: the daemon's defaults");
    println!("{:<11} {:<16} {:>8} | {:>7} {:>7} {:>7}", "corpus", "format", "raw", "gzip", "zstd", "lz4");
    for (name, corpus) in [("log-like", log_like(partitions, records)), ("repetitive", repetitive(partitions, records))]
    {
        let total = (partitions * records) as f64;
        let floor: Vec<Vec<u8>> = corpus
            .iter()
            .map(|partition| partition.iter().flat_map(|(k, v)| k.iter().flatten().chain(v).copied()).collect())
            .collect();
        let mut rows = vec![("floor (keys+values)".to_string(), floor)];
        for (version, bound) in [(Version::V2, 64 << 10), (Version::V3, 64 << 10), (Version::V3, 1 << 20)] {
            let files: Result<Vec<Vec<u8>>, _> = corpus
                .iter()
                .enumerate()
                .map(|(p, partition)| write(dir.path(), version, bound, p, partition))
                .collect();
            rows.push((format!("{version:?}, {} KiB", bound >> 10), files?));
        }
        for (label, files) in rows {
            let raw: usize = files.iter().map(Vec::len).sum();
            let mut line = format!("{name:<11} {label:<16} {:>8.1} |", raw as f64 / total);
            for codec in codecs {
                let compressed: usize = files.iter().map(|f| compress(codec, f)).sum::<Result<usize, _>>()?;
                line.push_str(&format!(" {:>7.2}", compressed as f64 / total));
            }
            println!("{line}");
        }
    }
    Ok(())
}

/// The bench's log-line values, as bench/run.py builds them (a pool of 4096, each prefixed by
/// the sequence number, cut to 100 bytes); no key.
fn log_like(partitions: usize, records: usize) -> Corpus {
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
    spread(partitions, records, |seq| {
        let mut value = format!("{seq} {}", pool[seq & 4095]).into_bytes();
        value.truncate(100);
        (None, value)
    })
}

/// Short repetitive records: key `key-000000123`, value the number repeated to 87 bytes.
fn repetitive(partitions: usize, records: usize) -> Corpus {
    spread(partitions, records, |seq| {
        let mut value = seq.to_string().repeat(87 / seq.to_string().len() + 1).into_bytes();
        value.truncate(87);
        (Some(format!("key-{seq:09}").into_bytes()), value)
    })
}

/// `record(seq)` for every sequence number, round-robin over the partitions.
fn spread(partitions: usize, records: usize, record: impl Fn(usize) -> (Option<Vec<u8>>, Vec<u8>)) -> Corpus {
    let mut corpus = vec![Vec::with_capacity(records); partitions];
    for seq in 0..partitions * records {
        corpus[seq % partitions].push(record(seq));
    }
    corpus
}

/// One partition's file as the spool writes it, sealed; its bytes.
fn write(
    dir: &std::path::Path,
    version: Version,
    bound: usize,
    partition: usize,
    records: &[(Option<Vec<u8>>, Vec<u8>)],
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let path = dir.join(format!("{version:?}-{bound}-{partition}.mak"));
    let _ = std::fs::remove_file(&path);
    let start =
        FileStart { topic: "bench", partition: partition as i32, start_offset: 0, created_secs: 1, writer: None };
    let mut writer = AnyWriter::create(&path, version, &start)?;
    writer.set_buffer_capacity(bound)?;
    let mut synced = writer.len();
    for (offset, (key, value)) in records.iter().enumerate() {
        let seq = offset * 8 + partition;
        let record = RecordRef {
            offset: offset as i64,
            timestamp: 1_764_460_800_000 + (seq / 100) as i64,
            timestamp_type: TimestampType::CreateTime,
            key: key.as_deref(),
            value: Some(value),
            headers: &[],
        };
        writer.append(&record)?;
        if writer.len() - synced >= FLUSH_BYTES {
            writer.sync()?;
            synced = writer.len();
        }
    }
    writer.seal()?;
    Ok(std::fs::read(&path)?)
}

/// Compressed size of `bytes` with `codec` at its default level.
fn compress(codec: Codec, bytes: &[u8]) -> std::io::Result<usize> {
    let compression = Compression::new(codec, None).map_err(std::io::Error::other)?;
    let mut encoder = compression.encoder(Vec::new())?;
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}
