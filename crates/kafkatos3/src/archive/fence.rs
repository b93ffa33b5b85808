//! Storing a local file as an archived object, the fence included: the data object is written
//! first (one PUT, or a multipart upload above the threshold), whatever is at its key - only a
//! claim makes it part of the archive - then its claim is created only if the key is free
//! (`If-None-Match: *`). "Claim exists" is resolved by reading it: naming our very object means
//! an earlier attempt of ours (or a twin) succeeded; naming another object means another
//! instance archived the partition from this offset, and our object is deleted (no claim can
//! ever name it).

use std::path::{Path, PathBuf};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::{Archive, ArchiveError, Claim, ClaimProblem};
use crate::names::SealedName;

/// `wait_for_capacity` waits for fewer parts in flight than this, and the write after it may
/// start one more: at most 2 in flight and 1 being filled, the budget's three parts per upload.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    #[error("upload of {url} failed: {source}")]
    Store { url: String, source: object_store::Error },
    #[error("upload of {}: {source}", path.display())]
    Local { path: PathBuf, source: std::io::Error },
    /// Claims are only ever written by kafkatos3, never changed or deleted: anything else at a
    /// claim key is someone else's work on this bucket, reported and never overwritten.
    #[error("upload of {url}: the claim key is taken by something that is not this partition's claim ({problem}); left alone")]
    Foreign { url: String, problem: ClaimProblem },
}

impl UploadError {
    fn from_archive(error: ArchiveError) -> UploadError {
        match error {
            ArchiveError::Store { url, source } | ArchiveError::List { url, source } => {
                UploadError::Store { url, source }
            }
            ArchiveError::Claim { url, problem } => UploadError::Foreign { url, problem },
        }
    }
}

/// What became of an upload.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// The object was written with this many bytes and claimed.
    Created(u64),
    /// The claim already named this very object (an earlier attempt).
    AlreadyThere,
    /// The claim names another object from the same offset: another instance archived this
    /// part of the partition. Our object was deleted.
    Conflict(Claim),
}

/// How files are sent: whole, or in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutLimits {
    /// Files at least this large are sent in parts; smaller ones are read whole into memory,
    /// so it is at most the worker's share of the memory budget.
    pub multipart_threshold: u64,
    /// The part size (see [`crate::config::budget::MemoryBudget::part_bytes`]).
    pub part_bytes: usize,
}

/// One local file to store, and where.
pub struct Upload<'a> {
    pub archive: &'a Archive,
    pub name: &'a SealedName,
    pub path: &'a Path,
    /// How the file is stored (`.mak.zst`...): part of the object's name.
    pub suffix: &'a str,
    pub limits: PutLimits,
}

impl Upload<'_> {
    /// The data object's key.
    pub fn object_key(&self) -> ObjectPath {
        self.archive.location().object_key(self.name, self.suffix)
    }

    /// Writes the data object, then claims it unless the claim is taken, and tells what the
    /// claim holds.
    pub async fn store(&self) -> Result<Stored, UploadError> {
        let object = self.object_key();
        let size = self.overwrite(&object).await?;
        let claim = Claim::new(self.name, self.suffix);
        let claim_key = self.archive.location().claim_key(&self.name.tp, self.name.start);
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.archive.store().put_opts(&claim_key, PutPayload::from(claim.to_bytes()), options).await {
            Ok(_) => Ok(Stored::Created(size)),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                self.existing(&claim_key, &claim, &object).await
            }
            Err(source) => Err(self.store_error(&claim_key, source)),
        }
    }

    /// Writes the file to `key` whatever is there: a data object (only its claim counts), or a
    /// file adopted from the original under the name it would have given it.
    pub async fn overwrite(&self, key: &ObjectPath) -> Result<u64, UploadError> {
        let mut handle = tokio::fs::File::open(self.path).await.map_err(|e| self.local_error(e))?;
        let size = handle.metadata().await.map_err(|e| self.local_error(e))?.len();
        if size >= self.limits.multipart_threshold {
            self.put_in_parts(key, handle).await?;
            return Ok(size);
        }
        let mut body = Vec::with_capacity(size as usize);
        handle.read_to_end(&mut body).await.map_err(|e| self.local_error(e))?;
        let (attributes, tags) = self.archive.data_put_options();
        let options = PutOptions { attributes, tags, ..Default::default() };
        let put = self.archive.store().put_opts(key, PutPayload::from(body), options).await;
        put.map_err(|e| self.store_error(key, e))?;
        Ok(size)
    }

    /// Judges the claim that holds our claim key.
    async fn existing(&self, key: &ObjectPath, ours: &Claim, object: &ObjectPath) -> Result<Stored, UploadError> {
        let foreign = |problem| UploadError::Foreign { url: self.archive.url(key.as_ref()), problem };
        let theirs = match self.archive.read_claim(key).await.map_err(UploadError::from_archive)? {
            Some(claim) => claim,
            None => return Err(foreign(ClaimProblem::Disappeared)),
        };
        theirs.check_key(&self.name.tp, self.name.start).map_err(foreign)?;
        if theirs.object == ours.object {
            return Ok(Stored::AlreadyThere);
        }
        if let Err(source) = self.archive.store().delete(object).await {
            tracing::warn!(key = %object, error = %source, "deleting our unclaimed object failed; verify lists it as unclaimed");
        }
        Ok(Stored::Conflict(theirs))
    }

    async fn put_in_parts(&self, key: &ObjectPath, mut handle: tokio::fs::File) -> Result<(), UploadError> {
        let (attributes, tags) = self.archive.data_put_options();
        let options = PutMultipartOptions { attributes, tags, ..Default::default() };
        let upload =
            self.archive.store().put_multipart_opts(key, options).await.map_err(|e| self.store_error(key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.limits.part_bytes);
        // The writer assembles the parts: reading in small pieces adds no part-sized copy.
        let mut chunk = vec![0u8; crate::config::budget::UPLOAD_READ_BYTES];
        loop {
            let read = match handle.read(&mut chunk).await {
                Ok(0) => break,
                Ok(read) => read,
                Err(source) => {
                    let _ = writer.abort().await;
                    return Err(self.local_error(source));
                }
            };
            if let Err(source) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(self.store_error(key, source));
            }
            writer.write(&chunk[..read]);
        }
        writer.finish().await.map(|_| ()).map_err(|e| self.store_error(key, e))
    }

    fn store_error(&self, key: &ObjectPath, source: object_store::Error) -> UploadError {
        UploadError::Store { url: self.archive.url(key.as_ref()), source }
    }

    fn local_error(&self, source: std::io::Error) -> UploadError {
        UploadError::Local { path: self.path.to_path_buf(), source }
    }
}

/// Where [`Archive::refuses_overwrite`] probes: not a partition folder, so no listing sees it.
const PROBE_KEY: &str = "_kafkatos3/probe/conditional-create";

impl Archive {
    /// True when the store refuses to create an object where one exists: the fence's premise
    /// (`If-None-Match: *` on S3 and Azure, a generation precondition on GCS, create-new on a
    /// local file system). Some S3-compatible servers ignore the condition and overwrite; on such
    /// a store two instances could both claim an offset, so the daemon must not run on it. One
    /// small object is created (if it is not there from an earlier probe) and created again:
    /// the second must be refused.
    pub async fn refuses_overwrite(&self) -> Result<bool, ArchiveError> {
        let key = self.location().key(PROBE_KEY.to_string());
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        let body = || PutPayload::from_static(b"kafkatos3 checks that the store refuses to overwrite this\n");
        for attempt in 0..2 {
            match self.store().put_opts(&key, body(), create.clone()).await {
                Ok(_) if attempt == 0 => continue,
                Ok(_) => return Ok(false),
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                    return Ok(true)
                }
                Err(object_store::Error::NotImplemented { .. }) => return Ok(false),
                Err(source) => return Err(self.store_error(&key, source)),
            }
        }
        unreachable!("the second attempt returns")
    }
}

#[cfg(test)]
mod probe_tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_store_that_refuses_to_overwrite_passes_the_probe_every_time() {
        for store in [
            Arc::new(object_store::memory::InMemory::new()) as Arc<dyn object_store::ObjectStore>,
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(tempfile::tempdir().unwrap().keep()).unwrap(),
            ),
        ] {
            let archive = Archive::new(store, "test://", "archive");
            assert!(archive.refuses_overwrite().await.unwrap(), "first probe");
            assert!(archive.refuses_overwrite().await.unwrap(), "the probe object left by the first");
        }
    }

    #[tokio::test]
    async fn a_store_that_ignores_if_none_match_fails_the_probe() {
        let store = crate::archive::testing::FaultyStore::new(Arc::new(object_store::memory::InMemory::new()));
        store.ignore_create_mode();
        let archive = Archive::new(store, "test://", "archive");
        assert!(!archive.refuses_overwrite().await.unwrap());
    }
}
