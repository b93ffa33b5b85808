//! The command line of `kafkatos3_parse` and `kafkatos3 parse`: one set of arguments, one run.

use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::{print_stream, BytesAs, Filter, Format, ParseError};

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

/// Milliseconds since the epoch, given as such or as an RFC 3339 date-time.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("'{text}' is neither milliseconds since the epoch nor RFC 3339 (2026-11-30T12:00:00Z)"))?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).map_err(|_| format!("'{text}' is out of range"))
}

/// Runs the tool: prints to stdout, one-line errors to stderr naming the file.
pub fn run(args: ParseArgs, tool: &str) -> ExitCode {
    let input = match open(&args) {
        Ok(input) => input,
        Err(error) => {
            eprintln!("{tool}: {}: {error:#}", args.file);
            return ExitCode::FAILURE;
        }
    };
    let format = match (args.json, args.bytes) {
        (false, _) => Format::Human,
        (true, Bytes::Utf8) => Format::Json(BytesAs::Utf8),
        (true, Bytes::Base64) => Format::Json(BytesAs::Base64),
    };
    let filter = Filter { from: args.from_offset, to: args.to_offset, from_ms: args.from_time, to_ms: args.to_time };
    let decryption = match decryption(&args.identity, args.passphrase.as_deref()) {
        Ok(decryption) => decryption,
        Err(error) => {
            eprintln!("{tool}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let result = print_stream(&args.file, input, format, filter, decryption.as_ref(), &mut out)
        .and_then(|_| out.flush().map_err(ParseError::Output));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `kafkatos3_parse f | head` is not an error.
        Err(ParseError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(ParseError::Layers { ref source, .. }) if matches!(**source, mak::layers::LayerError::NeedsDecryption) => {
            eprintln!("{tool}: {}: {source} (--identity or --passphrase)", args.file);
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{tool}: {error}");
            ExitCode::FAILURE
        }
    }
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

fn open(args: &ParseArgs) -> anyhow::Result<Box<dyn Read>> {
    let Some(url) = args.file.strip_prefix("s3://") else {
        return Ok(Box::new(std::fs::File::open(&args.file)?));
    };
    let (bucket, key) = url
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| anyhow::anyhow!("an S3 location is s3://bucket/key"))?;
    let config = args.config.as_deref().map(crate::config::load).transpose()?;
    let s3 = config.as_ref().map(|c| &c.s3);
    let target = crate::archive::store::S3Target {
        bucket,
        endpoint: args.endpoint.as_deref().or(s3.and_then(|s| s.s3_endpoint.as_deref())),
        region: args.region.as_deref().or(s3.and_then(|s| s.s3_region.as_deref())),
        credentials: s3.and_then(|s| s.credentials.as_ref()).map(|c| (c.access_key.as_str(), c.secret_key.expose())),
    };
    let store = crate::archive::store::connect(target)?;
    Ok(Box::new(super::s3_reader(store, key.into())?))
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_milliseconds_or_rfc_3339() {
        assert_eq!(parse_time("1764504000000"), Ok(1_764_504_000_000));
        assert_eq!(parse_time("2025-11-30T12:00:00Z"), Ok(1_764_504_000_000));
        assert_eq!(parse_time("2025-11-30T13:00:00.5+01:00"), Ok(1_764_504_000_500));
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
