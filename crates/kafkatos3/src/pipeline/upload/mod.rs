//! The upload stage: `tos3/*` -> one data object per file plus its claim (the fence:
//! [`crate::archive::fence`]), `s3uploader_workers` at a time across partitions, one at a time
//! and oldest first within a partition. A confirmed upload goes to the ledger, which decides when
//! the local file may go and what Kafka may be told. A claim naming another object means another
//! instance archived the partition from there: this one gives way (see `Uploader::give_way`).
//!
//! Failures (S3 unreachable, bucket missing, credentials refused) leave the file in `tos3/` and
//! retry it with exponential backoff; the error names the object's URL.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use crate::archive::fence::{PutLimits, Stored, Upload, UploadError};
use crate::archive::{Archive, ArchiveError, Claim};
use crate::config::Config;
use crate::local::backlog::Backlog;
use crate::local::durable::FsError;
use crate::local::layout::{SealedFile, Stage, WorkDir};
use crate::local::ledger::Ledger;
use crate::local::legacy::Legacy;
use crate::names::SealedName;
use crate::observe::metrics::FailureReason;
use crate::pipeline::resync::{Resync, ResyncRequests};
use crate::pipeline::stop::{Shutdown, StageStop};

const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How files are uploaded: `[s3]`, and the memory budget's limits.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// `[s3] topic_whitelist`: files of other topics stay in `tos3/`.
    pub topics: crate::config::topics::TopicSet,
    pub workers: usize,
    /// Period of the fallback rescan of `tos3/`.
    pub check_interval: Duration,
    pub limits: PutLimits,
}

impl UploadSettings {
    pub fn from_config(config: &Config) -> Self {
        let s3 = &config.s3;
        UploadSettings {
            topics: s3.topic_whitelist.clone(),
            workers: s3.s3uploader_workers,
            check_interval: s3.s3upload_check_interval,
            limits: put_limits(config),
        }
    }
}

/// One PUT below the worker's share of the memory budget, else parts of a third of it.
pub fn put_limits(config: &Config) -> PutLimits {
    PutLimits {
        multipart_threshold: config.memory.single_put_max(config.s3.multipart_threshold_bytes),
        part_bytes: config.memory.part_bytes(),
    }
}

/// Why an upload failed; the file stays in `tos3/` and is retried.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Upload(#[from] UploadError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Local(#[from] FsError),
}

impl Failure {
    fn reason(&self) -> FailureReason {
        let store = |source: &object_store::Error| match source {
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                FailureReason::denied
            }
            object_store::Error::NotFound { .. } => FailureReason::not_found,
            _ => FailureReason::store,
        };
        match self {
            Failure::Upload(UploadError::Store { source, .. }) => store(source),
            Failure::Archive(ArchiveError::Store { source, .. } | ArchiveError::List { source, .. }) => store(source),
            Failure::Upload(UploadError::Foreign { .. }) | Failure::Archive(ArchiveError::Claim { .. }) => {
                FailureReason::foreign_claim
            }
            Failure::Upload(UploadError::Local { .. }) | Failure::Local(_) => FailureReason::local,
        }
    }
}

/// What the uploader works with.
#[derive(Debug)]
pub struct Uploader {
    pub settings: UploadSettings,
    pub work: WorkDir,
    pub archive: Archive,
    /// Which files may be uploaded now (the oldest waiting one of each owned partition), and
    /// what a confirmation releases.
    pub ledger: Arc<Ledger>,
    /// The original's files, uploaded unconditionally under its names.
    pub legacy: Arc<Legacy>,
    /// Released files leave it.
    pub backlog: Arc<Backlog>,
    /// A lost claim race, or an archive that ends elsewhere: resync the partition.
    pub resyncs: ResyncRequests,
    /// Notified by the compressors when a file is ready: tos3/ is scanned again.
    pub wake: Arc<Notify>,
    pub stop: Arc<StageStop>,
    /// Stopped at once when the store turns out unable to fence (it overwrites a claim).
    pub shutdown: Arc<Shutdown>,
}

#[derive(Debug, Default)]
struct Retry {
    attempts: u32,
    not_before: Option<Instant>,
}

/// Runs the dispatcher until the stages are stopped. In-flight uploads are finished or abandoned
/// at that point; their files stay in `tos3/` for the next run.
pub async fn run(stage: Arc<Uploader>) {
    let _alive = crate::observe::metrics::global().health.thread("uploader");
    if !probe_store(&stage).await {
        return;
    }
    let workers = Arc::new(Semaphore::new(stage.settings.workers));
    let in_flight: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    let retries: Arc<Mutex<HashMap<PathBuf, Retry>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut warned_unlisted = HashSet::new();
    // The files of the last scan not yet looked at. A finished upload takes the next of them; only
    // new files (the compressors' wake), the check interval or an exhausted queue rescan tos3/:
    // rescanning on every finished upload made a backlog of 10,000 files cost a directory walk
    // per upload (7 uploads/s).
    let mut queue: VecDeque<SealedFile> = VecDeque::new();
    let mut rescan = true;
    // The next scan at the latest: the check interval after the last one, or sooner when a file
    // left out of the queue for its retry backoff is due.
    let mut rescan_at = Instant::now();
    let finished = Arc::new(Notify::new());
    while !stage.stop.is_stopped() {
        let now = Instant::now();
        if rescan || queue.is_empty() || now >= rescan_at {
            rescan = false;
            rescan_at = now + stage.settings.check_interval;
            queue = match stage.work.list_sealed(Stage::ToS3) {
                Ok(files) => files.into(),
                Err(error) => {
                    tracing::error!(%error, "scanning tos3");
                    VecDeque::new()
                }
            };
        }
        while let Some(file) = queue.pop_front() {
            let legacy = stage.legacy.contains(&file.name);
            if !stage.settings.topics.matches(&file.name.tp.topic) {
                if warned_unlisted.insert(file.name.tp.topic.clone()) {
                    tracing::warn!(topic = %file.name.tp.topic, "files of a topic missing from [s3] topic_whitelist stay in tos3");
                }
                continue;
            }
            // Only the owner of a partition uploads its files, and only those its ledger tracks
            // as waiting: the owner alone commits, and anything else (a former owner's leftovers,
            // a file already confirmed) would be uploaded twice.
            if !legacy && stage.ledger.is_confirmed(&file.name) {
                if let Err(error) = stage.release_confirmed(&file.name) {
                    tracing::error!(%error, topic = %file.name.tp.topic, partition = file.name.tp.partition, file = %file.name.stem(), "releasing an uploaded file failed; retried");
                }
                continue;
            }
            if !legacy && !stage.ledger.awaits_upload(&file.name) {
                continue;
            }
            if let Some(not_before) =
                retries.lock().unwrap_or_else(|p| p.into_inner()).get(&file.path).and_then(|r| r.not_before)
            {
                if not_before > now {
                    rescan_at = rescan_at.min(not_before);
                    continue;
                }
            }
            if !in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(file.path.clone()) {
                continue;
            }
            // All workers busy: the next finishing upload wakes this loop, which goes on here.
            let Ok(permit) = workers.clone().try_acquire_owned() else {
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&file.path);
                queue.push_front(file);
                break;
            };
            let (stage, in_flight, retries, finished) =
                (stage.clone(), in_flight.clone(), retries.clone(), finished.clone());
            let retrying = retries.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&file.path);
            tasks.spawn(async move {
                let _permit = permit;
                let metrics = crate::observe::metrics::global();
                if retrying {
                    metrics.upload_retries.inc();
                }
                let outcome = stage.upload_and_release(&file, legacy).await;
                metrics.health.upload_attempted(outcome.as_ref().err().map(ToString::to_string));
                let mut retries = retries.lock().unwrap_or_else(|p| p.into_inner());
                match outcome {
                    Ok(()) => {
                        retries.remove(&file.path);
                    }
                    Err(error) => {
                        metrics.upload_failed(error.reason());
                        let retry = retries.entry(file.path.clone()).or_default();
                        retry.attempts += 1;
                        let backoff = Duration::from_secs(1 << retry.attempts.min(6)).min(MAX_BACKOFF);
                        retry.not_before = Some(Instant::now() + backoff);
                        tracing::error!(%error, attempt = retry.attempts, retry_in_s = backoff.as_secs(), "upload failed; file kept in tos3");
                    }
                }
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&file.path);
                finished.notify_one();
            });
        }
        while tasks.try_join_next().is_some() {}
        let sleep = rescan_at.saturating_duration_since(Instant::now()).max(Duration::from_millis(50));
        tokio::select! {
            _ = stage.wake.notified() => rescan = true,
            _ = finished.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
    // Uploads in flight at the deadline are cut off: their files stay and are retried next run.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// Before the first upload: does the store refuse to overwrite (the fence's premise, see
/// [`Archive::refuses_overwrite`])? Retried with backoff while the store cannot be reached; a
/// store that overwrites stops the daemon. False when the uploader is to stop.
async fn probe_store(stage: &Uploader) -> bool {
    let mut backoff = Duration::from_secs(1);
    while !stage.stop.is_stopped() {
        match stage.archive.refuses_overwrite().await {
            Ok(true) => {
                tracing::info!(store = %stage.archive.url(""), "the store refuses to overwrite a claim: instances are fenced");
                return true;
            }
            Ok(false) => {
                tracing::error!(store = %stage.archive.url(""), "the store overwrote an object created only-if-absent (If-None-Match: *): it cannot keep two instances from archiving the same records, and kafkatos3 does not run on it; upgrade the server to one that supports conditional writes, or use another store");
                stage.shutdown.fail();
                return false;
            }
            Err(error) => {
                // Reported and counted as an upload failure: no upload can happen until it passes.
                tracing::error!(%error, retry_in_s = backoff.as_secs(), "upload failed: checking that the store refuses overwrites, before the first upload; retried");
                let metrics = crate::observe::metrics::global();
                metrics.health.upload_attempted(Some(error.to_string()));
                metrics.upload_failed(Failure::Archive(error).reason());
                tokio::select! {
                    _ = stage.wake.notified() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    false
}

impl Uploader {
    fn upload_of<'a>(&'a self, file: &'a SealedFile) -> Upload<'a> {
        Upload {
            archive: &self.archive,
            name: &file.name,
            path: &file.path,
            suffix: file.suffix(),
            limits: self.settings.limits,
        }
    }

    async fn upload_and_release(&self, file: &SealedFile, legacy: bool) -> Result<(), Failure> {
        let started = Instant::now();
        let upload = self.upload_of(file);
        if legacy {
            // The original committed before uploading: its files go up unconditionally, under the
            // names it would have given them.
            let key = self.archive.location().original_key(&file.name);
            let size = upload.overwrite(&key).await?;
            tracing::info!(key = %key, bytes = size, ms = started.elapsed().as_millis() as u64, "uploaded");
            self.legacy.uploaded(&file.name)?;
            self.backlog.remove_file(&file.name.tp, &file.path)?;
            return Ok(());
        }
        if !self.confirm_base(file).await? {
            return Ok(());
        }
        let key = upload.object_key();
        match upload.store().await? {
            Stored::Created(size) => {
                crate::observe::metrics::global().upload_duration.observe(started.elapsed().as_secs_f64());
                tracing::info!(key = %key, bytes = size, ms = started.elapsed().as_millis() as u64, "uploaded")
            }
            Stored::AlreadyThere => {
                tracing::info!(key = %key, "already in S3 with the same offsets (an earlier attempt); counted as uploaded")
            }
            Stored::Conflict(theirs) => {
                tracing::warn!(key = %key, ours = %format!("{}-{}", file.name.start, file.name.end), theirs = %format!("{}-{}", theirs.first, theirs.last),
                    "another instance archived this partition from the same offset; giving way");
                crate::observe::metrics::global().fence_give_way.inc();
                self.give_way(file, &theirs)?;
                return Ok(());
            }
        }
        self.release_confirmed(&file.name)?;
        Ok(())
    }

    /// A partition started without knowing where its archive ends (S3 was unreachable and the
    /// group had no offset) asks the archive before its first upload: if it goes on elsewhere, the
    /// partition resyncs to where it ends instead of starting a second chain. False: resyncing.
    async fn confirm_base(&self, file: &SealedFile) -> Result<bool, ArchiveError> {
        let tp = &file.name.tp;
        if !self.ledger.base_unconfirmed(tp) {
            return Ok(true);
        }
        match self.archive.listed_end(tp).await? {
            Some(end) if end != file.name.start => {
                tracing::warn!(topic = %tp.topic, partition = tp.partition, ours = file.name.start, archive_ends = end, "the archive in S3 does not end where this partition started; resyncing to it");
                self.resyncs.hold_and_request(tp, Resync { drop_from: file.name.start, resume_at: Some(end) });
                Ok(false)
            }
            _ => {
                self.ledger.confirm_base(tp);
                Ok(true)
            }
        }
    }

    /// Another instance created the object at this file's first offset, with other contents
    /// (`theirs`): it owned the partition meanwhile (this daemon was a zombie, or lost a
    /// hand-over). Its objects are the archive now. When this daemon still owns the partition,
    /// the consumer drops the partition's local files from this offset and resumes where the
    /// archive's chain ends; otherwise the file is deleted - its records are in the archive or
    /// will be read again by the owner.
    fn give_way(&self, file: &SealedFile, theirs: &Claim) -> Result<(), FsError> {
        debug_assert_eq!(theirs.first, file.name.start);
        let resync = Resync { drop_from: file.name.start, resume_at: None };
        if self.resyncs.hold_and_request(&file.name.tp, resync) {
            return Ok(());
        }
        self.backlog.remove_file(&file.name.tp, &file.path)
    }

    /// Tells the ledger a file is in S3 and deletes the local files it releases. Idempotent, so a
    /// release that failed (the marker could not be written) is retried by calling it again.
    fn release_confirmed(&self, name: &SealedName) -> Result<(), FsError> {
        let released = self.ledger.upload_confirmed(name)?;
        if !released.owned {
            tracing::warn!(topic = %name.tp.topic, partition = name.tp.partition, file = %name.stem(), "uploaded after the partition was handed over; local file kept for the next adoption to judge");
        }
        let metrics = crate::observe::metrics::global().partitions.get(&name.tp);
        for name in released.deletable {
            for path in self.work.tos3_files(&name)? {
                if let Some(metrics) = &metrics {
                    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                    metrics.file_archived(name.start, name.end, bytes);
                }
                self.backlog.remove_file(&name.tp, &path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
