//! Leftovers: local files of partitions this daemon does not own (a hand-over that timed out, a
//! crash after which the partition went to another instance, a topic dropped from the
//! whitelist). Once a partition has not been owned for `orphan_timeout_seconds`, its files are
//! resolved by one rule (docs/design.md, "Leftovers"):
//!
//! - a file that continues this disk's own upload marker is uploaded, with the same conditional
//!   create as every upload - nobody else can have archived it without taking its key;
//! - every other file is deleted: its records are already in S3, or the owner reads them again
//!   from Kafka (it resumes where S3's chain ends, which is before them).
//!
//! The in-progress file is sealed first, so it is judged like the rest.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::local::durable::{self, FsError};
use crate::local::layout::{SealedFile, Stage};
use crate::names::TopicPartition;
use crate::pipeline::upload::{Stored, Upload};
use crate::pipeline::Pipeline;

/// Longest a leftover's upload may hold up an adoption of its partition.
const UPLOAD_LIMIT: Duration = Duration::from_secs(60);

pub fn spawn(pipeline: Arc<Pipeline>) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name("leftovers".into())
        .spawn(move || {
            let timeout = pipeline.config.consumer.orphan_timeout;
            let period = (timeout / 2).min(Duration::from_secs(10)).max(Duration::from_millis(500));
            let mut unowned_since: HashMap<TopicPartition, Instant> = HashMap::new();
            let mut next = Instant::now() + period;
            while !pipeline.stages_stopped() {
                if Instant::now() < next {
                    thread::sleep(Duration::from_millis(200));
                    continue;
                }
                next = Instant::now() + period;
                sweep(&pipeline, &mut unowned_since, timeout);
            }
        })
        .expect("spawn leftovers thread")
}

/// One pass: notes when each partition with local files was first seen unowned, and resolves
/// those unowned for longer than `timeout`.
fn sweep(pipeline: &Pipeline, unowned_since: &mut HashMap<TopicPartition, Instant>, timeout: Duration) {
    let partitions = match partitions_with_files(pipeline) {
        Ok(partitions) => partitions,
        Err(error) => {
            tracing::error!(%error, "scanning the working directory for leftovers");
            return;
        }
    };
    unowned_since.retain(|tp, _| partitions.contains(tp));
    for tp in partitions {
        if pipeline.ledger.is_owned(&tp) {
            unowned_since.remove(&tp);
            continue;
        }
        let since = *unowned_since.entry(tp.clone()).or_insert_with(Instant::now);
        if since.elapsed() < timeout || pipeline.stages_stopped() {
            continue;
        }
        if let Err(error) = resolve(pipeline, &tp) {
            tracing::error!(partition = %tp, %error, "resolving leftover files failed; retried");
        }
    }
}

fn partitions_with_files(pipeline: &Pipeline) -> Result<HashSet<TopicPartition>, FsError> {
    let work = &pipeline.work;
    let mut partitions: HashSet<TopicPartition> = work.list_inprogress()?.into_iter().map(|(tp, _)| tp).collect();
    for stage in [Stage::ToCompress, Stage::ToS3] {
        partitions.extend(
            work.list_sealed(stage)?.into_iter().filter(|f| !pipeline.legacy.contains(&f.name)).map(|f| f.name.tp),
        );
    }
    Ok(partitions)
}

/// Resolves one partition's leftovers, holding its lock: an adoption of the partition waits
/// until this is done (at most one upload).
fn resolve(pipeline: &Pipeline, tp: &TopicPartition) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _moving = pipeline.partition_locks.lock(tp);
    if pipeline.ledger.is_owned(tp) {
        return Ok(());
    }
    let work = &pipeline.work;
    let inprogress = work.inprogress_file(tp);
    if inprogress.exists() {
        match crate::pipeline::spool::seal_existing(work, tp) {
            Ok(Some((name, bytes))) => {
                tracing::info!(file = %name.stem(), "sealed the in-progress file of a partition owned elsewhere");
                pipeline.backlog.add(tp, bytes);
            }
            Ok(None) => {
                durable::remove_durable(&inprogress)?;
            }
            Err(error) => {
                tracing::warn!(partition = %tp, %error, "leftover in-progress file is unreadable; deleting it, the owner reads its records again");
                durable::remove_durable(&inprogress)?;
            }
        }
    }
    let mut marker = pipeline.ledger.read_marker(tp);
    for file in work.list_sealed_for(tp)? {
        if pipeline.legacy.contains(&file.name) {
            continue;
        }
        if marker.is_some_and(|m| file.name.start == m + 1) {
            match upload_leftover(pipeline, file)? {
                Some(end) => marker = Some(end),
                None => continue,
            }
        } else {
            tracing::info!(file = %file.name.stem(), uploaded_through = marker, "deleting a leftover that does not continue this disk's uploads; its records are in S3 or read again by the partition's owner");
            pipeline.remove_sealed(&file.name.tp, &file.path)?;
        }
    }
    Ok(())
}

/// Compresses (if needed) and uploads a leftover that continues the marker. Returns the new
/// marker, or None when another instance had archived that offset with other contents (the
/// file is deleted and the marker stays, so the partition's later files are deleted too).
fn upload_leftover(
    pipeline: &Pipeline,
    mut file: SealedFile,
) -> Result<Option<i64>, Box<dyn std::error::Error + Send + Sync>> {
    if file.stage == Stage::ToCompress {
        let before = std::fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
        let (path, after) = crate::pipeline::compress::compress_file(pipeline, &file)?;
        pipeline.backlog.resize(&file.name.tp, before, after);
        file = SealedFile { path, name: file.name, stage: Stage::ToS3 };
    }
    let s3 = &pipeline.config.s3;
    let upload = Upload {
        store: pipeline.s3.store.as_ref(),
        bucket: &s3.s3_bucket_name,
        at: &pipeline.s3.at,
        name: &file.name,
        path: &file.path,
        suffix: file.suffix(),
        multipart_threshold: pipeline.config.memory.single_put_max(s3.multipart_threshold_bytes),
        part_bytes: pipeline.config.memory.part_bytes(),
    };
    let stored = pipeline.s3.block_on(UPLOAD_LIMIT, upload.store()).ok_or("upload timed out")??;
    let key = upload.object_key();
    match stored {
        Stored::Created(_) | Stored::AlreadyThere => {
            tracing::info!(key = %key, "uploaded a leftover that continued this disk's uploads");
            pipeline.ledger.write_marker(&file.name.tp, file.name.end)?;
            pipeline.remove_sealed(&file.name.tp, &file.path)?;
            Ok(Some(file.name.end))
        }
        Stored::Conflict(other) => {
            tracing::info!(key = %key, theirs_end = other.end, "a leftover's offsets were archived by the partition's owner; deleting it");
            pipeline.remove_sealed(&file.name.tp, &file.path)?;
            Ok(None)
        }
    }
}
