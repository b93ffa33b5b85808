//! Version 1: reading and checking, and structured inputs (a valid file, then damage).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use mak::{Header, MakReader, MakWriter, ReadError};

use crate::heap::*;

/// A record as owned bytes: (offset, key, value).
pub type Owned = (i64, Vec<u8>, Vec<u8>);

/// Every error about bad data must name a byte position inside the input: a position past
/// the real end would send someone looking for bytes that do not exist.
pub fn check_error(what: &str, err: &ReadError, input_len: usize) {
    let position = err.position().unwrap_or_else(|| panic!("{what}: error without a position: {err:?}"));
    assert!(position <= input_len as u64, "{what}: error at byte {position} past the input's {input_len} bytes: {err}");
    // Display must not panic either, and names the position.
    let message = err.to_string();
    assert!(message.contains("byte"), "{what}: message without a byte position: {message}");
}

/// Reads `bytes` with their length as size limit, as `read_all` and `open_append` do.
pub fn read_limited(bytes: &[u8]) -> Result<(Header, Vec<Owned>, u64), ReadError> {
    let mut reader = MakReader::with_size_limit(bytes, bytes.len() as u64)?;
    let records = collect(&mut reader)?;
    assert_eq!(reader.position(), reader.write_position(), "records end exactly at the write position");
    Ok((reader.header().clone(), records, reader.write_position()))
}

/// Reads `bytes` as a stream of unknown length (the `.mak.gz` path).
pub fn read_streaming(bytes: &[u8]) -> Result<Vec<Owned>, ReadError> {
    let mut reader = MakReader::new(bytes)?;
    collect(&mut reader)
}

fn collect<R: std::io::Read>(reader: &mut MakReader<R>) -> Result<Vec<Owned>, ReadError> {
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push((record.offset, record.key.to_vec(), record.value.to_vec()));
    }
    // A reader at its end stays there.
    assert!(matches!(reader.next_record(), Ok(None)));
    Ok(records)
}

/// Reads every record of a stream of unknown length without keeping any: the heap this takes
/// is the reader's own.
pub fn drain_streaming(bytes: &[u8]) -> Result<u64, ReadError> {
    let mut reader = MakReader::new(bytes)?;
    let mut count = 0u64;
    while reader.next_record()?.is_some() {
        count += 1;
    }
    Ok(count)
}

/// Reads `bytes` every way the crate offers, checking each result, and the heap each read
/// takes on its own (measured on passes that keep no record); returns the size-limited result.
pub fn read_and_check(bytes: &[u8]) -> Result<(Header, Vec<Owned>, u64), ReadError> {
    let len = bytes.len();
    let (count, peak) = measure_peak(|| mak::read_all(bytes));
    check_heap("read_all", peak, len);
    let (streaming_count, peak) = measure_peak(|| drain_streaming(bytes));
    check_heap("new (streaming)", peak, len);

    let limited = read_limited(bytes);
    match (&count, &limited) {
        (Ok(count), Ok((_, records, _))) => assert_eq!(*count, records.len() as u64),
        (Err(err), Err(expected)) => {
            check_error("with_size_limit", err, len);
            assert_eq!(err.to_string(), expected.to_string());
        }
        _ => panic!("read_all {count:?} disagrees with with_size_limit {limited:?}"),
    }

    let streaming = read_streaming(bytes);
    match (&streaming, &limited) {
        (Err(err), _) => check_error("new (streaming)", err, len),
        // A size limit equal to the real length only makes the same failures show earlier.
        (Ok(records), Ok((_, expected, _))) => assert_eq!(records, expected),
        (Ok(_), Err(err)) => panic!("streaming read succeeds where the size-limited one fails: {err:?}"),
    }
    match (&streaming, &streaming_count) {
        (Ok(records), Ok(count)) => assert_eq!(records.len() as u64, *count),
        (Err(err), Err(again)) => assert_eq!(err.to_string(), again.to_string()),
        _ => panic!("two streaming reads of the same bytes disagree"),
    }
    limited
}

// ---------------------------------------------------------------------------------------------
// Structured inputs: a valid file, then damage
// ---------------------------------------------------------------------------------------------

/// A file to write with `MakWriter`: records synced, then records appended but never synced
/// (the writer is dropped, as in a crash), which may leave a torn tail.
#[derive(Arbitrary, Debug)]
pub struct ValidFile {
    topic: String,
    partition: u32,
    start_offset: u64,
    start_time: f64,
    synced: Vec<ArbRecord>,
    unsynced: Vec<ArbRecord>,
    /// Sync after every record instead of once at the end.
    sync_each: bool,
}

#[derive(Arbitrary, Debug)]
pub struct ArbRecord {
    offset: u64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// Repeat the value this many times (x 1 KiB) so records outgrow the writer's buffer.
    value_kib: u8,
}

impl ArbRecord {
    /// (offset, key, value) as the writer takes them, the value possibly inflated.
    pub fn parts(&self) -> (i64, Option<&[u8]>, Option<Vec<u8>>) {
        let offset = (self.offset & i64::MAX as u64) as i64;
        let value = self.value.as_ref().map(|value| {
            let mut out = value.clone();
            if !value.is_empty() {
                for _ in 0..(self.value_kib % 200) {
                    out.extend(std::iter::repeat_n(value[0], 1024));
                }
            }
            out
        });
        (offset, self.key.as_deref(), value)
    }
}

impl ValidFile {
    /// The header, with values forced into what the format allows.
    pub fn header(&self) -> Header {
        Header {
            topic: self.topic.clone(),
            partition: (self.partition & i32::MAX as u32) as i32,
            start_offset: (self.start_offset & i64::MAX as u64) as i64,
            start_time: if self.start_time.is_finite() { self.start_time } else { 0.0 },
        }
    }

    /// Writes the file at `path` and returns the records a reader must find (the synced ones).
    pub fn write(&self, path: &Path) -> Vec<Owned> {
        let _ = fs::remove_file(path);
        let mut writer = MakWriter::create(path, &self.header()).expect("create");
        let mut expected = Vec::new();
        for record in &self.synced {
            let (offset, key, value) = record.parts();
            writer.append(offset, key, value.as_deref()).expect("append");
            if self.sync_each {
                writer.sync().expect("sync");
            }
            expected.push((offset, key.unwrap_or_default().to_vec(), value.unwrap_or_default()));
        }
        writer.sync().expect("sync");
        for record in &self.unsynced {
            let (offset, key, value) = record.parts();
            writer.append(offset, key, value.as_deref()).expect("append");
        }
        drop(writer);
        expected
    }
}

/// One way to damage a file.
#[derive(Arbitrary, Debug)]
pub enum Mutation {
    FlipBit {
        at: u32,
        bit: u8,
    },
    SetByte {
        at: u32,
        value: u8,
    },
    /// Overwrite 8 bytes with a big-endian integer: hits length prefixes and header fields.
    SetU64 {
        at: u32,
        value: u64,
    },
    /// Like `SetU64`, at one of the fixed header fields (last offset, write position, header length).
    SetHeaderField {
        field: u8,
        value: u64,
    },
    Overwrite {
        at: u32,
        bytes: Vec<u8>,
    },
    Truncate {
        at: u32,
    },
    Extend {
        garbage: Vec<u8>,
    },
}

impl Mutation {
    /// Applies the mutation; returns the lowest byte position it changed (the new length for
    /// a truncation, the old length for an extension).
    pub fn apply(&self, bytes: &mut Vec<u8>) -> usize {
        // Positions are taken modulo the current length (+1 where the end itself is allowed).
        let pick = |at: u32, len: usize| if len == 0 { 0 } else { at as usize % len };
        let put = |bytes: &mut Vec<u8>, at: usize, data: &[u8]| {
            let end = (at + data.len()).min(bytes.len());
            bytes[at..end].copy_from_slice(&data[..end - at]);
        };
        match self {
            Mutation::FlipBit { at, bit } => {
                if bytes.is_empty() {
                    return 0;
                }
                let at = pick(*at, bytes.len());
                bytes[at] ^= 1 << (bit % 8);
                at
            }
            Mutation::SetByte { at, value } => {
                if bytes.is_empty() {
                    return 0;
                }
                let at = pick(*at, bytes.len());
                bytes[at] = *value;
                at
            }
            Mutation::SetU64 { at, value } => {
                let at = pick(*at, bytes.len());
                put(bytes, at, &value.to_be_bytes());
                at
            }
            Mutation::SetHeaderField { field, value } => {
                let at =
                    [mak::LAST_OFFSET_AT, mak::WRITE_POSITION_AT, mak::HEADER_LEN_AT][*field as usize % 3] as usize;
                let at = at.min(bytes.len());
                put(bytes, at, &value.to_be_bytes());
                at
            }
            Mutation::Overwrite { at, bytes: data } => {
                let at = pick(*at, bytes.len());
                put(bytes, at, data);
                at
            }
            Mutation::Truncate { at } => {
                let at = *at as usize % (bytes.len() + 1);
                bytes.truncate(at);
                at
            }
            Mutation::Extend { garbage } => {
                let at = bytes.len();
                bytes.extend_from_slice(garbage);
                at
            }
        }
    }
}

/// A scratch file path unique to this process, on tmpfs when there is one: the writer
/// fsyncs, which on a disk would make every fuzz iteration wait for it.
pub fn scratch_path(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = match std::env::var_os("MAK_FUZZ_SCRATCH") {
            Some(dir) => PathBuf::from(dir),
            None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!("mak-fuzz-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("scratch dir");
        dir
    });
    dir.join(name)
}
