//! Taking over a partition's local files on assignment: each file is kept (it continues the
//! chain from the resume point), removed (already in S3), or set aside (it would leave a gap
//! or an overlap), as decided by [`ledger::plan_adoption`].

use std::path::Path;

use mak::AnyWriter;

use crate::local::durable::{self, FsError};
use crate::local::ledger::{self, FileFate};
use crate::local::seal;
use crate::names::TopicPartition;
use crate::pipeline::consume::Consumers;
use crate::pipeline::spool::PartitionSpool;

/// Adopts a newly assigned partition and returns its spool, positioned where consumption must
/// resume (`next_offset() == None`: let Kafka decide from the committed offset or the reset
/// policy).
pub fn adopt_partition(
    stage: &Consumers,
    tp: &TopicPartition,
    committed: Option<i64>,
) -> Result<PartitionSpool, FsError> {
    let work = &stage.work;
    // No compression of this partition runs while its files are judged.
    let moving = stage.locks.lock(tp);
    // A resync asked for under an earlier ownership is superseded by this adoption.
    stage.resyncs.forget(tp);
    let marker = stage.ledger.read_marker(tp);
    let inprogress = work.inprogress_file(tp);
    // In its own version: a version 1 file stays version 1 until sealed, whatever the config.
    let mut opened = inprogress.exists().then(|| AnyWriter::open_append(&inprogress));
    if let Some(Err(mak::WriteError::Sealed { .. })) = opened {
        // A seal completed but the rename after it did not (a failed rename, or a crash that
        // also tore the progress block, which startup recovery cannot tell from an open file):
        // only the move into tocompress/ is left, then it is judged with the other sealed files.
        opened = None;
        match seal::seal_existing(work, tp) {
            Ok(Some((_, bytes))) => stage.backlog.add(tp, bytes),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(topic = %tp.topic, partition = tp.partition, %error, "moving on a sealed in-progress file")
            }
        }
    }
    let mut sealed = work.list_sealed_for(tp)?;
    sealed.retain(|f| !stage.legacy.contains(&f.name));

    let version = stage.config.main.mak_format_version;
    let mut open = None;
    if let Some(opened) = opened {
        match opened {
            Ok((writer, recovered)) if recovered.last_offset.is_some() => {
                if recovered.truncated_bytes > 0 {
                    tracing::info!(topic = %tp.topic, partition = tp.partition, bytes = recovered.truncated_bytes, "cut the torn tail of the in-progress file");
                }
                open = Some(writer);
            }
            Ok((writer, _empty)) => {
                drop(writer);
                durable::remove_durable(&inprogress)?;
            }
            Err(_) if never_held_a_record(&inprogress) => {
                // A crash between creating the file and making its header durable: no record
                // can have been written to it, there is nothing to keep.
                tracing::info!(topic = %tp.topic, partition = tp.partition, "removing an in-progress file cut before its header was complete");
                durable::remove_durable(&inprogress)?;
            }
            Err(error) => {
                tracing::error!(topic = %tp.topic, partition = tp.partition, %error, "in-progress file is unreadable; setting it aside, its records are read again from Kafka");
                work.set_aside(tp, &inprogress)?;
            }
        }
    }

    let ranges: Vec<(i64, i64)> = sealed.iter().map(|f| (f.name.start, f.name.end)).collect();
    let open_range = open.as_ref().map(|w| (w.start_offset(), w.last_offset().expect("checked above")));
    let plan = ledger::plan_adoption(committed, marker, stage.legacy.end_for(tp), &ranges, open_range);

    let mut kept = Vec::new();
    let metrics = crate::observe::metrics::global().partitions.assigned(tp);
    for (file, fate) in sealed.into_iter().zip(plan.sealed) {
        match fate {
            FileFate::Keep => {
                // Not read again for its first record's timestamp: the file's age stands in (at
                // most the records' own age, so the recovery point is never overstated).
                let modified = std::fs::metadata(&file.path).and_then(|m| m.modified()).ok();
                let ms = modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                metrics.file_started(
                    file.name.start,
                    ms.map_or_else(crate::observe::metrics::now_ms, |d| d.as_millis() as i64),
                );
                kept.push(file.name)
            }
            FileFate::Covered => {
                tracing::info!(topic = %file.name.tp.topic, partition = file.name.tp.partition, file = %file.name.stem(), "already in S3; removing the local copy");
                stage.backlog.remove_file(tp, &file.path)?;
            }
            FileFate::SetAside => {
                let bytes = std::fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
                tracing::warn!(topic = %file.name.tp.topic, partition = file.name.tp.partition, file = %file.name.stem(), committed, "file does not continue the archived offsets; set aside in orphaned/");
                work.set_aside(tp, &file.path)?;
                stage.backlog.sub(tp, bytes);
            }
        }
    }
    stage.ledger.adopt(tp, &kept);

    let spool = match (open, plan.open) {
        (Some(writer), Some(FileFate::Keep)) => PartitionSpool::resume(work, tp.clone(), writer, version),
        (Some(writer), Some(fate)) => {
            drop(writer);
            if fate == FileFate::Covered {
                durable::remove_durable(&inprogress)?;
            } else {
                tracing::warn!(topic = %tp.topic, partition = tp.partition, "in-progress file does not continue the archived offsets; set aside in orphaned/");
                work.set_aside(tp, &inprogress)?;
            }
            PartitionSpool::new(work, tp.clone(), plan.resume_at, version)
        }
        _ => PartitionSpool::new(work, tp.clone(), plan.resume_at, version),
    };
    // Compressions skipped while this partition was locked can go ahead now.
    drop(moving);
    stage.compress_wake.notify();
    tracing::info!(topic = %tp.topic, partition = tp.partition, committed, uploaded_through = marker, resume_at = plan.resume_at, pending_files = kept.len(), "adopted partition");
    Ok(spool)
}

/// True for a file shorter than the fixed part of its version's header (version 1's 27 bytes,
/// version 2's 64, version 3's 80; an empty file has neither): its header was never complete,
/// and records are only written after it.
fn never_held_a_record(path: &Path) -> bool {
    let Ok(version) = mak::detect_version(path) else {
        return false;
    };
    std::fs::metadata(path).is_ok_and(|m| m.len() < mak::fixed_header_len(version))
}

/// Deletes the partition's sealed files that start at `from` or later (their records are read
/// again from Kafka, or are in S3 already) and forgets them in the ledger: a resync.
pub fn drop_files_from(stage: &Consumers, tp: &TopicPartition, from: i64) -> Result<usize, FsError> {
    let _moving = stage.locks.lock(tp);
    let mut dropped = 0;
    for file in stage.work.list_sealed_for(tp)? {
        if file.name.start < from || stage.legacy.contains(&file.name) {
            continue;
        }
        stage.backlog.remove_file(tp, &file.path)?;
        dropped += 1;
    }
    stage.ledger.truncate(tp, from);
    if let Some(metrics) = crate::observe::metrics::global().partitions.get(tp) {
        metrics.files_dropped_from(from);
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_cut_inside_the_fixed_header_of_its_version_never_held_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.mak");
        let v2_magic = mak::v2::MAGIC.to_vec();
        let cases: [(Vec<u8>, bool); 6] = [
            (vec![], true),
            (b"MAK".to_vec(), true),
            ([b"MAK".as_slice(), &[0; 24]].concat(), false), // v1's 27 fixed bytes complete
            ([v2_magic.as_slice(), &[0; 40]].concat(), true), // 48 bytes: inside v2's 64
            ([v2_magic.as_slice(), &[0; 56]].concat(), false), // v2's 64 fixed bytes complete
            ([v2_magic.as_slice(), &[0; 20]].concat(), true), // longer than v1's 27, still short for v2
        ];
        for (bytes, expected) in cases {
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(never_held_a_record(&path), expected, "{} bytes starting {:02x?}", bytes.len(), bytes.first());
        }
    }
}
