//! Where a tool finds the archive it reads: a config file's `[store]` and `[s3]` sections, flags
//! over them, and the keys to read encrypted objects. One set of flags for `verify`, `ls` and the
//! tools to come, so that they all name an archive the same way.

use std::path::PathBuf;

use crate::archive::store::S3Access;
use crate::archive::Archive;
use crate::config::{Config, StoreLocation};

/// The archive to read (flattened into each tool's arguments).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ArchiveArgs {
    /// Take the archive's location, key prefix, endpoint, region and credentials from this config file
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where the archive is: `s3://BUCKET[/PREFIX]`, `gs://BUCKET[/PREFIX]`, `az://CONTAINER[/PREFIX]` or
    /// `file:///PATH` (overrides the config's `[store] url`)
    #[arg(long, value_name = "URL", conflicts_with = "bucket")]
    pub store: Option<String>,
    /// S3 bucket of the archive: the same as --store s3://BUCKET
    #[arg(long)]
    pub bucket: Option<String>,
    /// Key prefix of the archive (overrides the URL's and the config's; default kafkatos3 in a
    /// bucket, none in a directory)
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
    #[error("name the archive with --store URL, --bucket or --config")]
    NoArchive,
    #[error("--store {url}: expected {expected}")]
    BadStore { url: String, expected: String },
    #[error("{location}: {source}")]
    Connect { location: String, source: object_store::Error },
    #[error("{0}")]
    Keys(#[from] mak::crypt::CryptError),
}

impl SourceError {
    /// A mistake in what the user typed or wrote in the config (exit status 2, as clap's own).
    pub fn is_usage(&self) -> bool {
        matches!(self, SourceError::Config(_) | SourceError::NoArchive | SourceError::BadStore { .. })
    }
}

impl ArchiveArgs {
    /// Reads the config file (if named) and the keys, and builds the store client. Nothing is
    /// requested from the store yet.
    pub fn open(&self) -> Result<Source, SourceError> {
        let config = self.config.as_deref().map(crate::config::load).transpose()?;
        let named = match (&self.store, &self.bucket) {
            (Some(url), _) => {
                let (location, prefix) = crate::config::parse_store_url(url)
                    .map_err(|expected| SourceError::BadStore { url: url.clone(), expected })?;
                Some((location, prefix))
            }
            (None, Some(bucket)) => Some((StoreLocation::S3 { bucket: bucket.clone() }, None)),
            (None, None) => None,
        };
        let from_config = config.as_ref().map(|c| (c.store.location.clone(), Some(c.store.prefix.clone())));
        let (location, prefix) = named.or(from_config).ok_or(SourceError::NoArchive)?;
        let prefix = self.prefix.clone().or(prefix).unwrap_or_else(|| location.default_prefix().to_owned());
        let access =
            S3Access::from_flags(config.as_ref().map(|c| &c.s3), self.endpoint.as_deref(), self.region.as_deref());
        let archive = crate::archive::store::open(&location, access, &prefix)
            .map_err(|source| SourceError::Connect { location: location.to_string(), source })?;
        let decryption = super::parse::cli::decryption(&self.identity, self.passphrase.as_deref())?;
        Ok(Source { config, archive, decryption })
    }
}
