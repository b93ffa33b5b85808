//! The upload stage: `tos3/*.mak.gz` -> `s3://<bucket>/<prefix>/<topic>/<partition>/<name>.mak.gz`,
//! `s3uploader_workers` at a time, multipart above the threshold. A confirmed upload goes to the
//! ledger, which decides when the local file may go and what Kafka may be told.
//!
//! Failures (S3 unreachable, bucket missing, credentials refused) leave the file in `tos3/` and
//! retry it with exponential backoff; the error names bucket and key.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::durable;
use crate::layout::{SealedFile, SealedName, Stage};
use crate::pipeline::Pipeline;
use crate::s3::object_key;

const MULTIPART_CHUNK: usize = 16 * 1024 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("upload of s3://{bucket}/{key} failed: {source}")]
    Store { bucket: String, key: String, source: object_store::Error },
    #[error("upload of {}: {source}", path.display())]
    Local { path: PathBuf, source: std::io::Error },
}

/// Uploads one file to its key.
pub async fn upload_file(store: &dyn ObjectStore, pipeline: &Pipeline, file: &SealedFile) -> Result<u64, UploadError> {
    let s3 = &pipeline.config.s3;
    let key = object_key(&s3.s3_key_prefix, &file.name);
    let store_error = |source| UploadError::Store { bucket: s3.s3_bucket_name.clone(), key: key.to_string(), source };
    let local_error = |source| UploadError::Local { path: file.path.clone(), source };
    let mut handle = tokio::fs::File::open(&file.path).await.map_err(local_error)?;
    let size = handle.metadata().await.map_err(local_error)?.len();
    if size < s3.multipart_threshold_bytes {
        let mut body = Vec::with_capacity(size as usize);
        handle.read_to_end(&mut body).await.map_err(local_error)?;
        store.put(&key, PutPayload::from(body)).await.map_err(store_error)?;
        return Ok(size);
    }
    let upload = store.put_multipart(&key).await.map_err(store_error)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
    let mut chunk = vec![0u8; MULTIPART_CHUNK];
    loop {
        let read = match handle.read(&mut chunk).await {
            Ok(0) => break,
            Ok(read) => read,
            Err(source) => {
                let _ = writer.abort().await;
                return Err(local_error(source));
            }
        };
        if let Err(source) = writer.wait_for_capacity(2).await {
            let _ = writer.abort().await;
            return Err(store_error(source));
        }
        writer.write(&chunk[..read]);
    }
    writer.finish().await.map_err(store_error)?;
    Ok(size)
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
    let size = upload_file(store, pipeline, file).await?;
    let key = object_key(&pipeline.config.s3.s3_key_prefix, &file.name);
    tracing::info!(key = %key, bytes = size, ms = started.elapsed().as_millis() as u64, "uploaded");
    if legacy {
        pipeline.legacy.uploaded(&file.name)?;
        durable::remove_durable(&file.path)?;
        pipeline.backlog.sub(size);
        return Ok(());
    }
    release_confirmed(pipeline, &file.name)?;
    Ok(())
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
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        durable::remove_durable(&path)?;
        pipeline.backlog.sub(bytes);
    }
    Ok(())
}
