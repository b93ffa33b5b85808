//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

use mak::{Header, MakReader, ReadError};

/// A record as owned bytes: (offset, key, value).
pub type Owned = (i64, Vec<u8>, Vec<u8>);

/// A record to append: (offset, key, value), `None` for a null key or value.
pub type Input<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

pub fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

pub fn golden_bytes(name: &str) -> Vec<u8> {
    std::fs::read(golden(name)).unwrap()
}

/// Reads every record, or the first error.
pub fn collect<R: Read>(reader: &mut MakReader<R>) -> Result<Vec<Owned>, ReadError> {
    let mut out = Vec::new();
    while let Some(r) = reader.next_record()? {
        out.push((r.offset, r.key.to_vec(), r.value.to_vec()));
    }
    Ok(out)
}

/// Reads a whole file from a slice with its length as size limit.
pub fn read_slice(bytes: &[u8]) -> Result<(Header, Vec<Owned>), ReadError> {
    let mut reader = MakReader::with_size_limit(bytes, bytes.len() as u64)?;
    let records = collect(&mut reader)?;
    Ok((reader.header().clone(), records))
}

pub fn read_file(path: &Path) -> (Header, Vec<Owned>) {
    read_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub fn rec(offset: i64, key: &[u8], value: &[u8]) -> Owned {
    (offset, key.to_vec(), value.to_vec())
}

pub fn header(topic: &str, partition: i32, start_offset: i64, start_time: f64) -> Header {
    Header { topic: topic.to_string(), partition, start_offset, start_time }
}

/// Overwrites the u64 at `at` in `bytes`.
pub fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_be_bytes());
}

pub fn get_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
}
pub mod format;
pub mod v2;
