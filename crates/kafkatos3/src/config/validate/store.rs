//! Where the archive is: `[store] url`, or the original's `[s3] s3_bucket_name` with
//! `s3_key_prefix`. Exactly one of the two names it.

use std::path::PathBuf;

use super::super::values::{bucket_name, key_prefix};
use super::super::{ConfigError, StoreConfig, StoreLocation};
use super::View;

pub(super) const STORE_KEYS: &[&str] = &["url", "storage_class", "object_tags"];

pub(super) fn store(store: &View, s3: &View) -> Result<StoreConfig, ConfigError> {
    let url = store.optional("url", store_url)?;
    let bucket = s3.optional("s3_bucket_name", bucket_name)?;
    // Empty is a prefix too (the whole bucket), not "unset".
    let prefix = match s3.entry("s3_key_prefix") {
        Some(entry) => Some(key_prefix(&entry.value).map_err(|expected| s3.invalid("s3_key_prefix", entry, expected))?),
        None => None,
    };
    let line = |view: &View, key| view.entry(key).map_or(0, |e| e.line);
    match (url, bucket) {
        (Some(_), Some(_)) => Err(ConfigError::ArchiveNamedTwice {
            path: store.path.to_owned(),
            line: line(store, "url"),
            other: "s3_bucket_name",
            other_line: line(s3, "s3_bucket_name"),
        }),
        (Some((_, Some(_))), None) if prefix.is_some() => Err(ConfigError::ArchiveNamedTwice {
            path: store.path.to_owned(),
            line: line(store, "url"),
            other: "s3_key_prefix",
            other_line: line(s3, "s3_key_prefix"),
        }),
        (Some((location, url_prefix)), None) => {
            let prefix = url_prefix.or(prefix).unwrap_or_else(|| location.default_prefix().to_owned());
            let objects = super::objects::object_options(store, &location)?;
            Ok(StoreConfig { location, prefix, objects })
        }
        (None, Some(bucket)) => {
            let location = StoreLocation::S3 { bucket };
            let prefix = prefix.unwrap_or_else(|| location.default_prefix().to_owned());
            let objects = super::objects::object_options(store, &location)?;
            Ok(StoreConfig { location, prefix, objects })
        }
        (None, None) => Err(ConfigError::NoArchive { path: store.path.to_owned() }),
    }
}

/// `s3://BUCKET[/PREFIX]`, `gs://BUCKET[/PREFIX]`, `az://CONTAINER[/PREFIX]` or `file:///PATH`: the
/// location, and the key prefix a bucket URL names after the bucket.
pub(in crate::config) fn store_url(value: &str) -> Result<(StoreLocation, Option<String>), String> {
    const EXPECTED: &str = "s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX], az://CONTAINER[/PREFIX] or file:///PATH";
    let Some((scheme, rest)) = value.split_once("://") else {
        return Err(EXPECTED.to_owned());
    };
    if scheme.eq_ignore_ascii_case("file") {
        // file:///var/archive: an absolute path after the empty host.
        if !rest.starts_with('/') || rest.len() < 2 || rest.contains('\n') {
            return Err(format!("{EXPECTED} (a file URL names an absolute path: file:///var/lib/archive)"));
        }
        return Ok((StoreLocation::Local { root: PathBuf::from(rest.trim_end_matches('/')) }, None));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    let prefix = (!prefix.is_empty()).then(|| key_prefix(prefix)).transpose()?;
    let location = match scheme.to_ascii_lowercase().as_str() {
        "s3" | "s3a" => StoreLocation::S3 { bucket: bucket_name(bucket)? },
        "gs" => StoreLocation::Gcs { bucket: bucket_name(bucket).map_err(|_| "a GCS bucket name".to_owned())? },
        "az" | "azure" => StoreLocation::Azure {
            container: container_name(bucket).ok_or("an Azure container name: 3 to 63 of a-z 0-9 -")?,
        },
        _ => return Err(EXPECTED.to_owned()),
    };
    Ok((location, prefix))
}

fn container_name(name: &str) -> Option<String> {
    let valid = (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    valid.then(|| name.to_owned())
}
