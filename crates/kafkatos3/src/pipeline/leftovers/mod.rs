//! Leftovers: local files of partitions this daemon does not own (a hand-over that timed out, a
//! crash after which the partition went to another instance, a topic dropped from the
//! whitelist). Once a partition has not been owned for `leftover_timeout_seconds`, its files are
//! resolved by one rule (docs/design.md, "Leftovers"):
//!
//! - a file that continues this disk's own upload marker is uploaded, with the same conditional
//!   create as every upload - nobody else can have archived it without taking its key;
//! - every other file is deleted: its records are already in S3, or the owner reads them again
//!   from Kafka (it resumes where S3's chain ends, which is before them).
//!
//! The in-progress file is sealed first, so it is judged like the rest. (Files set aside in
//! `orphaned/` are another matter: nothing ever touches them.)

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::archive::fence::{PutLimits, Stored, Upload, UploadError};
use crate::local::backlog::Backlog;
use crate::local::durable::{self, FsError};
use crate::local::layout::{SealedFile, Stage, WorkDir};
use crate::local::ledger::Ledger;
use crate::local::legacy::Legacy;
use crate::local::locks::PartitionLocks;
use crate::names::TopicPartition;
use crate::pipeline::compress::{compress_file, CompressSettings};
use crate::pipeline::stop::StageStop;
use crate::pipeline::ArchiveAccess;

/// Longest a leftover's upload may hold up an adoption of its partition.
const UPLOAD_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
enum LeftoverError {
    #[error(transparent)]
    Local(#[from] FsError),
    #[error(transparent)]
    Upload(#[from] UploadError),
    #[error("upload of a leftover timed out after {} s", UPLOAD_LIMIT.as_secs())]
    Timeout,
}

/// What the leftovers sweep works with.
#[derive(Debug)]
pub struct Leftovers {
    /// `leftover_timeout_seconds`: how long a partition must have been owned elsewhere.
    pub timeout: Duration,
    /// A leftover still in `tocompress/` is compressed as the compressors would.
    pub compress: CompressSettings,
    pub limits: PutLimits,
    pub work: WorkDir,
    pub archive: ArchiveAccess,
    /// Read only: which partitions are owned, and this disk's upload markers.
    pub ledger: Arc<Ledger>,
    /// The original's files are the uploader's, whoever owns their partition.
    pub legacy: Arc<Legacy>,
    pub backlog: Arc<Backlog>,
    /// Held while a partition's leftovers are resolved: an adoption waits for it.
    pub locks: Arc<PartitionLocks>,
    pub stop: Arc<StageStop>,
}

pub fn spawn(stage: Leftovers) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name("leftovers".into())
        .spawn(move || {
            let _alive = crate::observe::metrics::global().health.thread("leftovers");
            let period = (stage.timeout / 2).min(Duration::from_secs(10)).max(Duration::from_millis(500));
            let mut unowned_since: HashMap<TopicPartition, Instant> = HashMap::new();
            let mut next = Instant::now() + period;
            while !stage.stop.sleep(next.saturating_duration_since(Instant::now())) {
                next = Instant::now() + period;
                stage.sweep(&mut unowned_since);
            }
        })
        .expect("spawn leftovers thread")
}

impl Leftovers {
    /// One pass: notes when each partition with local files was first seen unowned, and resolves
    /// those unowned for longer than the timeout.
    pub fn sweep(&self, unowned_since: &mut HashMap<TopicPartition, Instant>) {
        let partitions = match self.partitions_with_files() {
            Ok(partitions) => partitions,
            Err(error) => {
                tracing::error!(%error, "scanning the working directory for leftovers");
                return;
            }
        };
        unowned_since.retain(|tp, _| partitions.contains(tp));
        for tp in partitions {
            if self.ledger.is_owned(&tp) {
                unowned_since.remove(&tp);
                continue;
            }
            let since = *unowned_since.entry(tp.clone()).or_insert_with(Instant::now);
            if since.elapsed() < self.timeout || self.stop.is_stopped() {
                continue;
            }
            if let Err(error) = self.resolve(&tp) {
                tracing::error!(topic = %tp.topic, partition = tp.partition, %error, "resolving leftover files failed; retried");
            }
        }
    }

    fn partitions_with_files(&self) -> Result<HashSet<TopicPartition>, FsError> {
        let mut partitions: HashSet<TopicPartition> =
            self.work.list_inprogress()?.into_iter().map(|(tp, _)| tp).collect();
        for stage in [Stage::ToCompress, Stage::ToS3] {
            let sealed = self.work.list_sealed(stage)?;
            partitions.extend(sealed.into_iter().filter(|f| !self.legacy.contains(&f.name)).map(|f| f.name.tp));
        }
        Ok(partitions)
    }

    /// Resolves one partition's leftovers, holding its lock: an adoption of the partition waits
    /// until this is done (at most one upload).
    fn resolve(&self, tp: &TopicPartition) -> Result<(), LeftoverError> {
        let _moving = self.locks.lock(tp);
        if self.ledger.is_owned(tp) {
            return Ok(());
        }
        let inprogress = self.work.inprogress_file(tp);
        if inprogress.exists() {
            match crate::local::seal::seal_existing(&self.work, tp) {
                Ok(Some((name, bytes))) => {
                    tracing::info!(topic = %name.tp.topic, partition = name.tp.partition, file = %name.stem(), "sealed the in-progress file of a partition owned elsewhere");
                    self.backlog.add(tp, bytes);
                }
                Ok(None) => {
                    durable::remove_durable(&inprogress)?;
                }
                Err(error) => {
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, %error, "leftover in-progress file is unreadable; deleting it, the owner reads its records again");
                    durable::remove_durable(&inprogress)?;
                }
            }
        }
        let mut marker = self.ledger.read_marker(tp);
        for file in self.work.list_sealed_for(tp)? {
            if self.legacy.contains(&file.name) {
                continue;
            }
            if marker.is_some_and(|m| file.name.start == m + 1) {
                match self.upload_leftover(file)? {
                    Some(end) => marker = Some(end),
                    None => continue,
                }
            } else {
                tracing::info!(topic = %file.name.tp.topic, partition = file.name.tp.partition, file = %file.name.stem(), uploaded_through = marker, "deleting a leftover that does not continue this disk's uploads; its records are in S3 or read again by the partition's owner");
                self.backlog.remove_file(&file.name.tp, &file.path)?;
            }
        }
        Ok(())
    }

    /// Compresses (if needed) and uploads a leftover that continues the marker. Returns the new
    /// marker, or None when another instance had archived that offset with other contents (the
    /// file is deleted and the marker stays, so the partition's later files are deleted too).
    fn upload_leftover(&self, mut file: SealedFile) -> Result<Option<i64>, LeftoverError> {
        if file.stage == Stage::ToCompress {
            let before = std::fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
            let (path, after) = compress_file(&self.compress, &self.work, &file)?;
            self.backlog.resize(&file.name.tp, before, after);
            file = SealedFile { path, name: file.name, stage: Stage::ToS3 };
        }
        let upload = Upload {
            archive: &self.archive.archive,
            name: &file.name,
            path: &file.path,
            suffix: file.suffix(),
            limits: self.limits,
        };
        let stored = self.archive.block_on(UPLOAD_LIMIT, upload.store()).ok_or(LeftoverError::Timeout)??;
        let key = upload.object_key();
        match stored {
            Stored::Created(_) | Stored::AlreadyThere => {
                tracing::info!(key = %key, "uploaded a leftover that continued this disk's uploads");
                self.ledger.write_marker(&file.name.tp, file.name.end)?;
                self.backlog.remove_file(&file.name.tp, &file.path)?;
                Ok(Some(file.name.end))
            }
            Stored::Conflict(theirs) => {
                tracing::info!(key = %key, theirs_end = theirs.last, "a leftover's offsets were archived by the partition's owner; deleting it");
                self.backlog.remove_file(&file.name.tp, &file.path)?;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests;
