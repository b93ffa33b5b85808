//! What the MAK fuzz targets share: a counting global allocator and the heap bound it is
//! checked against, the checks every read result must pass, and structured inputs that
//! build a valid file with `MakWriter` and then damage it.
//!
//! The `mak` crate forbids `unsafe`; this crate is outside its workspace and needs it only
//! for the `GlobalAlloc` impl below.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use mak::{Header, MakReader, MakWriter, ReadError};

// ---------------------------------------------------------------------------------------------
// Heap accounting
// ---------------------------------------------------------------------------------------------

/// Fixed part of the heap bound. The reader owns a 64 KiB read buffer; without a size limit
/// its key and value buffers first grow by a 64 KiB step each even for a 1-byte input
/// (they grow as bytes arrive, never to a length prefix). `MakWriter::open_append` adds
/// the writer's 64 KiB append buffer. The measured maximum over all targets is
/// 4 x 64 KiB + under 1 KiB of small allocations (see README.md); the rest is headroom.
pub const HEAP_BOUND_FIXED: usize = 320 * 1024;
/// Proportional part of the heap bound, per byte of real input. With a size limit a
/// payload buffer is sized at once to a length prefix already checked against the file
/// size; key, value and header buffers together hold at most the file once, and `Vec`'s
/// amortised growth can double one of them. Without a limit the buffers double as bytes
/// arrive, so a buffer is at most twice the bytes it was filled with. Measured maximum: 2.
pub const HEAP_BOUND_PER_BYTE: usize = 4;

/// The most heap one read (or one `open_append`) of `input_len` real bytes may take at once.
pub fn heap_bound(input_len: usize) -> usize {
    HEAP_BOUND_FIXED.saturating_add(HEAP_BOUND_PER_BYTE.saturating_mul(input_len))
}

/// `System`, counting live bytes and their high-water mark. Fuzz targets run the input on
/// one thread, so the global counters describe the code under test (libFuzzer itself
/// allocates with C `malloc`, which does not pass through here).
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_ptr = System.realloc(ptr, layout, new_size);
        if !new_ptr.is_null() {
            // A moving realloc holds old and new block at once: count that moment.
            grew(new_size);
            shrank(layout.size());
        }
        new_ptr
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result with the most heap it held at once beyond what was live
/// when it started.
pub fn measure_peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let result = f();
    (result, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

static WORST_PEAK: AtomicUsize = AtomicUsize::new(0);
static WORST_SHARE: AtomicUsize = AtomicUsize::new(0);

/// Panics (a libFuzzer finding) when `peak` breaks the bound for `input_len` real bytes.
/// With `MAK_FUZZ_REPORT_PEAK` set, prints every new maximum so the bound can be chosen
/// from measurement: of the peak itself, and of the peak as a share of its bound.
pub fn check_heap(what: &str, peak: usize, input_len: usize) {
    let bound = heap_bound(input_len);
    assert!(peak <= bound, "{what}: peak heap {peak} bytes for {input_len} input bytes, bound {bound}");
    if std::env::var_os("MAK_FUZZ_REPORT_PEAK").is_none() {
        return;
    }
    if WORST_PEAK.fetch_max(peak, Ordering::Relaxed) < peak {
        eprintln!("mak-fuzz peak: {what}: new max peak heap {peak} bytes (input {input_len} bytes, bound {bound})");
    }
    let share = peak.saturating_mul(1000) / bound;
    if WORST_SHARE.fetch_max(share, Ordering::Relaxed) < share {
        eprintln!(
            "mak-fuzz peak: {what}: new max share of bound {}.{:03} (peak {peak}, input {input_len}, bound {bound})",
            share / 1000,
            share % 1000
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and checking
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Version 2
// ---------------------------------------------------------------------------------------------

/// A version 2 record as owned bytes, with everything the format keeps.
pub type OwnedV2 = mak::v2::OwnedRecord;

fn collect_v2<R: std::io::Read>(mut reader: mak::v2::MakReader<R>) -> Result<Vec<OwnedV2>, ReadError> {
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        // Iterating the headers of a record the reader accepted must not stop early.
        assert_eq!(record.headers.count(), record.headers.len());
        records.push(record.to_owned_record());
    }
    assert!(matches!(reader.next_record(), Ok(None)), "a reader at its end stays there");
    assert_eq!(reader.write_position(), Some(reader.position()), "records end exactly at the write position");
    Ok(records)
}

fn drain_v2_streaming(bytes: &[u8]) -> Result<u64, ReadError> {
    let mut reader = mak::v2::MakReader::new(bytes)?;
    while reader.next_record()?.is_some() {}
    Ok(reader.records_read())
}

/// Reads `bytes` as a version 2 file every way the crate offers (size-limited, streaming,
/// summary only, through `AnyReader`), checking that each returns records or an error inside
/// the input, that they agree, and the heap each read takes on its own. Returns the
/// size-limited result.
pub fn read_and_check_v2(bytes: &[u8]) -> Result<Vec<OwnedV2>, ReadError> {
    let len = bytes.len();
    let (count, peak) = measure_peak(|| mak::v2::read_all(bytes));
    check_heap("v2 read_all", peak, len);
    let (streaming_count, peak) = measure_peak(|| drain_v2_streaming(bytes));
    check_heap("v2 new (streaming)", peak, len);

    let limited = mak::v2::MakReader::with_size_limit(bytes, len as u64).and_then(collect_v2);
    let streaming = mak::v2::MakReader::new(bytes).and_then(collect_v2);
    match (&count, &limited) {
        (Ok(count), Ok(records)) => assert_eq!(*count, records.len() as u64),
        (Err(err), Err(expected)) => {
            check_error("v2 with_size_limit", err, len);
            assert_eq!(err.to_string(), expected.to_string());
        }
        _ => panic!("v2 read_all {count:?} disagrees with with_size_limit {limited:?}"),
    }
    match (&streaming, &limited) {
        (Err(err), _) => check_error("v2 new (streaming)", err, len),
        (Ok(records), Ok(expected)) => assert_eq!(records, expected),
        (Ok(_), Err(err)) => panic!("v2 streaming read succeeds where the size-limited one fails: {err:?}"),
    }
    match (&streaming, &streaming_count) {
        (Ok(records), Ok(count)) => assert_eq!(records.len() as u64, *count),
        (Err(err), Err(again)) => assert_eq!(err.to_string(), again.to_string()),
        _ => panic!("two v2 streaming reads of the same bytes disagree"),
    }

    match mak::v2::read_summary(bytes) {
        Ok(summary) => {
            if let Ok(reader) = mak::v2::MakReader::new(bytes) {
                assert_eq!(&summary.header, reader.header());
                assert_eq!(summary.progress.as_ref(), reader.progress());
            }
        }
        Err(err) => check_error("v2 read_summary", &err, len),
    }

    if bytes.first() == Some(&mak::v2::MAGIC[0]) {
        let any = mak::AnyReader::with_size_limit(bytes, len as u64).and_then(|mut reader| {
            let mut records = Vec::new();
            while let Some(record) = reader.next_record()? {
                records.push(record.to_owned_record());
            }
            Ok(records)
        });
        match (&any, &limited) {
            (Ok(records), Ok(expected)) => assert_eq!(records, expected),
            (Err(err), Err(expected)) => assert_eq!(err.to_string(), expected.to_string()),
            _ => panic!("AnyReader {any:?} disagrees with the v2 reader {limited:?}"),
        }
    }
    limited
}

/// A version 2 file to write with `v2::MakWriter`: records synced, then either sealed or
/// followed by records appended but never synced (the writer is dropped, as in a crash).
#[derive(Arbitrary, Debug)]
pub struct ValidFileV2 {
    topic: String,
    partition: u32,
    start_offset: u32,
    synced: Vec<ArbRecordV2>,
    unsynced: Vec<ArbRecordV2>,
    sync_each: bool,
    seal: bool,
}

#[derive(Arbitrary, Debug)]
pub struct ArbRecordV2 {
    /// Distance to the previous offset, minus one: offsets always increase.
    gap: u16,
    timestamp: i64,
    timestamp_type: u8,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// Repeat the value this many times (x 1 KiB) so frames outgrow the writer's buffer.
    value_kib: u8,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl ArbRecordV2 {
    fn owned(&self, offset: i64) -> OwnedV2 {
        let value = self.value.as_ref().map(|value| {
            let mut out = value.clone();
            if let Some(&first) = value.first() {
                out.extend(std::iter::repeat_n(first, 1024 * (self.value_kib % 100) as usize));
            }
            out
        });
        let timestamp_type = match self.timestamp_type % 3 {
            0 => mak::v2::TimestampType::NotAvailable,
            1 => mak::v2::TimestampType::CreateTime,
            _ => mak::v2::TimestampType::LogAppendTime,
        };
        OwnedV2 {
            offset,
            timestamp: self.timestamp,
            timestamp_type,
            key: self.key.clone(),
            value,
            headers: self.headers.clone(),
        }
    }
}

impl ValidFileV2 {
    /// Writes the file at `path` and returns the records a reader must find (the synced ones).
    pub fn write(&self, path: &Path) -> Vec<OwnedV2> {
        let _ = fs::remove_file(path);
        let header = mak::v2::Header {
            topic: self.topic.clone(),
            partition: (self.partition & i32::MAX as u32) as i32,
            start_offset: i64::from(self.start_offset),
            created_ms: Some(0),
            writer: None,
        };
        let mut writer = mak::v2::MakWriter::create(path, &header).expect("create");
        let mut offset = i64::from(self.start_offset);
        let mut append = |writer: &mut mak::v2::MakWriter, record: &ArbRecordV2| {
            let owned = record.owned(offset);
            offset += i64::from(record.gap) + 1;
            writer.append(&owned.as_record_ref()).expect("append");
            owned
        };
        let mut expected = Vec::new();
        for record in &self.synced {
            expected.push(append(&mut writer, record));
            if self.sync_each {
                writer.sync().expect("sync");
            }
        }
        if self.seal {
            writer.close().expect("close");
            return expected;
        }
        writer.sync().expect("sync");
        for record in &self.unsynced {
            append(&mut writer, record);
        }
        drop(writer);
        expected
    }
}

/// Recomputes the progress block, header and frame CRCs of a damaged version 2 file, as far
/// as its lengths let it be walked, so the damage reaches the checks behind the CRCs.
pub fn resign_v2(bytes: &mut [u8]) {
    let block = mak::v2::PROGRESS_AT as usize;
    let header_len_at = mak::v2::HEADER_LEN_AT as usize;
    if bytes.len() < header_len_at + 4 {
        return;
    }
    let crc = crc32c::crc32c(&bytes[block..block + 44]);
    bytes[block + 44..block + 48].copy_from_slice(&crc.to_be_bytes());
    let json_len = u32::from_be_bytes(bytes[header_len_at..header_len_at + 4].try_into().unwrap());
    let mut at = mak::v2::data_start(json_len) as usize;
    if at > bytes.len() {
        return;
    }
    let crc = crc32c::crc32c(&bytes[header_len_at..at - 4]);
    bytes[at - 4..at].copy_from_slice(&crc.to_be_bytes());
    while at + 4 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let end = at + 4 + len;
        if len < 4 || end > bytes.len() {
            return;
        }
        let crc = crc32c::crc32c(&bytes[at..end - 4]);
        bytes[end - 4..end].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}
