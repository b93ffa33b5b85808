//! Where a tool finds the archive it reads: a config file's `[s3]` section, flags over it, and
//! the keys to read encrypted objects. One set of flags for `verify`, `ls` and the tools to come,
//! so that they all name an archive the same way.

use std::path::PathBuf;

use crate::archive::store::S3Target;
use crate::archive::Archive;
use crate::config::Config;

/// The archive to read (flattened into each tool's arguments).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ArchiveArgs {
    /// Take bucket, key prefix, endpoint, region and credentials from this config file
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Bucket of the archive (overrides the config's s3_bucket_name)
    #[arg(long)]
    pub bucket: Option<String>,
    /// Key prefix of the archive (overrides the config's s3_key_prefix; default kafkatos3)
    #[arg(long)]
    pub prefix: Option<String>,
    /// S3-compatible endpoint URL (overrides the config's s3_endpoint)
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region (overrides the config's s3_region)
    #[arg(long)]
    pub region: Option<String>,
    /// To read .age objects: an age identity file (PATH, file:PATH or env:NAME); repeatable
    #[arg(long, value_name = "SOURCE")]
    pub identity: Vec<String>,
    /// To read .age objects encrypted to a passphrase: file:PATH or env:NAME
    #[arg(long, value_name = "SOURCE")]
    pub passphrase: Option<String>,
}

/// An archive opened from [`ArchiveArgs`].
pub struct Source {
    /// The config file, if one was named (its Kafka settings serve tools that ask Kafka).
    pub config: Option<Config>,
    pub archive: Archive,
    /// Keys for encrypted objects; None when no `--identity` or `--passphrase` was given.
    pub decryption: Option<mak::crypt::Decryption>,
}

/// Why the archive could not be opened; one line naming the file or flag at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("name the bucket with --bucket or --config")]
    NoBucket,
    #[error("s3://{bucket}: {source}")]
    Connect { bucket: String, source: object_store::Error },
    #[error("{0}")]
    Keys(#[from] mak::crypt::CryptError),
}

impl SourceError {
    /// A mistake in what the user typed or wrote in the config (exit status 2, as clap's own).
    pub fn is_usage(&self) -> bool {
        matches!(self, SourceError::Config(_) | SourceError::NoBucket)
    }
}

impl ArchiveArgs {
    /// Reads the config file (if named) and the keys, and builds the store client. Nothing is
    /// requested from the store yet.
    pub fn open(&self) -> Result<Source, SourceError> {
        let config = self.config.as_deref().map(crate::config::load).transpose()?;
        let s3 = config.as_ref().map(|c| &c.s3);
        let bucket = self.bucket.as_deref().or(s3.map(|s| s.s3_bucket_name.as_str())).ok_or(SourceError::NoBucket)?;
        let prefix = self.prefix.as_deref().or(s3.map(|s| s.s3_key_prefix.as_str())).unwrap_or("kafkatos3");
        let target = S3Target::from_flags(s3, bucket, self.endpoint.as_deref(), self.region.as_deref());
        let archive =
            target.archive(prefix).map_err(|source| SourceError::Connect { bucket: bucket.to_string(), source })?;
        let decryption = super::parse::cli::decryption(&self.identity, self.passphrase.as_deref())?;
        Ok(Source { config, archive, decryption })
    }
}
