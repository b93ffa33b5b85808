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

// ---------------------------------------------------------------------------------------------
// kafkatos3_parse: the golden files written by the Python original
// ---------------------------------------------------------------------------------------------

#[test]
fn parse_prints_header_and_records_of_original_file() {
    let out = run(PARSE, [golden("original_three_records.mak")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(3));
    assert_eq!(out.stderr, "");
}

#[test]
fn parse_detects_gzip_by_content_and_prints_the_same_output() {
    let out = run(PARSE, [golden("original_three_records.mak.gz")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(3));
    assert_eq!(out.stderr, "");

    // By content, not by name: a gzip file named .mak and a plain file named .mak.gz.
    let dir = tempfile::tempdir().unwrap();
    let gzip_named_mak = dir.path().join("compressed.mak");
    fs::copy(golden("original_three_records.mak.gz"), &gzip_named_mak).unwrap();
    let plain_named_gz = dir.path().join("plain.mak.gz");
    fs::copy(golden("original_three_records.mak"), &plain_named_gz).unwrap();
    for path in [gzip_named_mak, plain_named_gz] {
        let out = run(PARSE, [&path]);
        assert_eq!(out.code(), Some(0), "{}: {out:?}", path.display());
        assert_eq!(out.stdout, three_records_output(3), "{}", path.display());
    }
}

#[test]
fn parse_shows_empty_and_null_as_nothing_and_binary_as_escaped_bytes() {
    let out = run(PARSE, [golden("original_empty_and_null.mak")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let expected = [
        header_lines("test", 3, 41, "1479000000.0"),
        record_line(41, "", "value with null key"),
        record_line(42, "key with empty value", ""),
        record_line(43, r#"b"\x00\xff\x00bin""#, r#"b"\xff\x00\xfe\x01""#),
        record_line(44, "", ""),
    ]
    .concat();
    assert_eq!(out.stdout, expected);
    assert_eq!(out.stderr, "");
}

#[test]
fn parse_prints_only_the_header_of_a_file_without_records() {
    let out = run(PARSE, [golden("original_no_records.mak")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    // This golden file's start time has a fraction, printed as Python prints the float.
    assert_eq!(out.stdout, header_lines("test", 1, 100, "1479000000.25"));
    assert_eq!(out.stderr, "");
}

#[test]
fn parse_stops_at_the_write_position_and_ignores_a_torn_tail() {
    let out = run(PARSE, [golden("original_torn_tail.mak")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let expected =
        [header_lines("test", 0, 10, "1479000000.0"), record_line(10, "a", "first"), record_line(11, "b", "second")]
            .concat();
    assert_eq!(out.stdout, expected);
    assert_eq!(out.stderr, "");
}

// ---------------------------------------------------------------------------------------------
// kafkatos3_parse: corrupt and missing files
// ---------------------------------------------------------------------------------------------

/// The middle of record 2's value-length prefix: record 2's key-length prefix (8 bytes) and key
/// `key-2` (5 bytes) are complete, its value length is not.
const TRUNCATED_AT: usize = THREE_RECORDS_THIRD_AT + 8 + 5 + 3;

#[test]
fn parse_of_truncated_file_fails_with_one_line_naming_the_file_and_where_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.mak");
    fs::write(&path, &three_records_bytes()[..TRUNCATED_AT]).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: ", path.display())), "{line}");
    // The field cut short starts 3 bytes before the end of the data.
    let field_at = TRUNCATED_AT - 3;
    assert!(
        line.contains(&format!("at byte {field_at}")) && line.contains("found 3"),
        "names the truncated field's position, byte {field_at}: {line}"
    );
}

/// The records before a truncation are intact and worth showing, as the original's reader
/// showed them and as this tool does for the same bytes gzipped (next test).
#[test]
fn parse_of_truncated_file_prints_the_records_before_the_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.mak");
    fs::write(&path, &three_records_bytes()[..TRUNCATED_AT]).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(2), "stderr: {}", out.stderr);
}

#[test]
fn parse_of_truncated_gzip_content_prints_records_before_it_and_names_the_exact_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.mak.gz");
    fs::write(&path, gzip(&three_records_bytes()[..TRUNCATED_AT])).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(2));
    // The value-length prefix starts at 190, where the decompressed input runs out.
    let value_length_at = THREE_RECORDS_THIRD_AT + 8 + 5;
    assert_eq!(
        out.stderr_line(),
        format!(
            "kafkatos3_parse: {}: input ends inside the record value length at byte {value_length_at}: needed 8 bytes, found 3",
            path.display()
        )
    );
}

#[test]
fn parse_of_huge_length_prefix_fails_at_the_prefix_after_printing_earlier_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.mak");
    let mut bytes = three_records_bytes();
    bytes[THREE_RECORDS_THIRD_AT..THREE_RECORDS_THIRD_AT + 8].fill(0xff);
    fs::write(&path, &bytes).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(2));
    assert_eq!(
        out.stderr_line(),
        format!(
            "kafkatos3_parse: {}: record key of {} bytes announced at byte {THREE_RECORDS_THIRD_AT} runs past the end of valid data at byte {THREE_RECORDS_LEN}",
            path.display(),
            u64::MAX
        )
    );
}

#[test]
fn parse_of_bad_magic_fails_at_byte_zero_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("magic.mak");
    let mut bytes = three_records_bytes();
    bytes[..3].copy_from_slice(b"KAM");
    fs::write(&path, &bytes).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: bad magic at byte 0", path.display())), "{line}");
}

#[test]
fn parse_of_cut_gzip_stream_fails_naming_the_file_and_a_byte_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.mak.gz");
    let compressed = gzip(&three_records_bytes());
    fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: ", path.display())), "{line}");
    assert!(line.contains(" at byte "), "{line}");
}

/// A gzip member ends with a CRC-32 of its content; a file whose compressed bytes were
/// damaged in a way deflate cannot notice (a stored block) is only caught by that check,
/// which `gzip -t` does.
#[test]
fn parse_of_gzip_file_with_bad_crc_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badcrc.mak.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    std::io::Write::write_all(&mut encoder, &three_records_bytes()).unwrap();
    let mut compressed = encoder.finish().unwrap();
    let at = compressed.windows(7).position(|w| w == b"value-1").expect("stored blocks hold the bytes as they are");
    compressed[at] = b'V';
    fs::write(&path, &compressed).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "a damaged .mak.gz must not pass as valid: {out:?}");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: ", path.display())), "{line}");
}

#[test]
fn parse_of_missing_file_fails_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.mak");
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: ", path.display())), "{line}");
    assert!(line.contains("No such file or directory"), "{line}");
}

#[test]
fn parse_into_a_pipe_closed_early_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mak");
    // Far more output than a pipe buffers, so the tool is still writing when the pipe closes.
    let records: Vec<Rec> =
        (0..50_000).map(|i| rec(i, Some(b"some key"), Some(b"a value long enough to fill the pipe"))).collect();
    write_mak(&path, &header("big", 0, 0), &records);

    // `kafkatos3_parse big.mak | head -1`
    let mut child = Command::new(PARSE)
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kafkatos3_parse");
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut first).expect("read first line");
    assert_eq!(first, "File topic is big\n");
    // The reader (and so the pipe's read end) is dropped here.
    let status = wait_with_deadline(&mut child, PARSE);
    let stderr = String::from_utf8(stderr.join().unwrap()).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}

// ---------------------------------------------------------------------------------------------
// kafkatos3_parse and the original Python reader on files written by our writer
// ---------------------------------------------------------------------------------------------

/// Records with every shape a Kafka record can have: null and empty keys and values, binary,
/// non-ASCII text, an offset gap (compaction) and a value larger than the writer's buffer.
fn varied_records() -> Vec<Rec> {
    vec![
        rec(1000, Some(b"k"), Some(b"v")),
        rec(1001, None, Some(b"value with null key")),
        rec(1002, Some(b"key with null value"), None),
        rec(1003, Some(b""), Some(b"")),
        rec(1004, Some(&[0x00, 0xff, 0x0a]), Some(b"line\nbreak")),
        rec(1007, Some("cl\u{e9} \u{1f511}".as_bytes()), Some(b"after a gap")),
        rec(1008, Some(b"big"), Some(&vec![b'x'; 100_000])),
        rec(1009, Some(b"last"), Some(b"\"quoted\" \\ b\"")),
    ]
}

fn python_available() {
    let probe = Command::new("python3").args(["-c", "import kafkatos3.MessageArchiveKafka"]).output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the original Python kafkatos3 is not importable ({}): run scripts/install-deps.sh",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run python3 ({e}): run scripts/install-deps.sh"),
    }
}

#[test]
fn parse_prints_every_record_of_a_file_written_by_our_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.mak");
    let records = varied_records();
    write_mak(&path, &header("events", 4, 1000), &records);

    let out = run(PARSE, [&path]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let mut expected = header_lines("events", 4, 1000, "1479000000.0");
    for (offset, key, value) in &records {
        let (mut k, mut v) = (String::new(), String::new());
        kafkatos3::tools::parse::render_bytes(key.as_deref().unwrap_or_default(), &mut k);
        kafkatos3::tools::parse::render_bytes(value.as_deref().unwrap_or_default(), &mut v);
        expected.push_str(&record_line(*offset, &k, &v));
    }
    assert_eq!(out.stdout, expected);
    // Spot-check the rendering independently of render_bytes.
    assert!(out
        .stdout
        .contains("Processing message with offset: 1004, key: b\"\\x00\\xff\\x0a\", value: b\"line\\x0abreak\"\n"));
    assert!(out.stdout.contains("Processing message with offset: 1007, key: cl\u{e9} \u{1f511}, value: after a gap\n"));
    assert_eq!(out.stderr, "");
}

#[test]
fn parse_json_prints_one_object_per_record_in_base64_and_keeps_an_offset_range() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.mak.gz");
    let records = varied_records();
    let plain = dir.path().join("ours.mak");
    write_mak(&plain, &header("events", 4, 1000), &records);
    let mut gz = flate2::write::GzEncoder::new(fs::File::create(&path).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &fs::read(&plain).unwrap()).unwrap();
    gz.finish().unwrap();

    let out = run(PARSE, [path.as_os_str(), OsStr::new("--json"), OsStr::new("--bytes"), OsStr::new("base64")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let lines: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), records.len());
    let b64 = |bytes: &Option<Vec<u8>>| {
        base64::engine::general_purpose::STANDARD.encode(bytes.as_deref().unwrap_or_default())
    };
    for (line, (offset, key, value)) in lines.iter().zip(&records) {
        assert_eq!(line["topic"], "events");
        assert_eq!(line["partition"], 4);
        assert_eq!(line["offset"], *offset);
        assert_eq!(line["key"], b64(key), "offset {offset}");
        assert_eq!(line["value"], b64(value), "offset {offset}");
        assert_eq!(line["headers"], serde_json::json!([]));
    }

    let (first, last) = (records[1].0, records[2].0);
    let ranged = run(
        PARSE,
        [
            path.as_os_str(),
            OsStr::new("--json"),
            OsStr::new("--bytes"),
            OsStr::new("base64"),
            OsStr::new("--from-offset"),
            OsStr::new(&first.to_string()),
            OsStr::new("--to-offset"),
            OsStr::new(&last.to_string()),
        ],
    );
    let offsets: Vec<i64> = ranged
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![first, last]);

    let utf8 = run(PARSE, [path.as_os_str(), OsStr::new("--json")]);
    assert_eq!(utf8.code(), Some(1), "binary values need base64: {utf8:?}");
    assert!(utf8.stderr.contains("is not UTF-8; use --bytes base64"), "{utf8:?}");
}

#[test]
fn file_written_by_our_writer_is_read_by_the_original_python_reader() {
    python_available();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.mak");
    let records = varied_records();
    write_mak(&path, &header("events", 4, 1000), &records);

    // Records, through the repository's script: `offset<TAB>hex(key)<TAB>hex(value)`.
    let script = golden("read_with_original.py");
    let out = run("python3", [script.as_os_str(), path.as_os_str()]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let expected: String = records
        .iter()
        .map(|(offset, key, value)| {
            format!(
                "{offset}\t{}\t{}\n",
                hex(key.as_deref().unwrap_or_default()),
                hex(value.as_deref().unwrap_or_default())
            )
        })
        .collect();
    assert_eq!(out.stdout, expected);
    assert_eq!(out.stderr, "");

    // Header and last-offset field, through the original's own accessors.
    let out = run(
        "python3",
        [
            OsStr::new("-c"),
            OsStr::new(
                "import json, sys\n\
                 from kafkatos3.MessageArchiveKafka import MessageArchiveKafkaReader\n\
                 r = MessageArchiveKafkaReader(sys.argv[1])\n\
                 print(json.dumps(r.get_header().get_data(), sort_keys=True))\n\
                 print(r.get_last_offset())\n\
                 r.close()\n",
            ),
            path.as_os_str(),
        ],
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "{\"partition\": 4, \"startoffset\": 1000, \"starttime\": 1479000000.0, \"topic\": \"events\"}\n1009\n"
    );
}

// ---------------------------------------------------------------------------------------------
// kafkatos3_rotate
// ---------------------------------------------------------------------------------------------

/// A working directory with three in-progress files:
/// - `events/0`: records 5..=7, closed cleanly;
/// - `events/1`: a header and no records;
/// - `other-topic/2`: records 10 and 11 synced, then part of record 12 on disk past the write
///   position (a torn tail, as a crash between two syncs leaves it).
struct InProgress {
    _dir: tempfile::TempDir,
    root: PathBuf,
    records_0: Vec<Rec>,
    records_2: Vec<Rec>,
    /// Length of `other-topic/2`'s valid data (its write position).
    synced_len_2: u64,
}

fn inprogress_workdir() -> InProgress {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("work");
    let file = |topic: &str, partition: i32| {
        let path = root.join("inprogress").join(topic).join(partition.to_string()).join("data.mak");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    };

    let records_0 = vec![rec(5, Some(b"k5"), Some(b"v5")), rec(6, None, Some(b"v6")), rec(7, Some(b"k7"), None)];
    write_mak(&file("events", 0), &header("events", 0, 5), &records_0);

    write_mak(&file("events", 1), &header("events", 1, 100), &[]);

    let records_2 = vec![rec(10, Some(b"a"), Some(b"first")), rec(11, Some(b"b"), Some(b"second"))];
    let torn = file("other-topic", 2);
    let mut writer = MakWriter::create(&torn, &header("other-topic", 2, 10)).unwrap();
    for (offset, key, value) in &records_2 {
        writer.append(*offset, key.as_deref(), value.as_deref()).unwrap();
    }
    writer.sync().unwrap();
    let synced_len_2 = writer.len();
    // Larger than the writer's buffer, so it reaches the file, but never synced.
    writer.append(12, Some(b"c"), Some(&vec![b'z'; 200_000])).unwrap();
    drop(writer);
    let on_disk = fs::metadata(&torn).unwrap().len();
    assert!(on_disk > synced_len_2, "the test needs a torn tail: {on_disk} <= {synced_len_2}");

    InProgress { _dir: dir, root, records_0, records_2, synced_len_2 }
}

fn as_read(records: &[Rec]) -> Vec<ReadRec> {
    records
        .iter()
        .map(|(offset, key, value)| (*offset, key.clone().unwrap_or_default(), value.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn rotate_seals_files_with_records_cuts_torn_tails_and_skips_empty_files() {
    let work = inprogress_workdir();
    let root = &work.root;
    let empty_before = fs::read(root.join("inprogress/events/1/data.mak")).unwrap();

    let date_before = today_yymmdd();
    let out = run(ROTATE, [root]);
    let date_after = today_yymmdd();
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stderr, "");

    // Sealed under the original's name: <topic>-<partition>_<start>-<end>_<yymmdd>.mak.
    let sealed = |topic: &str, partition: i32, start: i64, end: i64| {
        let dir = root.join("tocompress").join(topic).join(partition.to_string());
        [&date_before, &date_after]
            .into_iter()
            .map(|date| dir.join(format!("{topic}-{partition}_{start}-{end}_{date}.mak")))
            .find(|path| path.exists())
            .unwrap_or_else(|| {
                panic!(
                    "no {topic}-{partition}_{start}-{end}_<yymmdd>.mak in {}: {:?}",
                    dir.display(),
                    fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
                )
            })
    };
    let sealed_0 = sealed("events", 0, 5, 7);
    let sealed_2 = sealed("other-topic", 2, 10, 11);

    let (header_0, records_0) = read_records(&sealed_0);
    assert_eq!(header_0, header("events", 0, 5));
    assert_eq!(records_0, as_read(&work.records_0));

    let (header_2, records_2) = read_records(&sealed_2);
    assert_eq!(header_2, header("other-topic", 2, 10));
    assert_eq!(records_2, as_read(&work.records_2), "record 12 was torn");
    assert_eq!(fs::metadata(&sealed_2).unwrap().len(), work.synced_len_2, "the torn tail is cut");

    // Sealed files leave inprogress/; the empty one stays, untouched.
    assert!(!root.join("inprogress/events/0/data.mak").exists());
    assert!(!root.join("inprogress/other-topic/2/data.mak").exists());
    assert_eq!(fs::read(root.join("inprogress/events/1/data.mak")).unwrap(), empty_before);
    assert!(!root.join("tocompress/events/1").exists());

    let stem = |path: &Path| path.file_name().unwrap().to_str().unwrap().to_owned();
    let expected = format!(
        "sealed {} -> tocompress/events/0/{} ({} bytes)\n\
         skipping events:1: no records\n\
         sealed {} -> tocompress/other-topic/2/{} ({} bytes)\n",
        root.join("inprogress/events/0/data.mak").display(),
        stem(&sealed_0),
        fs::metadata(&sealed_0).unwrap().len(),
        root.join("inprogress/other-topic/2/data.mak").display(),
        stem(&sealed_2),
        work.synced_len_2,
    );
    assert_eq!(out.stdout, expected);
}

#[test]
fn rotate_run_twice_seals_nothing_the_second_time() {
    let work = inprogress_workdir();
    let first = run(ROTATE, [&work.root]);
    assert_eq!(first.code(), Some(0), "{first:?}");
    let before = snapshot(&work.root);
    let second = run(ROTATE, [&work.root]);
    assert_eq!(second.code(), Some(0), "{second:?}");
    assert_eq!(second.stdout, "skipping events:1: no records\n");
    let mut after = snapshot(&work.root);
    // The lock file holds the pid of whichever process took the lock last.
    after.insert(PathBuf::from(".kafkatos3.lock"), before[Path::new(".kafkatos3.lock")].clone());
    assert_eq!(after, before);
}

#[test]
fn rotate_refuses_a_locked_working_directory_and_changes_nothing() {
    let work = inprogress_workdir();
    // Held by this (test) process, as a running daemon would hold it.
    let lock = kafkatos3::local::lock::lock_working_directory(&WorkDir::new(&work.root))
        .expect("take the working directory lock");
    let before = snapshot(&work.root);

    let out = run(ROTATE, [&work.root]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "");
    let line = out.stderr_line();
    assert!(line.starts_with("kafkatos3_rotate: "), "{line}");
    assert!(line.contains("locked"), "{line}");
    assert!(line.contains(&format!("(pid {})", std::process::id())), "names the holder: {line}");
    assert_eq!(snapshot(&work.root), before, "nothing may change");
    drop(lock);

    // Once released, the same directory rotates.
    let out = run(ROTATE, [&work.root]);
    assert_eq!(out.code(), Some(0), "{out:?}");
}

// ---------------------------------------------------------------------------------------------
// kafkatos3 (daemon): start-up checks that need no broker
// ---------------------------------------------------------------------------------------------

/// A valid configuration (never started: every test breaks it). Lines: [main] 1,
/// working_directory 2, [consumer] 3, kafka_bootstrap 4, kafka_consumer_group 5,
/// topic_whitelist 6, [s3] 7, s3_bucket_name 8.
fn config_text(dir: &Path) -> String {
    format!(
        "[main]\n\
         working_directory = {}\n\
         [consumer]\n\
         kafka_bootstrap = 127.0.0.1:9\n\
         kafka_consumer_group = group\n\
         topic_whitelist = events\n\
         [s3]\n\
         s3_bucket_name = bucket\n",
        dir.join("work").display()
    )
}

/// Writes `text` to `<dir>/kafkatos3.cfg` and runs the daemon on it.
fn run_daemon_with(dir: &Path, text: &str) -> (PathBuf, Run) {
    let path = dir.join("kafkatos3.cfg");
    fs::write(&path, text).unwrap();
    let out = run(DAEMON, [&path]);
    (path, out)
}

#[test]
fn daemon_unknown_key_exits_2_naming_file_line_and_nearest_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path()).replace("kafka_bootstrap =", "kafka_bootstrapp =");
    let (path, out) = run_daemon_with(dir.path(), &text);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr_line(),
        format!(
            "kafkatos3: {}:4: unknown key 'kafka_bootstrapp' in [consumer]; did you mean 'kafka_bootstrap'?",
            path.display()
        )
    );
}

#[test]
fn daemon_missing_required_key_exits_2_naming_section_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path()).replace("kafka_consumer_group = group\n", "");
    let (path, out) = run_daemon_with(dir.path(), &text);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert_eq!(
        out.stderr_line(),
        format!("kafkatos3: {}: missing required key 'kafka_consumer_group' in [consumer]", path.display())
    );
}

#[test]
fn daemon_bad_value_exits_2_naming_line_key_value_and_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path()).replace("[consumer]\n", "[consumer]\nconsumer_processes = many\n");
    let (path, out) = run_daemon_with(dir.path(), &text);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert_eq!(
        out.stderr_line(),
        format!(
            "kafkatos3: {}:4: [consumer] consumer_processes = 'many': expected a whole number >= 1",
            path.display()
        )
    );
}

#[test]
fn daemon_never_prints_the_s3_secret_key_in_config_errors() {
    const SECRET: &str = "cli-secret-value-must-not-print";
    let dir = tempfile::tempdir().unwrap();
    let base = config_text(dir.path());
    let cases = [
        // Secret without access key: incomplete credentials.
        (
            base.replace("[s3]\n", &format!("[s3]\ns3_secret_key = {SECRET}\n")),
            "s3_secret_key is set but s3_access_key is not",
        ),
        // The `=` forgotten: the whole line is malformed.
        (
            base.replace("[s3]\n", &format!("[s3]\ns3_access_key = AK\ns3_secret_key {SECRET}\n")),
            "expected '[section]', 'key = value' or 'key: value'",
        ),
        // Continued on the next line: an invalid secret value.
        (
            base.replace("[s3]\n", &format!("[s3]\ns3_access_key = AK\ns3_secret_key = {SECRET}\n  {SECRET}\n")),
            "s3_secret_key = <redacted>",
        ),
        // Valid credentials in a file that fails later.
        (
            format!("{base}s3_access_key = AK\ns3_secret_key = {SECRET}\ns3uploader_workers = 0\n"),
            "s3uploader_workers = '0'",
        ),
        // Set twice.
        (
            format!("{base}s3_access_key = AK\ns3_secret_key = {SECRET}\ns3_secret_key = {SECRET}\n"),
            "duplicate key 's3_secret_key'",
        ),
    ];
    for (text, expected) in cases {
        let (_, out) = run_daemon_with(dir.path(), &text);
        assert_eq!(out.code(), Some(2), "{text}\n{out:?}");
        let line = out.stderr_line();
        assert!(line.contains(expected), "{text}\n{line}");
        assert!(!out.stderr.contains(SECRET), "secret leaked: {line}");
        assert!(!out.stdout.contains(SECRET), "secret leaked: {}", out.stdout);
    }
}

#[test]
fn daemon_missing_config_file_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.cfg");
    let out = run(DAEMON, [&path]);
    assert_eq!(out.code(), Some(2), "{out:?}");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3: {}: cannot read config file: ", path.display())), "{line}");
}

#[test]
fn daemon_prints_its_version() {
    let out = run(DAEMON, ["--version"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("kafkatos3 {}\n", env!("CARGO_PKG_VERSION")));
}

/// Like their usage line, `--version` names the tool that was run.
#[test]
fn parse_and_rotate_print_their_own_name_and_version() {
    for (program, name) in [(PARSE, "kafkatos3_parse"), (ROTATE, "kafkatos3_rotate")] {
        let out = run(program, ["--version"]);
        assert_eq!(out.code(), Some(0), "{out:?}");
        assert_eq!(out.stdout, format!("{name} {}\n", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn every_tool_without_arguments_fails_with_usage() {
    for (program, usage) in [
        (DAEMON, "Usage: kafkatos3 [CONFIGFILE]"),
        (PARSE, "Usage: kafkatos3_parse <FILE>"),
        (ROTATE, "Usage: kafkatos3_rotate <WORKINGDIR>"),
    ] {
        let out = run(program, std::iter::empty::<&str>());
        assert_ne!(out.code(), Some(0), "{out:?}");
        assert_eq!(out.stdout, "");
        assert!(out.stderr.contains(usage), "{program}: {}", out.stderr);
    }
}
