//! The upload stage: `tos3/*` -> one S3 data object per file plus its claim (keys and the
//! claim rule: [`crate::archive`]), `s3uploader_workers` at a time across partitions, one at a
//! time and oldest first within a partition. A confirmed upload goes to the ledger, which decides
//! when the local file may go and what Kafka may be told.
//!
//! The data object is written first (one PUT, or a multipart upload above the threshold), then
//! its claim is created conditionally (`If-None-Match: *`). "Claim exists" is resolved by
//! reading it: naming our very object means an earlier attempt of ours (or a twin) succeeded;
//! naming another object means another instance archived the partition from here: this one
//! deletes its unclaimed object and gives way (see [`give_way`]).
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

use crate::archive::{self, Claim, Location, ObjectHeader};
use crate::local::durable;
use crate::local::layout::{SealedFile, Stage};
use crate::names::SealedName;
use crate::pipeline::resync::Resync;
use crate::pipeline::Pipeline;

const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("upload of s3://{bucket}/{key} failed: {source}")]
    Store { bucket: String, key: String, source: object_store::Error },
    #[error("upload of {}: {source}", path.display())]
    Local { path: PathBuf, source: std::io::Error },
    #[error("upload of s3://{bucket}/{key}: the claim key is taken by something that is not this partition's claim ({problem}); left alone")]
    Foreign { bucket: String, key: String, problem: String },
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
    Conflict(ObjectHeader),
}

/// One file to store, and where.
pub struct Upload<'a> {
    pub store: &'a dyn ObjectStore,
    pub bucket: &'a str,
    pub at: &'a Location,
    pub name: &'a SealedName,
    pub path: &'a Path,
    /// How the file is stored (`.mak.zst`...): part of the object's name.
    pub suffix: &'a str,
    /// Files at least this large are sent in parts; smaller ones are read whole into memory,
    /// so it is at most the worker's share of the memory budget.
    pub multipart_threshold: u64,
    /// The part size (see [`crate::config::budget::MemoryBudget::part_bytes`]).
    pub part_bytes: usize,
}

/// `wait_for_capacity` waits for fewer parts in flight than this, and the write after it may
/// start one more: at most 2 in flight and 1 being filled, the budget's three parts per upload.
const PARTS_IN_FLIGHT: usize = 2;

impl Upload<'_> {
    /// The data object's key.
    pub fn object_key(&self) -> ObjectPath {
        self.at.object_key(self.name, self.suffix)
    }

    /// Writes the data object, then claims it unless the claim is taken, and tells what the
    /// claim holds.
    pub async fn store(&self) -> Result<Stored, UploadError> {
        let object = self.object_key();
        let size = self.overwrite(&object).await?;
        let claim = Claim::new(self.name, self.suffix);
        let claim_key = self.at.claim_key(&self.name.tp, self.name.start);
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&claim_key, PutPayload::from(claim.to_bytes()), options).await {
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
        if size >= self.multipart_threshold {
            self.put_in_parts(key, handle).await?;
            return Ok(size);
        }
        let mut body = Vec::with_capacity(size as usize);
        handle.read_to_end(&mut body).await.map_err(|e| self.local_error(e))?;
        self.store.put(key, PutPayload::from(body)).await.map_err(|e| self.store_error(key, e))?;
        Ok(size)
    }

    /// Judges the claim that holds our claim key.
    async fn existing(&self, key: &ObjectPath, ours: &Claim, object: &ObjectPath) -> Result<Stored, UploadError> {
        let foreign =
            |problem: String| UploadError::Foreign { bucket: self.bucket.to_string(), key: key.to_string(), problem };
        let theirs = match archive::read_claim(self.store, key).await {
            Ok(Some(claim)) => claim,
            // Claims are never deleted: someone else is at work on this bucket.
            Ok(None) => return Err(foreign("it disappeared after refusing our write".into())),
            Err(archive::ArchiveError::Store { source, .. }) => return Err(self.store_error(key, source)),
            Err(archive::ArchiveError::Unreadable { problem, .. }) => return Err(foreign(problem)),
        };
        if theirs.tp() != self.name.tp || theirs.first != self.name.start {
            return Err(foreign(format!("it claims {} from offset {}", theirs.tp(), theirs.first)));
        }
        if theirs.object == ours.object {
            return Ok(Stored::AlreadyThere);
        }
        // No claim can ever name our object (its first offset is claimed for another): it goes.
        if let Err(source) = self.store.delete(object).await {
            tracing::warn!(key = %object, error = %source, "deleting our unclaimed object failed; verify lists it as unclaimed");
        }
        Ok(Stored::Conflict(ObjectHeader { tp: theirs.tp(), start: theirs.first, end: theirs.last }))
    }

    async fn put_in_parts(&self, key: &ObjectPath, mut handle: tokio::fs::File) -> Result<(), UploadError> {
        let upload = self.store.put_multipart(key).await.map_err(|e| self.store_error(key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_bytes);
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
        suffix: file.suffix(),
        multipart_threshold: pipeline.config.memory.single_put_max(s3.multipart_threshold_bytes),
        part_bytes: pipeline.config.memory.part_bytes(),
    };
    if legacy {
        // The original committed before uploading: its files go up unconditionally, under the
        // names it would have given them.
        let key = pipeline.s3.at.original_key(&file.name);
        let size = upload.overwrite(&key).await?;
        tracing::info!(key = %key, bytes = size, ms = started.elapsed().as_millis() as u64, "uploaded");
        pipeline.legacy.uploaded(&file.name)?;
        pipeline.remove_sealed(&file.name.tp, &file.path)?;
        return Ok(());
    }
    let key = upload.object_key();
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
    pipeline.remove_sealed(&file.name.tp, &file.path)
}

/// Tells the ledger a file is in S3 and deletes the local files it releases. Idempotent, so a
/// release that failed (the marker could not be written) is retried by calling it again.
fn release_confirmed(pipeline: &Pipeline, name: &SealedName) -> Result<(), crate::local::durable::FsError> {
    let released = pipeline.ledger.upload_confirmed(name)?;
    if !released.owned {
        tracing::warn!(file = %name.stem(), "uploaded after the partition was handed over; local file kept for the next adoption to judge");
    }
    for name in released.deletable {
        for path in pipeline.work.tos3_files(&name)? {
            pipeline.remove_sealed(&name.tp, &path)?;
        }
    }
    Ok(())
}
