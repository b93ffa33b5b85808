//! `kafkatos3_parse`: prints a MAK file's header and records in the original's format, or as
//! JSON Lines. Reads every codec, encrypted or not (detected by content, not by name), from a
//! local path or streamed from S3 (`s3://bucket/key`).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use mak::v2::{Record, TimestampType};
use mak::{AnyReader, Version};

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{}: {source}", path.display())]
    Open { path: std::path::PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Read { path: std::path::PathBuf, source: mak::ReadError },
    #[error("{}: {source}", path.display())]
    Layers { path: std::path::PathBuf, source: Box<mak::layers::LayerError> },
    #[error("{}: after the last record: {source}", path.display())]
    Trailer { path: std::path::PathBuf, source: io::Error },
    #[error("writing output: {0}")]
    Output(io::Error),
    #[error("{name}: record at offset {offset}: its {field} is not UTF-8; use --bytes base64")]
    NotUtf8 { name: String, offset: i64, field: &'static str },
}

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The original's lines (`Processing message with offset: ...`), exactly, for version 1
    /// files. Version 2 records print a null key or value as `None` (and text that is exactly
    /// `None` as `b"None"`), then `, timestamp: MS (TYPE)` and, when there are any,
    /// `, headers: [KEY: VALUE, ...]` in order.
    Human,
    /// One JSON object per record: topic, partition, offset, timestamp (milliseconds, `null` when
    /// not available), timestamp_type (`CreateTime`, `LogAppendTime`, `NotAvailable`), key and
    /// value (`null` when null), headers (an ordered list of `{"key", "value"}`, value `null`
    /// when null). Version 1 files carry no timestamps or headers (`null`, `NotAvailable`,
    /// `[]`) and cannot tell a null key or value from an empty one (both print as empty).
    Json(BytesAs),
}

/// How keys and values appear in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BytesAs {
    /// JSON strings; a record whose key or value is not UTF-8 is an error naming its offset.
    Utf8,
    /// Standard base64 strings.
    Base64,
}

/// Which records to print: offsets `from..=to`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Filter {
    fn admits(&self, offset: i64) -> bool {
        self.from.is_none_or(|from| offset >= from) && self.to.is_none_or(|to| offset <= to)
    }
}

/// Prints the file to `out` in the original's format; returns the number of records.
pub fn print_file(path: &Path, out: &mut impl Write) -> Result<u64, ParseError> {
    let input = File::open(path).map_err(|source| ParseError::Open { path: path.to_path_buf(), source })?;
    print_stream(&path.display().to_string(), input, Format::Human, Filter::default(), None, out)
}

/// Prints a MAK stream named `name` in the errors, whatever its codec and encryption (detected by
/// content; an encrypted one needs `decryption`); returns the number of records printed.
pub fn print_stream(
    name: &str,
    input: impl Read,
    format: Format,
    filter: Filter,
    decryption: Option<&mak::crypt::Decryption>,
    out: &mut impl Write,
) -> Result<u64, ParseError> {
    let path = std::path::PathBuf::from(name);
    let input = BufReader::with_capacity(256 * 1024, input);
    let input = mak::layers::archive_reader(input, decryption)
        .map_err(|source| ParseError::Layers { path: path.clone(), source: Box::new(source) })?;
    let read_error = |source| ParseError::Read { path: path.clone(), source };
    // No size limit even for a plain file: a truncated file still shows the records before the
    // cut, then fails naming the byte where the data ends (the reader never allocates past what
    // it has read).
    let mut reader = AnyReader::new(input).map_err(read_error)?;
    let version = reader.version();
    let (topic, partition) = (reader.topic().to_string(), reader.partition());
    if format == Format::Human {
        // The original's wording, typo included: scripts may match these lines.
        let mut topic_text = String::new();
        render_bytes(topic.as_bytes(), &mut topic_text);
        let created = reader.created_secs().map_or_else(|| "unknown".to_string(), python_float);
        writeln!(out, "File topic is {topic_text}").map_err(ParseError::Output)?;
        writeln!(out, "File partition is {partition}").map_err(ParseError::Output)?;
        writeln!(out, "Staring offset is {}", reader.start_offset()).map_err(ParseError::Output)?;
        writeln!(out, "File created at {created}").map_err(ParseError::Output)?;
    }
    let mut count = 0;
    let mut line = String::new();
    while let Some(record) = reader.next_record().map_err(read_error)? {
        if !filter.admits(record.offset) {
            continue;
        }
        match format {
            Format::Human => {
                line.clear();
                human_line(&record, version, &mut line);
                writeln!(out, "{line}").map_err(ParseError::Output)?;
            }
            Format::Json(bytes) => {
                let json = json_line(&record, &topic, partition, bytes, name)?;
                writeln!(out, "{json}").map_err(ParseError::Output)?;
            }
        }
        count += 1;
    }
    // Read the compressed stream to its end so gzip's CRC and length trailer are checked: a
    // corrupted archive must not pass as good.
    io::copy(&mut reader.into_inner(), &mut io::sink()).map_err(|source| ParseError::Trailer { path, source })?;
    Ok(count)
}

/// The original's record line; for version 2 with null shown as `None`, the timestamp, and
/// the headers when there are any (see [`Format::Human`]).
fn human_line(record: &Record<'_>, version: Version, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "Processing message with offset: {}, key: ", record.offset);
    if version == Version::V1 {
        // Version 1 records always have a key and value (null was written as empty).
        render_bytes(record.key.unwrap_or_default(), out);
        out.push_str(", value: ");
        render_bytes(record.value.unwrap_or_default(), out);
        return;
    }
    render_nullable(record.key, out);
    out.push_str(", value: ");
    render_nullable(record.value, out);
    let _ = write!(out, ", timestamp: {} ({})", record.timestamp, timestamp_type_name(record.timestamp_type));
    if !record.headers.is_empty() {
        out.push_str(", headers: [");
        for (index, (key, value)) in record.headers.enumerate() {
            if index > 0 {
                out.push_str(", ");
            }
            render_bytes(key.as_bytes(), out);
            out.push_str(": ");
            render_nullable(value, out);
        }
        out.push(']');
    }
}

/// `None` for null; bytes as [`render_bytes`] shows them, with text that is exactly `None`
/// escaped so it cannot pass for a null.
fn render_nullable(bytes: Option<&[u8]>, out: &mut String) {
    match bytes {
        None => out.push_str("None"),
        Some(b"None") => out.push_str("b\"None\""),
        Some(bytes) => render_bytes(bytes, out),
    }
}

fn timestamp_type_name(timestamp_type: TimestampType) -> &'static str {
    match timestamp_type {
        TimestampType::NotAvailable => "NotAvailable",
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// One JSON Lines object (see [`Format::Json`]).
fn json_line(
    record: &Record<'_>,
    topic: &str,
    partition: i32,
    bytes: BytesAs,
    name: &str,
) -> Result<serde_json::Value, ParseError> {
    let offset = record.offset;
    let nullable = |value: Option<&[u8]>, field| match value {
        None => Ok(serde_json::Value::Null),
        Some(value) => json_bytes(value, bytes, name, offset, field),
    };
    let headers = record
        .headers
        .map(|(key, value)| Ok(serde_json::json!({"key": key, "value": nullable(value, "header value")?})))
        .collect::<Result<Vec<_>, ParseError>>()?;
    let timestamp = match record.timestamp_type {
        TimestampType::NotAvailable => serde_json::Value::Null,
        _ => record.timestamp.into(),
    };
    Ok(serde_json::json!({
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "timestamp_type": timestamp_type_name(record.timestamp_type),
        "key": nullable(record.key, "key")?,
        "value": nullable(record.value, "value")?,
        "headers": headers,
    }))
}

fn json_bytes(
    value: &[u8],
    bytes: BytesAs,
    name: &str,
    offset: i64,
    field: &'static str,
) -> Result<serde_json::Value, ParseError> {
    use base64::Engine as _;
    match bytes {
        BytesAs::Base64 => Ok(base64::engine::general_purpose::STANDARD.encode(value).into()),
        BytesAs::Utf8 => std::str::from_utf8(value).map(|text| text.into()).map_err(|_| ParseError::NotUtf8 {
            name: name.to_string(),
            offset,
            field,
        }),
    }
}

/// A blocking reader of an S3 object's body, streamed in the chunks S3 sends (a small runtime
/// of its own fetches them), so an object of any size is printed in bounded memory.
pub struct S3Reader {
    chunks: tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    _runtime: tokio::runtime::Runtime,
}

pub fn s3_reader(
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    key: object_store::path::Path,
) -> io::Result<S3Reader> {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let (tx, chunks) = tokio::sync::mpsc::channel(4);
    runtime.spawn(async move {
        let mut body = match store.get(&key).await {
            Ok(result) => result.into_stream(),
            Err(error) => {
                let _ = tx.send(Err(io::Error::other(error))).await;
                return;
            }
        };
        while let Some(chunk) = body.next().await {
            let failed = chunk.is_err();
            if tx.send(chunk.map_err(io::Error::other)).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(S3Reader { chunks, chunk: bytes::Bytes::new(), _runtime: runtime })
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The original printed `time.mktime(...)` floats: `1479000000.0`.
fn python_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

/// Text that is printable UTF-8 is shown as is; anything else (control bytes, invalid UTF-8,
/// or text that could be mistaken for this escaped form) as `b"..."` with `\xNN` escapes, so
/// binary keys and values are unambiguous.
pub fn render_bytes(bytes: &[u8], out: &mut String) {
    use std::fmt::Write as _;
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.chars().any(char::is_control) && !text.starts_with("b\"") {
            out.push_str(text);
            return;
        }
    }
    out.push_str("b\"");
    for &byte in bytes {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(bytes: &[u8]) -> String {
        let mut s = String::new();
        render_bytes(bytes, &mut s);
        s
    }

    #[test]
    fn printable_text_is_shown_verbatim_and_binary_is_escaped() {
        assert_eq!(rendered(b"hello world"), "hello world");
        assert_eq!(rendered("h\u{e9}llo".as_bytes()), "h\u{e9}llo");
        assert_eq!(rendered(b""), "");
        assert_eq!(rendered(&[0x00, 0xff, b'a']), "b\"\\x00\\xffa\"");
        assert_eq!(rendered(b"line\nbreak"), "b\"line\\x0abreak\"");
        assert_eq!(rendered(b"b\"x\""), "b\"b\\\"x\\\"\"");
    }

    #[test]
    fn json_lines_hold_every_record_field_and_the_filter_keeps_an_offset_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.mak");
        let header = mak::Header { topic: "t".into(), partition: 2, start_offset: 10, start_time: 1.0 };
        let mut writer = mak::MakWriter::create(&path, &header).unwrap();
        for offset in 10..15 {
            writer.append(offset, Some(b"k"), Some(&[0xff, offset as u8])).unwrap();
        }
        writer.close().unwrap();
        let mut out = Vec::new();
        let filter = Filter { from: Some(11), to: Some(12) };
        let file = File::open(&path).unwrap();
        let printed = print_stream("f.mak", file, Format::Json(BytesAs::Base64), filter, None, &mut out).unwrap();
        assert_eq!(printed, 2);
        let lines: Vec<serde_json::Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"topic": "t", "partition": 2, "offset": 11, "timestamp": null, "timestamp_type": "NotAvailable", "key": "aw==", "value": "/ws=", "headers": []})
        );
        assert_eq!(lines[1]["offset"], 12);

        let error = print_stream(
            "f.mak",
            File::open(&path).unwrap(),
            Format::Json(BytesAs::Utf8),
            Filter::default(),
            None,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "f.mak: record at offset 10: its value is not UTF-8; use --bytes base64");
    }

    #[test]
    fn start_time_prints_like_python() {
        assert_eq!(python_float(1479000000.0), "1479000000.0");
        assert_eq!(python_float(1.5), "1.5");
    }

    /// A sealed version 2 file holding what version 1 loses, and its path.
    fn v2_file(dir: &std::path::Path) -> std::path::PathBuf {
        use mak::v2::{MakWriter, RecordRef};
        let path = dir.join("v2.mak");
        let header = mak::v2::Header {
            topic: "t".into(),
            partition: 1,
            start_offset: 7,
            created_ms: Some(1_479_000_000_500),
            writer: None,
        };
        let mut writer = MakWriter::create(&path, &header).unwrap();
        let headers = [("trace", Some(&b"abc"[..])), ("trace", None), ("e", Some(&b""[..]))];
        let records = [
            RecordRef {
                offset: 7,
                timestamp: 1_700_000_000_000,
                timestamp_type: TimestampType::CreateTime,
                key: None,
                value: Some(b"\x00"),
                headers: &headers,
            },
            RecordRef {
                offset: 8,
                timestamp: 42,
                timestamp_type: TimestampType::LogAppendTime,
                key: Some(b""),
                value: None,
                headers: mak::v2::NO_HEADERS,
            },
            RecordRef {
                offset: 9,
                timestamp: -1,
                timestamp_type: TimestampType::NotAvailable,
                key: Some(b"None"),
                value: Some(b"v"),
                headers: mak::v2::NO_HEADERS,
            },
        ];
        for record in &records {
            writer.append(record).unwrap();
        }
        writer.close().unwrap();
        path
    }

    #[test]
    fn version_2_human_lines_show_null_as_none_then_the_timestamp_and_headers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = v2_file(dir.path());
        let mut out = Vec::new();
        assert_eq!(print_file(&path, &mut out).unwrap(), 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "File topic is t\nFile partition is 1\nStaring offset is 7\nFile created at 1479000000.5\n\
             Processing message with offset: 7, key: None, value: b\"\\x00\", timestamp: 1700000000000 (CreateTime), headers: [trace: abc, trace: None, e: ]\n\
             Processing message with offset: 8, key: , value: None, timestamp: 42 (LogAppendTime)\n\
             Processing message with offset: 9, key: b\"None\", value: v, timestamp: -1 (NotAvailable)\n"
        );
    }

    #[test]
    fn version_2_json_lines_keep_null_timestamps_and_ordered_headers() {
        let dir = tempfile::tempdir().unwrap();
        let path = v2_file(dir.path());
        let mut out = Vec::new();
        let file = File::open(&path).unwrap();
        print_stream("v2.mak", file, Format::Json(BytesAs::Base64), Filter::default(), None, &mut out).unwrap();
        let lines: Vec<serde_json::Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            lines,
            [
                serde_json::json!({"topic": "t", "partition": 1, "offset": 7, "timestamp": 1_700_000_000_000_i64,
                    "timestamp_type": "CreateTime", "key": null, "value": "AA==",
                    "headers": [{"key": "trace", "value": "YWJj"}, {"key": "trace", "value": null}, {"key": "e", "value": ""}]}),
                serde_json::json!({"topic": "t", "partition": 1, "offset": 8, "timestamp": 42,
                    "timestamp_type": "LogAppendTime", "key": "", "value": null, "headers": []}),
                serde_json::json!({"topic": "t", "partition": 1, "offset": 9, "timestamp": null,
                    "timestamp_type": "NotAvailable", "key": "Tm9uZQ==", "value": "dg==", "headers": []}),
            ]
        );
    }
}
