//! How objects are written: `[s3]` server-side encryption and addressing, `[store]` storage
//! class and tags of the data objects.

use super::super::{Addressing, ConfigError, ObjectOptions, S3Options, ServerSideEncryption, StoreLocation};
use super::View;

pub(super) fn s3_options(view: &View) -> Result<S3Options, ConfigError> {
    let key_id = view.optional("s3_sse_kms_key_id", |v| single_token(v, "a KMS key id, alias or ARN"))?;
    let sse = match view.entry("s3_sse") {
        None => {
            if let Some(entry) = view.entry("s3_sse_kms_key_id") {
                return Err(view.invalid(
                    "s3_sse_kms_key_id",
                    entry,
                    "set only with s3_sse = aws:kms or aws:kms:dsse".into(),
                ));
            }
            None
        }
        Some(entry) => Some(match (entry.value.as_str(), key_id) {
            ("AES256" | "aes256" | "sse-s3", None) => ServerSideEncryption::S3,
            ("aws:kms", Some(key_id)) => ServerSideEncryption::Kms { key_id },
            ("aws:kms:dsse", Some(key_id)) => ServerSideEncryption::DualKms { key_id },
            ("aws:kms" | "aws:kms:dsse", None) => {
                return Err(view.invalid(
                    "s3_sse",
                    entry,
                    "aws:kms with s3_sse_kms_key_id set to the key's id, alias or ARN".into(),
                ))
            }
            ("AES256" | "aes256" | "sse-s3", Some(_)) => {
                let entry = view.entry("s3_sse_kms_key_id").expect("set");
                return Err(view.invalid(
                    "s3_sse_kms_key_id",
                    entry,
                    "unset with s3_sse = AES256 (S3's own keys)".into(),
                ));
            }
            _ => {
                return Err(view.invalid("s3_sse", entry, "AES256 (SSE-S3), aws:kms or aws:kms:dsse (SSE-KMS)".into()))
            }
        }),
    };
    let bucket_key = view.optional("s3_sse_bucket_key", |v| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("true or false".to_owned()),
    })?;
    if let (Some(entry), false) =
        (view.entry("s3_sse_bucket_key"), matches!(sse, Some(ServerSideEncryption::Kms { .. })))
    {
        return Err(view.invalid("s3_sse_bucket_key", entry, "set only with s3_sse = aws:kms".into()));
    }
    let addressing = view.optional("s3_addressing", |v| match v {
        "path" => Ok(Addressing::Path),
        "virtual" => Ok(Addressing::VirtualHosted),
        _ => Err("path (https://endpoint/bucket/key) or virtual (https://bucket.endpoint/key)".to_owned()),
    })?;
    Ok(S3Options { sse, bucket_key, addressing })
}

/// Refused where the store cannot keep them: a directory has no storage classes or tags (the
/// upload would fail), GCS has no object tags (they would be dropped without a word).
pub(super) fn object_options(view: &View, location: &StoreLocation) -> Result<ObjectOptions, ConfigError> {
    let unsupported = |key: &'static str, why: &str| match view.entry(key) {
        Some(entry) => Err(view.invalid(key, entry, format!("unset: {why}"))),
        None => Ok(()),
    };
    match location {
        StoreLocation::Local { .. } => {
            unsupported("storage_class", "a directory archive has no storage classes")?;
            unsupported("object_tags", "a directory archive has no object tags")?;
        }
        StoreLocation::Gcs { .. } => unsupported("object_tags", "Google Cloud Storage has no object tags")?,
        StoreLocation::S3 { .. } | StoreLocation::Azure { .. } => {}
    }
    let storage_class = view.optional("storage_class", |v| {
        let valid = !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        valid.then(|| v.to_owned()).ok_or_else(|| {
            "a storage class name: S3's STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, ...; \
             GCS's NEARLINE, COLDLINE, ARCHIVE; Azure's access tier Cool, Cold"
                .to_owned()
        })
    })?;
    let tags = view.optional("object_tags", tags)?.unwrap_or_default();
    Ok(ObjectOptions { storage_class, tags })
}

/// `key=value, key=value`: at most 10 tags (S3's limit), keys up to 128 characters, values up
/// to 256, neither with `,` or `=` in it.
fn tags(value: &str) -> Result<Vec<(String, String)>, String> {
    const EXPECTED: &str = "comma-separated key=value pairs, at most 10 (S3's limit), e.g. team=data, retention=7y";
    let mut tags: Vec<(String, String)> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (key, tag_value) = item.split_once('=').ok_or_else(|| format!("{EXPECTED}; '{item}' has no ="))?;
        let (key, tag_value) = (key.trim(), tag_value.trim());
        if key.is_empty() || key.len() > 128 || tag_value.len() > 256 || tag_value.contains('=') {
            return Err(format!("{EXPECTED}; '{item}' is not one (keys 1 to 128 characters, values up to 256)"));
        }
        if tags.iter().any(|(known, _)| known == key) {
            return Err(format!("{EXPECTED}; the key '{key}' is given twice"));
        }
        tags.push((key.to_owned(), tag_value.to_owned()));
    }
    if tags.len() > 10 {
        return Err(format!("{EXPECTED}; {} are given", tags.len()));
    }
    Ok(tags)
}

fn single_token(value: &str, what: &str) -> Result<String, String> {
    (!value.is_empty() && !value.contains(char::is_whitespace)).then(|| value.to_owned()).ok_or_else(|| what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_key_value_pairs_within_s3s_limits() {
        assert_eq!(
            tags(" team=data , retention = 7y,").unwrap(),
            [("team".to_owned(), "data".to_owned()), ("retention".to_owned(), "7y".to_owned())]
        );
        assert!(tags("novalue").unwrap_err().contains("'novalue' has no ="));
        assert!(tags("a=1,a=2").unwrap_err().contains("given twice"));
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(tags(&eleven.join(",")).unwrap_err().contains("11 are given"));
        assert_eq!(tags("empty=").unwrap(), [("empty".to_owned(), String::new())]);
    }
}
