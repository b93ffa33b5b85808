//! The command line of `kafkatos3_parse` and `kafkatos3 parse`: one set of arguments, one run.

use std::io::{BufWriter, ErrorKind, Write};
use std::path::PathBuf;

use clap::ValueEnum;

use super::{print_stream, BytesAs, Filter, Format, ParseError};
use crate::archive::store::{S3Access, S3Target};
use crate::archive::Archive;

/// Print the header and records of a MAK file (any version, codec or encryption, detected by
/// content), from a local path or s3://bucket/key.
#[derive(clap::Args, Debug)]
pub struct ParseArgs {
    /// filename to parse (.mak, .mak.gz, .mak.zst, .mak.lz4, each maybe .age), or s3://bucket/key
    pub file: String,
    /// One JSON object per record (topic, partition, offset, timestamp, key, value, headers)
    #[arg(long)]
    pub json: bool,
    /// How keys and values appear in JSON: UTF-8 strings, or base64 for binary data
    #[arg(long, value_enum, default_value = "utf8", requires = "json")]
    pub bytes: Bytes,
    /// Print only records at or after this offset
    #[arg(long)]
    pub from_offset: Option<i64>,
    /// Print only records at or before this offset
    #[arg(long)]
    pub to_offset: Option<i64>,
    /// Print only records with a timestamp at or after this time: milliseconds since the epoch,
    /// or RFC 3339 (2026-11-30T12:00:00Z). Records without a timestamp are left out.
    #[arg(long, value_parser = parse_time)]
    pub from_time: Option<i64>,
    /// Print only records with a timestamp at or before this time (as --from-time)
    #[arg(long, value_parser = parse_time)]
    pub to_time: Option<i64>,
    /// For .age files: an age identity file (PATH, file:PATH or env:NAME holding the key); repeatable
    #[arg(long, value_name = "SOURCE")]
    pub identity: Vec<String>,
    /// For .age files encrypted to a passphrase: file:PATH or env:NAME (never the passphrase itself)
    #[arg(long, value_name = "SOURCE")]
    pub passphrase: Option<String>,
    /// For s3:// files: endpoint, region and credentials from this kafkatos3 config file
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// For s3:// files: S3-compatible endpoint URL
    #[arg(long)]
    pub endpoint: Option<String>,
    /// For s3:// files: region
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Bytes {
    Utf8,
    Base64,
}

/// A time that is neither milliseconds since the epoch nor RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is neither milliseconds since the epoch nor RFC 3339 (2026-11-30T12:00:00Z)")]
pub struct BadTime {
    pub text: String,
}

/// Milliseconds since the epoch, given as such or as an RFC 3339 date-time.
pub fn parse_time(text: &str) -> Result<i64, BadTime> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || BadTime { text: text.to_string() };
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|_| bad())?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())
}

/// Why the tool stopped; one line, naming the file (printed by the binary after its name).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("{file}: {source}")]
    Config { file: String, source: Box<crate::config::ConfigError> },
    #[error("{file}: an S3 location is s3://bucket/key")]
    NotAnS3Location { file: String },
    #[error("{file}: {source}")]
    Connect { file: String, source: object_store::Error },
    #[error("{file}: starting the S3 client's runtime: {source}")]
    Runtime { file: String, source: std::io::Error },
    #[error("{0}")]
    Keys(#[from] mak::crypt::CryptError),
    #[error("{}", with_hint(.0))]
    Parse(#[from] ParseError),
}

/// A missing key says which flags give one.
fn with_hint(error: &ParseError) -> String {
    match error {
        ParseError::Object(object) if object.problem.needs_key() => format!("{error} (--identity or --passphrase)"),
        _ => error.to_string(),
    }
}

impl CliError {
    /// `kafkatos3_parse f | head` is not an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Parse(ParseError::Output(e)) if e.kind() == ErrorKind::BrokenPipe)
    }
}

/// Runs the tool: prints the records to `out`; returns the number printed.
pub fn run(args: &ParseArgs, out: &mut impl Write) -> Result<u64, CliError> {
    let format = match (args.json, args.bytes) {
        (false, _) => Format::Human,
        (true, Bytes::Utf8) => Format::Json(BytesAs::Utf8),
        (true, Bytes::Base64) => Format::Json(BytesAs::Base64),
    };
    let filter = Filter { from: args.from_offset, to: args.to_offset, from_ms: args.from_time, to_ms: args.to_time };
    let decryption = decryption(&args.identity, args.passphrase.as_deref())?;
    let mut out = BufWriter::new(out);
    let printed = match s3_location(args)? {
        None => {
            let path = std::path::Path::new(&args.file);
            let input =
                std::fs::File::open(path).map_err(|source| ParseError::Open { path: path.to_path_buf(), source })?;
            print_stream(&args.file, input, format, filter, decryption.as_ref(), &mut out)?
        }
        Some((archive, key)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|source| CliError::Runtime { file: args.file.clone(), source })?;
            let input = archive.stream(runtime.handle(), &key);
            print_stream(&args.file, input, format, filter, decryption.as_ref(), &mut out)?
        }
    };
    out.flush().map_err(ParseError::Output)?;
    Ok(printed)
}

/// The `--identity` and `--passphrase` sources given (of parse and verify), read once; None when
/// none was given.
pub fn decryption(
    identities: &[String],
    passphrase: Option<&str>,
) -> Result<Option<mak::crypt::Decryption>, mak::crypt::CryptError> {
    if identities.is_empty() && passphrase.is_none() {
        return Ok(None);
    }
    let spec = mak::crypt::DecryptionSpec {
        identities: identities.iter().map(|i| mak::crypt::SecretSource::identity(i)).collect::<Result<_, _>>()?,
        passphrase: passphrase.map(mak::crypt::SecretSource::passphrase).transpose()?,
    };
    mak::crypt::Decryption::new(&spec).map(Some)
}

/// For `s3://bucket/key`: the bucket as an archive (no prefix: the key is whole) and the key.
fn s3_location(args: &ParseArgs) -> Result<Option<(Archive, object_store::path::Path)>, CliError> {
    let Some(url) = args.file.strip_prefix("s3://") else {
        return Ok(None);
    };
    let file = || args.file.clone();
    let (bucket, key) = url
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| CliError::NotAnS3Location { file: file() })?;
    let config = args
        .config
        .as_deref()
        .map(crate::config::load)
        .transpose()
        .map_err(|source| CliError::Config { file: file(), source: Box::new(source) })?;
    let access = S3Access::from_flags(config.as_ref().map(|c| &c.s3), args.endpoint.as_deref(), args.region.as_deref());
    let target = S3Target { bucket, access };
    let archive = target.archive("").map_err(|source| CliError::Connect { file: file(), source })?;
    Ok(Some((archive, key.into())))
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_milliseconds_or_rfc_3339() {
        assert_eq!(parse_time("1764504000000"), Ok(1_764_504_000_000));
        assert_eq!(parse_time("2025-11-30T12:00:00Z"), Ok(1_764_504_000_000));
        assert_eq!(parse_time("2025-11-30T13:00:00.5+01:00"), Ok(1_764_504_000_500));
        assert!(parse_time("yesterday").unwrap_err().to_string().contains("RFC 3339"));
    }
}
