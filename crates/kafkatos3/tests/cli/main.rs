//! The command-line tools as a user runs them: `kafkatos3_parse`, `kafkatos3_rotate` and the
//! `kafkatos3` daemon's start-up checks. Each test runs the compiled binary in a temporary
//! directory; no broker or S3 server is needed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kafkatos3::local::layout::WorkDir;

use kafkatos3::names::today_yymmdd;
use mak::{Header, MakReader, MakWriter};

mod daemon;
mod parse;
mod rotate;

const PARSE: &str = env!("CARGO_BIN_EXE_kafkatos3_parse");
const ROTATE: &str = env!("CARGO_BIN_EXE_kafkatos3_rotate");
const DAEMON: &str = env!("CARGO_BIN_EXE_kafkatos3");

/// No test should take this long; a daemon that unexpectedly starts is killed after it.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// What a finished process left behind.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The whole of stderr, asserted to be exactly one line ending in a newline.
    fn stderr_line(&self) -> &str {
        let line =
            self.stderr.strip_suffix('\n').unwrap_or_else(|| panic!("stderr does not end with a newline: {self:?}"));
        assert!(!line.is_empty() && !line.contains('\n'), "stderr is not exactly one line: {self:?}");
        line
    }
}

/// Runs `program` with `args` to completion (killing it after [`DEADLINE`]).
fn run<I, S>(program: &str, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_with_deadline(&mut child, program);
    Run {
        status,
        stdout: String::from_utf8(stdout.join().expect("stdout reader")).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr.join().expect("stderr reader")).expect("utf-8 stderr"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).expect("read child output");
        bytes
    })
}

fn wait_with_deadline(child: &mut Child, program: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} still running after {DEADLINE:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mak/tests/golden").join(name)
}

const GOLDEN_START_TIME: f64 = 1479000000.0;

fn header(topic: &str, partition: i32, start_offset: i64) -> Header {
    Header { topic: topic.to_owned(), partition, start_offset, start_time: GOLDEN_START_TIME }
}

/// One record as written: offset, key, value (`None` is null).
type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// One record as read back: a null key or value reads as empty.
type ReadRec = (i64, Vec<u8>, Vec<u8>);

fn rec(offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Rec {
    (offset, key.map(<[u8]>::to_vec), value.map(<[u8]>::to_vec))
}

/// Creates a MAK file with our writer and closes it.
fn write_mak(path: &Path, header: &Header, records: &[Rec]) {
    let mut writer = MakWriter::create(path, header).expect("create mak file");
    for (offset, key, value) in records {
        writer.append(*offset, key.as_deref(), value.as_deref()).expect("append");
    }
    writer.close().expect("close mak file");
}

/// Every record of a MAK file, read back with the `mak` reader (null reads as empty).
fn read_records(path: &Path) -> (Header, Vec<ReadRec>) {
    let bytes = fs::read(path).expect("read mak file");
    let mut reader = MakReader::with_size_limit(&bytes[..], bytes.len() as u64)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut records = Vec::new();
    while let Some(record) = reader.next_record().unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        records.push((record.offset, record.key.to_vec(), record.value.to_vec()));
    }
    assert_eq!(reader.position(), bytes.len() as u64, "{}: bytes past the last record", path.display());
    (reader.header().clone(), records)
}

/// The four header lines `kafkatos3_parse` prints, in the original's wording.
fn header_lines(topic: &str, partition: i32, start: i64, created: &str) -> String {
    format!(
        "File topic is {topic}\nFile partition is {partition}\nStaring offset is {start}\nFile created at {created}\n"
    )
}

fn record_line(offset: i64, key: &str, value: &str) -> String {
    format!("Processing message with offset: {offset}, key: {key}, value: {value}\n")
}

/// The golden `original_three_records.mak` as `kafkatos3_parse` prints it, up to `records`.
fn three_records_output(records: usize) -> String {
    let mut out = header_lines("test", 0, 0, "1479000000.0");
    for offset in 0..records {
        out.push_str(&record_line(offset as i64, &format!("key-{offset}"), &format!("value-{offset}")));
    }
    out
}

/// Record 2 of `original_three_records.mak` starts at this byte: the header JSON is 78 bytes
/// (data start 27 + 78 = 105) and records 0 and 1 take 24 + 5 + 7 = 36 bytes each.
const THREE_RECORDS_THIRD_AT: usize = 105 + 2 * 36;
/// The file's length (and write position).
const THREE_RECORDS_LEN: usize = THREE_RECORDS_THIRD_AT + 36;

fn three_records_bytes() -> Vec<u8> {
    let bytes = fs::read(golden("original_three_records.mak")).expect("golden file");
    assert_eq!(bytes.len(), THREE_RECORDS_LEN, "the golden file changed: update the byte positions in this test");
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Every file below `root` with its content, to prove a tool changed nothing.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let relative = path.strip_prefix(root).expect("below root").to_path_buf();
            if path.is_dir() {
                out.insert(relative, b"<dir>".to_vec());
                walk(&path, root, out);
            } else {
                out.insert(relative, fs::read(&path).expect("read file"));
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    files
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
