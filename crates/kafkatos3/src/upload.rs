//! The upload stage: `tos3/*.mak.gz` -> one S3 object per file (keys: [`crate::archive`]),
//! `s3uploader_workers` at a time across partitions, one at a time and oldest first within a
//! partition. A confirmed upload goes to the ledger, which decides when the local file may go
//! and what Kafka may be told.
//!
//! Every object is created conditionally (`If-None-Match: *`; above the multipart threshold
//! the parts are assembled under `_incoming/` and copied to the key with the same condition).
//! "Already exists" is resolved by reading the existing object's header: the same offsets mean
//! an earlier attempt of ours (or a twin) succeeded; other offsets mean another instance
//! archived the partition from here, and this one gives way (see [`give_way`]).
//!
//! Failures (S3 unreachable, bucket missing, credentials refused) leave the file in `tos3/` and
//! retry it with exponential backoff; the error names bucket and key.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::archive::{self, Location, ObjectHeader};
use crate::durable;
use crate::layout::{SealedFile, SealedName, Stage};
use crate::pipeline::Pipeline;
use crate::shared::Resync;

const MULTIPART_CHUNK: usize = 16 * 1024 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("upload of s3://{bucket}/{key} failed: {source}")]
    Store { bucket: String, key: String, source: object_store::Error },
    #[error("upload of {}: {source}", path.display())]
    Local { path: PathBuf, source: std::io::Error },
    #[error("upload of s3://{bucket}/{key}: the key is taken by an object that is not this partition's ({problem}); left alone")]
    Foreign { bucket: String, key: String, problem: String },
}

/// What became of an upload.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// The object was created with this many bytes.
    Created(u64),
    /// An object with the same partition and offsets was there already (an earlier attempt).
    AlreadyThere,
    /// The key holds the same partition from the same offset but up to another last offset:
    /// another instance archived this part of the partition.
    Conflict(ObjectHeader),
}

/// One file to store, and where.
pub struct Upload<'a> {
    pub store: &'a dyn ObjectStore,
    pub bucket: &'a str,
    pub at: &'a Location,
    pub name: &'a SealedName,
    pub path: &'a Path,
    pub multipart_threshold: u64,
}

impl Upload<'_> {
    /// Creates the object of `name` unless its key is taken, and tells what the key holds.
    pub async fn store(&self) -> Result<Stored, UploadError> {
        let key = self.at.object_key(&self.name.tp, self.name.start);
        let mut handle = tokio::fs::File::open(self.path).await.map_err(|e| self.local_error(e))?;
        let size = handle.metadata().await.map_err(|e| self.local_error(e))?.len();
        let created = if size < self.multipart_threshold {
            let mut body = Vec::with_capacity(size as usize);
            handle.read_to_end(&mut body).await.map_err(|e| self.local_error(e))?;
            let options = PutOptions { mode: PutMode::Create, ..Default::default() };
            self.store.put_opts(&key, PutPayload::from(body), options).await.map(|_| ())
        } else {
            let staging = self.at.staging_key(&self.name.tp, self.name.start);
            self.put_in_parts(&staging, handle).await?;
            let copied = self.store.copy_if_not_exists(&staging, &key).await;
            // Best effort: a leftover is expired by the lifecycle rule on _incoming/.
            let _ = self.store.delete(&staging).await;
            copied
        };
        match created {
            Ok(()) => Ok(Stored::Created(size)),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                self.existing(&key).await
            }
            Err(source) => Err(self.store_error(&key, source)),
        }
    }

    /// Writes the file to `key` whatever is there (files adopted from the original only).
    pub async fn overwrite(&self, key: &ObjectPath) -> Result<u64, UploadError> {
        let mut handle = tokio::fs::File::open(self.path).await.map_err(|e| self.local_error(e))?;
        let size = handle.metadata().await.map_err(|e| self.local_error(e))?.len();
        if size >= self.multipart_threshold {
            self.put_in_parts(key, handle).await?;
            return Ok(size);
        }
        let mut body = Vec::with_capacity(size as usize);
        handle.read_to_end(&mut body).await.map_err(|e| self.local_error(e))?;
        self.store.put(key, PutPayload::from(body)).await.map_err(|e| self.store_error(key, e))?;
        Ok(size)
    }

    /// Judges the object that holds our key.
    async fn existing(&self, key: &ObjectPath) -> Result<Stored, UploadError> {
        let foreign =
            |problem: String| UploadError::Foreign { bucket: self.bucket.to_string(), key: key.to_string(), problem };
        let header = match archive::read_header(self.store, key).await {
            Ok(Some(header)) => header,
            // Deleted between the refusal and the read: not ours to decide, try again later.
            Ok(None) => return Err(foreign("it disappeared after refusing our write".into())),
            Err(archive::ArchiveError::Store { source, .. }) => return Err(self.store_error(key, source)),
            Err(archive::ArchiveError::Unreadable { problem, .. }) => return Err(foreign(problem)),
        };
        if header.tp != self.name.tp || header.start != self.name.start {
            return Err(foreign(format!("it holds {} from offset {}", header.tp, header.start)));
        }
        if header.end == self.name.end {
            Ok(Stored::AlreadyThere)
        } else {
            Ok(Stored::Conflict(header))
        }
    }

    async fn put_in_parts(&self, staging: &ObjectPath, mut handle: tokio::fs::File) -> Result<(), UploadError> {
        let upload = self.store.put_multipart(staging).await.map_err(|e| self.store_error(staging, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
        let mut chunk = vec![0u8; MULTIPART_CHUNK];
        loop {
            let read = match handle.read(&mut chunk).await {
                Ok(0) => break,
                Ok(read) => read,
                Err(source) => {
                    let _ = writer.abort().await;
                    return Err(self.local_error(source));
                }
            };
            if let Err(source) = writer.wait_for_capacity(2).await {
                let _ = writer.abort().await;
                return Err(self.store_error(staging, source));
            }
            writer.write(&chunk[..read]);
        }
        writer.finish().await.map(|_| ()).map_err(|e| self.store_error(staging, e))
    }

    fn store_error(&self, key: &ObjectPath, source: object_store::Error) -> UploadError {
        UploadError::Store { bucket: self.bucket.to_string(), key: key.to_string(), source }
    }

    fn local_error(&self, source: std::io::Error) -> UploadError {
        UploadError::Local { path: self.path.to_path_buf(), source }
    }
}

#[derive(Debug, Default)]
struct Retry {
    attempts: u32,
    not_before: Option<Instant>,
}

/// Runs the dispatcher until the pipeline's stages are stopped. In-flight uploads are finished
/// or abandoned at that point; their files stay in `tos3/` for the next run.
pub async fn run(store: Arc<dyn ObjectStore>, pipeline: Arc<Pipeline>) {
    let workers = Arc::new(Semaphore::new(pipeline.config.s3.s3uploader_workers));
    let in_flight: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    let retries: Arc<Mutex<HashMap<PathBuf, Retry>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut warned_unlisted = HashSet::new();
    while !pipeline.stages_stopped() {
        let now = Instant::now();
        let mut next_wake = now + pipeline.config.s3.s3upload_check_interval;
        let files = match pipeline.work.list_sealed(Stage::ToS3) {
            Ok(files) => files,
            Err(error) => {
                tracing::error!(%error, "scanning tos3");
                Vec::new()
            }
        };
        for file in files {
            let legacy = pipeline.legacy.contains(&file.name);
            if !pipeline.config.s3.topic_whitelist.iter().any(|t| t == &file.name.tp.topic) {
                if warned_unlisted.insert(file.name.tp.topic.clone()) {
                    tracing::warn!(topic = %file.name.tp.topic, "files of a topic missing from [s3] topic_whitelist stay in tos3");
                }
                continue;
            }
            // Only the owner of a partition uploads its files, and only those its ledger tracks
            // as waiting: the owner alone commits, and anything else (a former owner's leftovers,
            // a file already confirmed) would be uploaded twice.
            if !legacy && pipeline.ledger.is_confirmed(&file.name) {
                if let Err(error) = release_confirmed(&pipeline, &file.name) {
                    tracing::error!(%error, file = %file.name.stem(), "releasing an uploaded file failed; retried");
                }
                continue;
            }
            if !legacy && !pipeline.ledger.awaits_upload(&file.name) {
                continue;
            }
            if let Some(not_before) =
                retries.lock().unwrap_or_else(|p| p.into_inner()).get(&file.path).and_then(|r| r.not_before)
            {
                if not_before > now {
                    next_wake = next_wake.min(not_before);
                    continue;
                }
            }
            if !in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(file.path.clone()) {
                continue;
            }
            // All workers busy: the next finishing upload wakes this loop, which rescans.
            let Ok(permit) = workers.clone().try_acquire_owned() else {
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&file.path);
                break;
            };
            let (store, pipeline, in_flight, retries) =
                (store.clone(), pipeline.clone(), in_flight.clone(), retries.clone());
            tasks.spawn(async move {
                let _permit = permit;
                let outcome = upload_and_release(store.as_ref(), &pipeline, &file, legacy).await;
                let mut retries = retries.lock().unwrap_or_else(|p| p.into_inner());
                match outcome {
                    Ok(()) => {
                        retries.remove(&file.path);
                    }
                    Err(error) => {
                        let retry = retries.entry(file.path.clone()).or_default();
                        retry.attempts += 1;
                        let backoff = Duration::from_secs(1 << retry.attempts.min(6)).min(MAX_BACKOFF);
                        retry.not_before = Some(Instant::now() + backoff);
                        tracing::error!(%error, attempt = retry.attempts, retry_in_s = backoff.as_secs(), "upload failed; file kept in tos3");
                    }
                }
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&file.path);
                pipeline.upload_wake.notify_one();
            });
        }
        while tasks.try_join_next().is_some() {}
        let sleep = next_wake.saturating_duration_since(Instant::now()).max(Duration::from_millis(50));
        tokio::select! {
            _ = pipeline.upload_wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
    // Uploads in flight at the deadline are cut off: their files stay and are retried next run.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

async fn upload_and_release(
    store: &dyn ObjectStore,
    pipeline: &Pipeline,
    file: &SealedFile,
    legacy: bool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let started = Instant::now();
    let s3 = &pipeline.config.s3;
    let upload = Upload {
        store,
        bucket: &s3.s3_bucket_name,
        at: &pipeline.s3.at,
        name: &file.name,
        path: &file.path,
        multipart_threshold: s3.multipart_threshold_bytes,
    };
    if legacy {
        // The original committed before uploading: its files go up unconditionally, under the
        // names it would have given them.
        let key = pipeline.s3.at.original_key(&file.name);
        let size = upload.overwrite(&key).await?;
        tracing::info!(key = %key, bytes = size, ms = started.elapsed().as_millis() as u64, "uploaded");
        pipeline.legacy.uploaded(&file.name)?;
        pipeline.remove_sealed(&file.path)?;
        return Ok(());
    }
    let key = pipeline.s3.at.object_key(&file.name.tp, file.name.start);
    let confirmed = confirm_base(store, pipeline, file).await.map_err(|error| match error {
        archive::ArchiveError::Store { key, source } => {
            UploadError::Store { bucket: s3.s3_bucket_name.clone(), key, source }
        }
        archive::ArchiveError::Unreadable { key, problem } => {
            UploadError::Foreign { bucket: s3.s3_bucket_name.clone(), key, problem }
        }
    })?;
    if !confirmed {
        return Ok(());
    }
    match upload.store().await? {
        Stored::Created(size) => {
            tracing::info!(key = %key, bytes = size, ms = started.elapsed().as_millis() as u64, "uploaded")
        }
        Stored::AlreadyThere => {
            tracing::info!(key = %key, "already in S3 with the same offsets (an earlier attempt); counted as uploaded")
        }
        Stored::Conflict(other) => {
            give_way(pipeline, file, &key, &other)?;
            return Ok(());
        }
    }
    release_confirmed(pipeline, &file.name)?;
    Ok(())
}

/// A partition started without knowing where its archive ends (S3 was unreachable and the group
/// had no offset) asks S3 before its first upload: if the archive goes on elsewhere, the
/// partition resyncs to where it ends instead of starting a second chain. False: resyncing.
async fn confirm_base(
    store: &dyn ObjectStore,
    pipeline: &Pipeline,
    file: &SealedFile,
) -> Result<bool, archive::ArchiveError> {
    let tp = &file.name.tp;
    if !pipeline.ledger.base_unconfirmed(tp) {
        return Ok(true);
    }
    match archive::listed_end(store, &pipeline.s3.at, tp).await? {
        Some(end) if end != file.name.start => {
            tracing::warn!(partition = %tp, ours = file.name.start, archive_ends = end, "the archive in S3 does not end where this partition started; resyncing to it");
            if pipeline.ledger.hold_for_resync(tp) {
                pipeline.resyncs.request(tp, Resync { drop_from: file.name.start, resume_at: Some(end) });
            }
            Ok(false)
        }
        _ => {
            pipeline.ledger.confirm_base(tp);
            Ok(true)
        }
    }
}

/// Another instance created the object at this file's first offset, with other contents: it
/// owned the partition meanwhile (this daemon was a zombie, or lost a hand-over). Its objects
/// are the archive now. When this daemon still owns the partition, the consumer drops the
/// partition's local files from this offset and resumes where S3's chain ends; otherwise the
/// file is deleted - its records are in S3 or will be read again by the owner.
fn give_way(
    pipeline: &Pipeline,
    file: &SealedFile,
    key: &ObjectPath,
    other: &ObjectHeader,
) -> Result<(), durable::FsError> {
    let tp = &file.name.tp;
    tracing::warn!(key = %key, ours = %format!("{}-{}", file.name.start, file.name.end), theirs = %format!("{}-{}", other.start, other.end),
        "another instance archived this partition from the same offset; giving way");
    if pipeline.ledger.hold_for_resync(tp) {
        pipeline.resyncs.request(tp, Resync { drop_from: file.name.start, resume_at: None });
        return Ok(());
    }
    pipeline.remove_sealed(&file.path)
}

/// Tells the ledger a file is in S3 and deletes the local files it releases. Idempotent, so a
/// release that failed (the marker could not be written) is retried by calling it again.
fn release_confirmed(pipeline: &Pipeline, name: &SealedName) -> Result<(), crate::durable::FsError> {
    let released = pipeline.ledger.upload_confirmed(name)?;
    if !released.owned {
        tracing::warn!(file = %name.stem(), "uploaded after the partition was handed over; local file kept for the next adoption to judge");
    }
    for name in released.deletable {
        let path = pipeline.work.sealed_path(Stage::ToS3, &name);
        pipeline.remove_sealed(&path)?;
    }
    Ok(())
}
