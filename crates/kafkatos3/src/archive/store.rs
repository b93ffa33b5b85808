//! Builds the store client for an archive's location (`[store] url`): Amazon S3 and
//! S3-compatible servers from the `[s3]` section (explicit keys, or the standard AWS credential
//! chain: environment, web identity, container and instance roles, then the shared credentials
//! file), Google Cloud Storage and Azure Blob Storage with their own credential chains from the
//! environment, and a local directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{
    AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsCredential, AwsCredentialProvider, S3CopyIfNotExists,
};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, ClientOptions, CredentialProvider, ObjectStore, RetryConfig};

use super::Archive;
use crate::config::{S3Config, StoreLocation};

/// How S3 is reached: the `[s3]` settings, or a tool's flags over them.
#[derive(Debug, Clone, Copy, Default)]
pub struct S3Access<'a> {
    pub endpoint: Option<&'a str>,
    pub region: Option<&'a str>,
    /// Access key id and secret; `None`: the AWS credential chain.
    pub credentials: Option<(&'a str, &'a str)>,
    /// Server-side encryption and addressing (`[s3]`).
    pub options: Option<&'a crate::config::S3Options>,
}

impl<'a> S3Access<'a> {
    pub fn from_config(s3: &'a S3Config) -> Self {
        S3Access {
            endpoint: s3.s3_endpoint.as_deref(),
            region: s3.s3_region.as_deref(),
            credentials: s3.credentials.as_ref().map(|c| (c.access_key.as_str(), c.secret_key.expose())),
            options: Some(&s3.options),
        }
    }

    /// A tool's flags over a config file's `[s3]` (if given): the flags win, credentials come
    /// from the file or the AWS credential chain.
    pub fn from_flags(s3: Option<&'a S3Config>, endpoint: Option<&'a str>, region: Option<&'a str>) -> Self {
        let config = s3.map(S3Access::from_config).unwrap_or_default();
        S3Access {
            endpoint: endpoint.or(config.endpoint),
            region: region.or(config.region),
            credentials: config.credentials,
            options: config.options,
        }
    }
}

/// One bucket, and how to reach it.
#[derive(Debug, Clone, Copy)]
pub struct S3Target<'a> {
    pub bucket: &'a str,
    pub access: S3Access<'a>,
}

impl S3Target<'_> {
    /// The archive under `prefix` in this bucket.
    pub fn archive(self, prefix: &str) -> Result<Archive, object_store::Error> {
        Ok(Archive::new(connect(self)?, format!("s3://{}", self.bucket), prefix))
    }
}

/// The archive under `prefix` at `location`; an `s3://` location is reached as `s3` says.
pub fn open(location: &StoreLocation, s3: S3Access<'_>, prefix: &str) -> Result<Archive, object_store::Error> {
    let store: Arc<dyn ObjectStore> = match location {
        StoreLocation::S3 { bucket } => connect(S3Target { bucket, access: s3 })?,
        StoreLocation::Gcs { bucket } => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(client_options())
                .with_retry(retry())
                .build()?,
        ),
        StoreLocation::Azure { container } => Arc::new(
            MicrosoftAzureBuilder::from_env()
                .with_container_name(container)
                .with_client_options(client_options())
                .with_retry(retry())
                .build()?,
        ),
        StoreLocation::Local { root } => {
            std::fs::create_dir_all(root).map_err(|source| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: format!("creating {}: {source}", root.display()).into(),
            })?;
            // Durable before the upload counts as confirmed (and the local copy goes), as an
            // object store's answer is: file and directory entry fsynced.
            Arc::new(LocalFileSystem::new_with_prefix(root)?.with_fsync(true))
        }
    };
    Ok(Archive::new(store, location.to_string(), prefix))
}

fn client_options() -> ClientOptions {
    ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(300))
}

/// Few quick retries inside the client: the uploader owns the long backoff, so an outage is
/// reported in our log instead of hanging inside one request for minutes.
fn retry() -> RetryConfig {
    RetryConfig { backoff: BackoffConfig::default(), max_retries: 2, retry_timeout: Duration::from_secs(20) }
}

pub fn connect(target: S3Target<'_>) -> Result<Arc<AmazonS3>, object_store::Error> {
    let (options, access) = (client_options(), target.access);
    // Client options first: they carry allow_http, which the endpoint below may switch on.
    let mut builder = AmazonS3Builder::from_env().with_client_options(options).with_bucket_name(target.bucket);
    let region = access
        .region
        .map(str::to_string)
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_string());
    builder = builder.with_region(region);
    if let Some(endpoint) = access.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    builder = apply_options(builder, access.options);
    let (builder, metadata_only) = credential_chain(builder, access.credentials);
    // Objects are created with If-None-Match (conditional put is on by default); multipart
    // uploads get the same condition through a conditional server-side copy.
    let builder = builder.with_copy_if_not_exists(S3CopyIfNotExists::Multipart).with_retry(retry());
    if !metadata_only {
        return Ok(Arc::new(builder.build()?));
    }
    // object_store's instance-metadata provider, wrapped so that its failure says what else was
    // looked for: on a machine that is not in AWS "403 from 169.254.169.254" alone tells a user
    // nothing about their endpoint or their keys.
    let inner = builder.clone().build()?.credentials().clone();
    let provider = MetadataOnly { inner, what: "S3", sources: CREDENTIAL_SOURCES };
    Ok(Arc::new(builder.with_credentials(Arc::new(provider)).build()?))
}

/// The AWS credential chain of this process alone (no `[s3]` keys): the environment, web
/// identity, container and instance roles, the shared credentials file - what Amazon MSK's IAM
/// login signs with. Credentials that expire are refreshed by object_store before they do.
pub fn aws_credentials(region: &str) -> Result<AwsCredentialProvider, object_store::Error> {
    let builder = AmazonS3Builder::from_env()
        .with_client_options(client_options())
        .with_retry(retry())
        // A builder needs a bucket; its credential provider never uses it.
        .with_bucket_name("kafkatos3-credentials")
        .with_region(region);
    let (builder, metadata_only) = credential_chain(builder, None);
    let inner = builder.build()?.credentials().clone();
    if !metadata_only {
        return Ok(inner);
    }
    Ok(Arc::new(MetadataOnly { inner, what: "AWS", sources: CHAIN_SOURCES }))
}

/// Explicit keys, else what the environment names, else the shared credentials file; true when
/// only the instance metadata service is left (nothing else names credentials).
fn credential_chain(mut builder: AmazonS3Builder, explicit: Option<(&str, &str)>) -> (AmazonS3Builder, bool) {
    match explicit {
        Some((access_key, secret_key)) => {
            builder = builder.with_access_key_id(access_key).with_secret_access_key(secret_key);
        }
        None if !chain_has_credentials() => match shared_credentials_file() {
            Some((key, secret, token)) => {
                builder = builder.with_access_key_id(key).with_secret_access_key(secret);
                if let Some(token) = token {
                    builder = builder.with_token(token);
                }
            }
            None => return (builder, true),
        },
        None => {}
    }
    (builder, false)
}

/// `[s3]`'s encryption and addressing on a builder (after the endpoint, whose path style they
/// may override).
fn apply_options(mut builder: AmazonS3Builder, options: Option<&crate::config::S3Options>) -> AmazonS3Builder {
    use crate::config::{Addressing, ServerSideEncryption};
    let Some(options) = options else {
        return builder;
    };
    builder = match &options.sse {
        None => builder,
        // object_store has no method for SSE-S3, and its key enum is not exported: by name.
        Some(ServerSideEncryption::S3) => builder.with_config(
            "aws_server_side_encryption".parse::<AmazonS3ConfigKey>().expect("a key object_store names"),
            "AES256",
        ),
        Some(ServerSideEncryption::Kms { key_id }) => builder.with_sse_kms_encryption(key_id),
        Some(ServerSideEncryption::DualKms { key_id }) => builder.with_dsse_kms_encryption(key_id),
    };
    if let Some(enabled) = options.bucket_key {
        builder = builder.with_bucket_key(enabled);
    }
    match options.addressing {
        Some(Addressing::Path) => builder.with_virtual_hosted_style_request(false),
        Some(Addressing::VirtualHosted) => builder.with_virtual_hosted_style_request(true),
        None => builder,
    }
}

/// Where S3 credentials were looked for before the instance metadata service, in that order.
pub const CREDENTIAL_SOURCES: &str = "the config's [s3] s3_access_key and s3_secret_key, the environment \
     (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
     or _FULL_URI), the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile \
     AWS_PROFILE or default)";

/// [`CREDENTIAL_SOURCES`] without the config's keys: the process's own chain.
const CHAIN_SOURCES: &str =
    "the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_WEB_IDENTITY_TOKEN_FILE, \
     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or \
     ~/.aws/credentials, profile AWS_PROFILE or default)";

/// The instance metadata service as the last resort: its errors name the sources tried first.
#[derive(Debug)]
struct MetadataOnly {
    inner: AwsCredentialProvider,
    /// Whose credentials: "S3", "AWS".
    what: &'static str,
    sources: &'static str,
}

#[async_trait::async_trait]
impl CredentialProvider for MetadataOnly {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        self.inner.get_credential().await.map_err(|error| {
            let why = match error {
                object_store::Error::Generic { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            object_store::Error::Generic {
                store: self.what,
                source: format!(
                    "no {} credentials found in {}; the instance metadata service, asked last, failed: {why}",
                    self.what, self.sources
                )
                .into(),
            }
        })
    }
}

/// True when the environment names a credential source that object_store resolves itself.
fn chain_has_credentials() -> bool {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ]
    .iter()
    .any(|var| std::env::var_os(var).is_some())
}

/// Keys of the selected profile in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`
/// or `~/.aws/credentials`, profile `AWS_PROFILE` or `default`). Without one, object_store
/// falls back to the instance metadata service.
fn shared_credentials_file() -> Option<(String, String, Option<String>)> {
    let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".aws/credentials")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
    parse_credentials_profile(&text, &profile)
}

fn parse_credentials_profile(text: &str, profile: &str) -> Option<(String, String, Option<String>)> {
    let (mut in_profile, mut key, mut secret, mut token) = (false, None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if !in_profile {
            continue;
        }
        let value = Some(value.trim().to_string());
        match name.trim() {
            "aws_access_key_id" => key = value,
            "aws_secret_access_key" => secret = value,
            "aws_session_token" => token = value,
            _ => {}
        }
    }
    Some((key?, secret?, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_any_credentials_the_error_names_every_source_tried_before_instance_metadata() {
        // What connect builds when nothing names credentials, with the metadata service at a
        // port nothing listens on (as off AWS): the first request fails at the credentials.
        let builder = AmazonS3Builder::new()
            .with_bucket_name("b")
            .with_region("us-east-1")
            .with_endpoint("http://127.0.0.1:1")
            .with_allow_http(true)
            .with_metadata_endpoint("http://127.0.0.1:1")
            .with_retry(RetryConfig { max_retries: 0, ..RetryConfig::default() });
        let inner = builder.clone().build().unwrap().credentials().clone();
        let provider = MetadataOnly { inner, what: "S3", sources: CREDENTIAL_SOURCES };
        let store = builder.with_credentials(Arc::new(provider)).build().unwrap();
        let error = object_store::ObjectStoreExt::head(&store, &"k".into()).await.unwrap_err().to_string();
        assert!(error.contains("no S3 credentials found in the config's [s3] s3_access_key"), "{error}");
        for source in ["AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE", "~/.aws/credentials", "instance metadata"] {
            assert!(error.contains(source), "{source} missing from: {error}");
        }
    }

    #[test]
    fn credentials_file_profile_is_selected_by_name() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n[other]\naws_access_key_id=C\naws_secret_access_key=D\naws_session_token=T\n";
        assert_eq!(parse_credentials_profile(text, "default"), Some(("A".into(), "B".into(), None)));
        assert_eq!(parse_credentials_profile(text, "other"), Some(("C".into(), "D".into(), Some("T".into()))));
        assert_eq!(parse_credentials_profile(text, "missing"), None);
    }
}
