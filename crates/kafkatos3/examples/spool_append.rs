//! spool_append - the spool's hot path alone, per MAK version: appends records to one
//! `PartitionSpool` in a temporary directory (durability points every MiB, as in the daemon) and
//! seals the file. Prints one JSON line per version on stdout: records/s and MB/s of key+value.
//!
//! ```text
//! cargo build --release --example spool_append
//! target/release/examples/spool_append [RECORDS] [VALUE_BYTES] [HEADERS]
//! ```

use std::time::Instant;

use kafkatos3::local::layout::WorkDir;

use kafkatos3::names::TopicPartition;
use kafkatos3::pipeline::spool::PartitionSpool;
use mak::v2::{RecordRef, TimestampType};
use mak::Version;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |at: usize, default: usize| args.get(at).map_or(default, |s| s.parse().expect("a whole number"));
    let (records, value_bytes, header_count) = (number(1, 2_000_000), number(2, 100), number(3, 3));
    let value = vec![b'v'; value_bytes];
    let header_values: Vec<Vec<u8>> = (0..header_count).map(|i| format!("value-{i}").into_bytes()).collect();
    let headers: Vec<(&str, Option<&[u8]>)> = header_values
        .iter()
        .enumerate()
        .map(|(i, v)| (if i % 2 == 0 { "trace" } else { "span" }, Some(&v[..])))
        .collect();
    for version in [Version::V1, Version::V2, Version::V3] {
        let dir = tempfile::tempdir().expect("temp dir");
        let work = WorkDir::new(dir.path());
        let mut spool = PartitionSpool::new(&work, TopicPartition::new("bench", 0), Some(0), version);
        let started = Instant::now();
        for offset in 0..records as i64 {
            let key = offset.to_be_bytes();
            let record = RecordRef {
                offset,
                timestamp: 1_700_000_000_000 + offset,
                timestamp_type: TimestampType::CreateTime,
                key: Some(&key),
                value: Some(&value),
                headers: &headers,
            };
            spool.append(&record, 1.0).expect("append");
        }
        let (_, file_bytes) = spool.seal().expect("seal").expect("a file with records");
        let seconds = started.elapsed().as_secs_f64();
        let payload = (records * (8 + value_bytes)) as f64;
        println!(
            "{{\"version\": \"{version:?}\", \"records\": {records}, \"value_bytes\": {value_bytes}, \"headers\": {header_count}, \
             \"seconds\": {seconds:.3}, \"records_per_s\": {:.0}, \"payload_mb_per_s\": {:.1}, \"file_bytes\": {file_bytes}}}",
            records as f64 / seconds,
            payload / seconds / 1e6
        );
    }
}
