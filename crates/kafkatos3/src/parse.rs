//! `kafkatos3_parse`: prints a MAK file's header and records in the original's format. Reads
//! `.mak` and gzip-compressed files alike (detected by content, not by name).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use mak::MakReader;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{}: {source}", path.display())]
    Open { path: std::path::PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Read { path: std::path::PathBuf, source: mak::ReadError },
    #[error("{}: after the last record: {source}", path.display())]
    Trailer { path: std::path::PathBuf, source: io::Error },
    #[error("writing output: {0}")]
    Output(io::Error),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens a file as a stream of MAK bytes, decompressing gzip when the content is gzip.
pub fn open_mak(path: &Path) -> Result<(Box<dyn Read>, Option<u64>), io::Error> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let gzip = reader.fill_buf()?.starts_with(&GZIP_MAGIC);
    if gzip {
        Ok((Box::new(MultiGzDecoder::new(reader)), None))
    } else {
        Ok((Box::new(reader), Some(size)))
    }
}

/// Prints the file to `out`; returns the number of records.
pub fn print_file(path: &Path, out: &mut impl Write) -> Result<u64, ParseError> {
    let (input, _size) = open_mak(path).map_err(|source| ParseError::Open { path: path.to_path_buf(), source })?;
    let read_error = |source| ParseError::Read { path: path.to_path_buf(), source };
    // No size limit even for a plain file: a truncated file still shows the records before the
    // cut, then fails naming the byte where the data ends (the reader never allocates past what
    // it has read).
    let mut reader = MakReader::new(input).map_err(read_error)?;
    let header = reader.header().clone();
    // The original's wording, typo included: scripts may match these lines.
    let mut topic = String::new();
    render_bytes(header.topic.as_bytes(), &mut topic);
    writeln!(out, "File topic is {topic}").map_err(ParseError::Output)?;
    writeln!(out, "File partition is {}", header.partition).map_err(ParseError::Output)?;
    writeln!(out, "Staring offset is {}", header.start_offset).map_err(ParseError::Output)?;
    writeln!(out, "File created at {}", python_float(header.start_time)).map_err(ParseError::Output)?;
    let mut count = 0;
    let mut key_text = String::new();
    let mut value_text = String::new();
    while let Some(record) = reader.next_record().map_err(read_error)? {
        key_text.clear();
        value_text.clear();
        render_bytes(record.key, &mut key_text);
        render_bytes(record.value, &mut value_text);
        writeln!(out, "Processing message with offset: {}, key: {}, value: {}", record.offset, key_text, value_text)
            .map_err(ParseError::Output)?;
        count += 1;
    }
    // Read the compressed stream to its end so gzip's CRC and length trailer are checked: a
    // corrupted archive must not pass as good.
    io::copy(&mut reader.into_inner(), &mut io::sink())
        .map_err(|source| ParseError::Trailer { path: path.to_path_buf(), source })?;
    Ok(count)
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
    fn start_time_prints_like_python() {
        assert_eq!(python_float(1479000000.0), "1479000000.0");
        assert_eq!(python_float(1.5), "1.5");
    }
}
