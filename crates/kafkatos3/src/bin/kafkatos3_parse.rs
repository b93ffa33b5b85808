//! `kafkatos3_parse FILE`: print a MAK archive (any codec, encrypted or not, a local path or
//! `s3://bucket/key`), in the original's format or as JSON Lines.

use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use kafkatos3::parse::{print_stream, BytesAs, Filter, Format, ParseError};

#[derive(Parser)]
#[command(name = "kafkatos3_parse", version, about = "Print the header and records of a MAK file")]
struct Args {
    /// filename to parse (.mak, .mak.gz, .mak.zst, .mak.lz4, each maybe .age), or s3://bucket/key
    file: String,
    /// For .age files: an age identity file (PATH, file:PATH or env:NAME holding the key); repeatable
    #[arg(long, value_name = "SOURCE")]
    identity: Vec<String>,
    /// For .age files encrypted to a passphrase: file:PATH or env:NAME (never the passphrase itself)
    #[arg(long, value_name = "SOURCE")]
    passphrase: Option<String>,
    /// One JSON object per record (topic, partition, offset, timestamp, key, value, headers)
    #[arg(long)]
    json: bool,
    /// How keys and values appear in JSON: UTF-8 strings, or base64 for binary data
    #[arg(long, value_enum, default_value = "utf8", requires = "json")]
    bytes: Bytes,
    /// Print only records at or after this offset
    #[arg(long)]
    from_offset: Option<i64>,
    /// Print only records at or before this offset
    #[arg(long)]
    to_offset: Option<i64>,
    /// For s3:// files: endpoint, region and credentials from this kafkatos3 config file
    #[arg(long)]
    config: Option<PathBuf>,
    /// For s3:// files: S3-compatible endpoint URL
    #[arg(long)]
    endpoint: Option<String>,
    /// For s3:// files: region
    #[arg(long)]
    region: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Bytes {
    Utf8,
    Base64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let input = match open(&args) {
        Ok(input) => input,
        Err(error) => {
            eprintln!("kafkatos3_parse: {}: {error:#}", args.file);
            return ExitCode::FAILURE;
        }
    };
    let format = match (args.json, args.bytes) {
        (false, _) => Format::Human,
        (true, Bytes::Utf8) => Format::Json(BytesAs::Utf8),
        (true, Bytes::Base64) => Format::Json(BytesAs::Base64),
    };
    let filter = Filter { from: args.from_offset, to: args.to_offset };
    let decryption = match decryption(&args) {
        Ok(decryption) => decryption,
        Err(error) => {
            eprintln!("kafkatos3_parse: {error}");
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
            eprintln!("kafkatos3_parse: {}: {source} (--identity or --passphrase)", args.file);
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("kafkatos3_parse: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The identities and passphrase given, read once; None when none was given.
fn decryption(args: &Args) -> Result<Option<mak::crypt::Decryption>, mak::crypt::CryptError> {
    if args.identity.is_empty() && args.passphrase.is_none() {
        return Ok(None);
    }
    let spec = mak::crypt::DecryptionSpec {
        identities: args.identity.iter().map(|i| mak::crypt::SecretSource::identity(i)).collect::<Result<_, _>>()?,
        passphrase: args.passphrase.as_deref().map(mak::crypt::SecretSource::passphrase).transpose()?,
    };
    mak::crypt::Decryption::new(&spec).map(Some)
}

fn open(args: &Args) -> anyhow::Result<Box<dyn Read>> {
    let Some(url) = args.file.strip_prefix("s3://") else {
        return Ok(Box::new(std::fs::File::open(&args.file)?));
    };
    let (bucket, key) = url
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| anyhow::anyhow!("an S3 location is s3://bucket/key"))?;
    let config = args.config.as_deref().map(kafkatos3::config::load).transpose()?;
    let s3 = config.as_ref().map(|c| &c.s3);
    let target = kafkatos3::s3::S3Target {
        bucket,
        endpoint: args.endpoint.as_deref().or(s3.and_then(|s| s.s3_endpoint.as_deref())),
        region: args.region.as_deref().or(s3.and_then(|s| s.s3_region.as_deref())),
        credentials: s3.and_then(|s| s.credentials.as_ref()).map(|c| (c.access_key.as_str(), c.secret_key.expose())),
    };
    let store = kafkatos3::s3::connect(target)?;
    Ok(Box::new(kafkatos3::parse::s3_reader(store, key.into())?))
}
