//! Where an export writes: a store URL (`s3://bucket/prefix`, `file:///path`, `az://...`,
//! `gs://...`), reached with the archive's S3 settings (endpoint, region, credentials). Files
//! are created only where no object is (the conditional create the archive's claims use), the
//! checkpoints are overwritten whole, and `_kafkatos3_export/dataset.json` says what the
//! destination holds so that a run with another format or archive is refused before it writes.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::ExportError;
use crate::archive::store::S3Access;
use crate::archive::Archive;

/// The export's store and root.
pub struct Destination {
    /// Only its store, prefix and URLs are used: the destination is not an archive.
    at: Archive,
}

/// What became of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    /// A file was at its key: an earlier run's (a file's name says which records it holds).
    AlreadyThere,
}

/// What a destination holds, written by the first export into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    pub kafkatos3_export: u32,
    pub format: String,
    pub value_format: String,
    /// The archive exported (as a URL): checkpoints name its objects.
    pub archive: String,
}

const DATASET_KEY: &str = "_kafkatos3_export/dataset.json";

impl Destination {
    /// The destination `url` names; nothing is requested yet.
    pub fn open(url: &str, access: S3Access<'_>) -> Result<Destination, ExportError> {
        let (location, prefix) = crate::config::parse_store_url(url)
            .map_err(|expected| ExportError::Usage(format!("--to {url}: expected {expected}")))?;
        let prefix = prefix.unwrap_or_default();
        let at = crate::archive::store::open(&location, access, &prefix)
            .map_err(|source| ExportError::Store { url: url.to_string(), source })?;
        Ok(Destination { at })
    }

    /// The destination under `prefix` in `store`, called `root` (`s3://bucket`) in messages.
    pub fn in_store(store: std::sync::Arc<dyn object_store::ObjectStore>, root: &str, prefix: &str) -> Destination {
        Destination { at: Archive::new(store, root, prefix) }
    }

    /// `rel` (a key under the root) as a URL.
    pub fn url(&self, rel: &str) -> String {
        self.at.url(self.key(rel).as_ref())
    }

    /// The root as a URL.
    pub fn root_url(&self) -> String {
        self.at.url(self.at.location().prefix()).trim_end_matches('/').to_string()
    }

    fn key(&self, rel: &str) -> ObjectPath {
        self.at.location().key(rel.to_string())
    }

    /// Creates `rel` with `bytes` unless an object is there.
    pub async fn create(&self, rel: &str, bytes: Vec<u8>) -> Result<Created, ExportError> {
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.at.store().put_opts(&self.key(rel), PutPayload::from(bytes), options).await {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                Ok(Created::AlreadyThere)
            }
            Err(source) => Err(ExportError::Store { url: self.url(rel), source }),
        }
    }

    /// [`Destination::create`] for a data file: one that is there must be as large, since the
    /// same records give the same bytes; another size is a damaged file (or one another version
    /// of kafkatos3 wrote), never counted as this one.
    pub async fn create_file(&self, rel: &str, bytes: Vec<u8>) -> Result<Created, ExportError> {
        let size = bytes.len() as u64;
        let created = self.create(rel, bytes).await?;
        if created == Created::AlreadyThere {
            let head = self.at.store().head(&self.key(rel)).await;
            let there = head.map_err(|source| ExportError::Store { url: self.url(rel), source })?.size;
            if there != size {
                return Err(ExportError::Unreadable {
                    url: self.url(rel),
                    problem: format!("holds {there} bytes where these records make {size}: damaged, or written by another version of kafkatos3; delete it and run again"),
                });
            }
        }
        Ok(created)
    }

    /// The JSON document at `rel`, if there is one.
    pub async fn read_json<T: serde::de::DeserializeOwned>(&self, rel: &str) -> Result<Option<T>, ExportError> {
        let bytes = match self.at.store().get(&self.key(rel)).await {
            Ok(result) => result.bytes().await,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => Err(source),
        };
        let bytes = bytes.map_err(|source| ExportError::Store { url: self.url(rel), source })?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ExportError::Unreadable { url: self.url(rel), problem: e.to_string() })
    }

    /// Writes `value` as JSON at `rel`, replacing what is there.
    pub async fn write_json<T: Serialize>(&self, rel: &str, value: &T) -> Result<(), ExportError> {
        let json = serde_json::to_vec_pretty(value).expect("plain data");
        let put = self.at.store().put(&self.key(rel), PutPayload::from(json)).await;
        put.map(|_| ()).map_err(|source| ExportError::Store { url: self.url(rel), source })
    }

    /// Records what this destination holds, or checks that it holds the same: one format, one
    /// set of columns, one archive.
    pub async fn claim_dataset(&self, ours: &Dataset) -> Result<(), ExportError> {
        let json = serde_json::to_vec_pretty(ours).expect("plain data");
        if self.create(DATASET_KEY, json).await? == Created::New {
            return Ok(());
        }
        let unreadable = |problem: String| ExportError::Unreadable { url: self.url(DATASET_KEY), problem };
        let Some(json) = self.read_json::<serde_json::Value>(DATASET_KEY).await? else {
            return Err(unreadable("vanished while read".into()));
        };
        // The version first: a newer description may not parse as this one.
        match json.get("kafkatos3_export").and_then(serde_json::Value::as_u64) {
            Some(version) if version <= u64::from(ours.kafkatos3_export) => {}
            Some(version) => {
                return Err(ExportError::Refused(format!(
                    "{}: written by a newer kafkatos3 (export format {version}); upgrade to export into it",
                    self.url(DATASET_KEY)
                )))
            }
            None => return Err(unreadable("not a kafkatos3 export's description".into())),
        }
        let theirs: Dataset = serde_json::from_value(json).map_err(|e| unreadable(e.to_string()))?;
        let differs = |what: &str, theirs: &str, ours: &str| {
            ExportError::Refused(format!(
                "{} holds an export with {what} {theirs}, not {ours}: export into another --to, or with the same {what}",
                self.root_url()
            ))
        };
        if theirs.format != ours.format {
            return Err(differs("--format", &theirs.format, &ours.format));
        }
        if theirs.value_format != ours.value_format {
            return Err(differs("--value-format", &theirs.value_format, &ours.value_format));
        }
        if theirs.archive != ours.archive {
            return Err(differs("archive", &theirs.archive, &ours.archive));
        }
        Ok(())
    }
}
