//! `kafkatos3_parse`: prints a MAK file's header and records in the original's format, or as
//! JSON Lines. Reads every codec, encrypted or not (detected by content, not by name), from a
//! local path or streamed from S3 (`s3://bucket/key`), through the archive's one object reader
//! ([`crate::archive::object`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use mak::v2::{Record, TimestampType};
use mak::Version;

use crate::archive::{ObjectError, ObjectReader};

pub mod cli;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("{}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    /// The file or object is damaged, or could not be fetched; names it and the byte.
    #[error(transparent)]
    Object(#[from] ObjectError),
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

/// Which records to print: offsets `from..=to` and timestamps `from_ms..=to_ms`. A time bound
/// excludes records without a timestamp (version 1 files, `NotAvailable`): nothing says they
/// are in range.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl Filter {
    fn admits(&self, record: &Record<'_>) -> bool {
        let offset = record.offset;
        let in_offsets = self.from.is_none_or(|from| offset >= from) && self.to.is_none_or(|to| offset <= to);
        if self.from_ms.is_none() && self.to_ms.is_none() {
            return in_offsets;
        }
        let time =
            (record.timestamp_type != TimestampType::NotAvailable && record.timestamp >= 0).then_some(record.timestamp);
        in_offsets
            && time.is_some_and(|t| self.from_ms.is_none_or(|from| t >= from) && self.to_ms.is_none_or(|to| t <= to))
    }
}

/// Prints the file to `out` in the original's format; returns the number of records.
pub fn print_file(path: &Path, out: &mut impl Write) -> Result<u64, ParseError> {
    let input = File::open(path).map_err(|source| ParseError::Open { path: path.to_path_buf(), source })?;
    print_stream(&path.display().to_string(), input, Format::Human, Filter::default(), None, out)
}

/// Prints a MAK stream named `name` in the errors, whatever its codec and encryption (detected by
/// content; an encrypted one needs `decryption`); returns the number of records printed. A
/// truncated or damaged file still shows the records before the damage, then fails naming the
/// byte; the codec's stream is read to its end, so a corrupted archive does not pass as good.
pub fn print_stream(
    name: &str,
    input: impl Read,
    format: Format,
    filter: Filter,
    decryption: Option<&mak::crypt::Decryption>,
    out: &mut impl Write,
) -> Result<u64, ParseError> {
    let mut reader = ObjectReader::open(name, input, decryption)?;
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
    while let Some(record) = reader.next_record()? {
        if !filter.admits(&record) {
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
    reader.finish()?;
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
mod tests;
