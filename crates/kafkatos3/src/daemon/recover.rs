//! Startup recovery: rebuilds a consistent working directory from the files alone, whatever
//! point a crash (of this daemon or of the Python original) interrupted.

use std::fs;

use crate::local::backlog::Backlog;
use crate::local::durable::{self, FsError, TMP_SUFFIX};
use crate::local::layout::{Stage, WorkDir};
use crate::local::legacy::Legacy;
use crate::local::seal::{self, SealError};
use crate::names::{SealedName, GZ_SUFFIX, MAK_SUFFIX};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("sealing an in-progress file: {0}")]
    Seal(#[from] SealError),
}

/// What recovery found and did.
#[derive(Debug)]
pub struct Recovery {
    pub legacy: Legacy,
    /// Bytes in `tocompress/` and `tos3/` waiting for the later stages.
    pub backlog: Backlog,
    pub removed_partial: usize,
}

pub fn recover(work: &WorkDir) -> Result<Recovery, RecoverError> {
    let mut removed_partial = 0;
    for path in work.list_all_stage_files()? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        // A temporary file is a compression that did not finish: its source is still in tocompress.
        if name.ends_with(TMP_SUFFIX) {
            tracing::info!(path = %path.display(), "removing a partial file left by a crash");
            durable::remove_durable(&path)?;
            removed_partial += 1;
            continue;
        }
        let in_tocompress = path.starts_with(work.stage_dir(Stage::ToCompress));
        if in_tocompress && name.ends_with(GZ_SUFFIX) {
            // The original gzipped in place: with the source still present the .gz is partial.
            let source = path.with_file_name(name.trim_end_matches(".gz"));
            if source.exists() {
                tracing::info!(path = %path.display(), "removing a partial gzip output of the original");
                durable::remove_durable(&path)?;
                removed_partial += 1;
            } else if let Some(sealed) = SealedName::parse(&name) {
                durable::rename_durable(&path, &work.tos3_path(&sealed, GZ_SUFFIX))?;
            }
            continue;
        }
        if in_tocompress && name.ends_with(MAK_SUFFIX) {
            // Compression completed (the .gz is renamed into place only once durable) but the
            // crash came before the source was removed.
            if let Some(sealed) = SealedName::parse(&name) {
                if !work.tos3_files(&sealed)?.is_empty() {
                    durable::remove_durable(&path)?;
                }
            }
        }
    }
    remove_tmp_in(&work.state_dir())?;
    // A version 2 or 3 seal finished just before a crash, the rename after it not: finish it, as
    // the crash had come a moment later.
    for (tp, path) in work.list_inprogress()? {
        if mak::is_sealed(&path) {
            seal::seal_existing(work, &tp)?;
        }
    }

    let legacy = if work.state_dir().is_dir() { Legacy::load(work)? } else { adopt_original(work)? };

    let backlog = Backlog::default();
    for stage in [Stage::ToCompress, Stage::ToS3] {
        for file in work.list_sealed(stage)? {
            backlog.add(&file.name.tp, fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0));
        }
    }
    Ok(Recovery { legacy, backlog, removed_partial })
}

/// A working directory without our `state/` was last run by the Python original (or is new).
/// Its in-progress files are sealed as its own rotate tool would, and every sealed file is
/// listed as legacy so it is uploaded whatever the committed offsets say.
fn adopt_original(work: &WorkDir) -> Result<Legacy, RecoverError> {
    for (tp, _) in work.list_inprogress()? {
        if let Some((name, _)) = seal::seal_existing(work, &tp)? {
            tracing::info!(topic = %name.tp.topic, partition = name.tp.partition, file = %name.stem(), "sealed the in-progress file left by the original");
        }
    }
    let mut names = Vec::new();
    for stage in [Stage::ToCompress, Stage::ToS3] {
        names.extend(work.list_sealed(stage)?.into_iter().map(|f| f.name));
    }
    if !names.is_empty() {
        tracing::info!(files = names.len(), "adopting a working directory of the Python original");
    }
    Ok(Legacy::create(work, &names)?)
}

fn remove_tmp_in(dir: &std::path::Path) -> Result<(), FsError> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_tmp_in(&path)?;
        } else if path.to_string_lossy().ends_with(TMP_SUFFIX) {
            durable::remove_durable(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::TopicPartition;

    fn name(partition: i32, start: i64, end: i64) -> SealedName {
        SealedName { tp: TopicPartition::new("t", partition), start, end, date: "161110".into() }
    }

    fn write_mak(path: &std::path::Path, partition: i32, records: i64) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let header = mak::Header { topic: "t".into(), partition, start_offset: 0, start_time: 1.0 };
        let mut writer = mak::MakWriter::create(path, &header).unwrap();
        for offset in 0..records {
            writer.append(offset, Some(b"k"), Some(b"v")).unwrap();
        }
        writer.close().unwrap();
    }

    #[test]
    fn partial_compression_output_is_removed_and_its_source_kept() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        fs::create_dir_all(work.state_dir()).unwrap();
        let source = work.tocompress_path(&name(0, 0, 9));
        write_mak(&source, 0, 10);
        let partial = durable::tmp_path(&work.tos3_path(&name(0, 0, 9), GZ_SUFFIX));
        fs::create_dir_all(partial.parent().unwrap()).unwrap();
        fs::write(&partial, b"half a gzip").unwrap();
        let recovery = recover(&work).unwrap();
        assert!(!partial.exists());
        assert!(source.exists());
        assert_eq!(recovery.removed_partial, 1);
        assert_eq!(recovery.backlog.bytes(), fs::metadata(&source).unwrap().len());
    }

    #[test]
    fn source_of_a_completed_compression_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        fs::create_dir_all(work.state_dir()).unwrap();
        let source = work.tocompress_path(&name(0, 0, 9));
        let done = work.tos3_path(&name(0, 0, 9), GZ_SUFFIX);
        write_mak(&source, 0, 10);
        fs::create_dir_all(done.parent().unwrap()).unwrap();
        fs::write(&done, b"complete gzip").unwrap();
        recover(&work).unwrap();
        assert!(!source.exists(), "the crash came after the rename, before the removal");
        assert!(done.exists());
    }

    #[test]
    fn working_directory_of_the_original_is_sealed_and_listed_as_legacy() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        // The original gzipped in place: a lone .gz in tocompress is complete, a .gz beside its
        // .mak is partial.
        let complete = work.stage_dir(Stage::ToCompress).join("t/1/t-1_0-4_161110.mak.gz");
        fs::create_dir_all(complete.parent().unwrap()).unwrap();
        fs::write(&complete, b"gzip").unwrap();
        let pending = work.tocompress_path(&name(2, 0, 2));
        write_mak(&pending, 2, 3);
        let partial = pending.with_file_name("t-2_0-2_161110.mak.gz");
        fs::write(&partial, b"partial").unwrap();
        write_mak(&work.inprogress_file(&TopicPartition::new("t", 0)), 0, 5);

        let recovery = recover(&work).unwrap();
        assert!(work.tos3_path(&name(1, 0, 4), GZ_SUFFIX).exists(), "complete gzip moved on to tos3");
        assert!(!partial.exists() && pending.exists(), "partial gzip removed, its source kept");
        assert!(!work.inprogress_file(&TopicPartition::new("t", 0)).exists(), "in-progress file sealed");
        let sealed = work.list_sealed_for(&TopicPartition::new("t", 0)).unwrap();
        assert_eq!(sealed.len(), 1);
        assert_eq!((sealed[0].name.start, sealed[0].name.end), (0, 4));
        for adopted in [&sealed[0].name, &name(1, 0, 4), &name(2, 0, 2)] {
            assert!(recovery.legacy.contains(adopted), "{} is legacy", adopted.stem());
        }
        assert_eq!(recovery.legacy.end_for(&TopicPartition::new("t", 0)), Some(4));

        // A second start (state/ now exists) keeps the same legacy list.
        let again = recover(&work).unwrap();
        assert!(again.legacy.contains(&name(2, 0, 2)));
    }

    /// An in-progress file of `version` with `records` records from offset 0, sealed or left open.
    fn write_inprogress(
        work: &WorkDir,
        tp: &TopicPartition,
        version: mak::Version,
        records: i64,
        sealed: bool,
    ) -> std::path::PathBuf {
        let path = work.inprogress_file(tp);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let start = mak::FileStart {
            topic: &tp.topic,
            partition: tp.partition,
            start_offset: 0,
            created_secs: 1,
            writer: None,
        };
        let mut writer = mak::AnyWriter::create(&path, version, &start).unwrap();
        for offset in 0..records {
            let record = mak::v2::RecordRef {
                offset,
                timestamp: 5,
                timestamp_type: mak::v2::TimestampType::CreateTime,
                key: None,
                value: Some(b"v"),
                headers: &[("h", None)],
            };
            writer.append(&record).unwrap();
        }
        if sealed {
            writer.seal().unwrap();
        } else {
            writer.suspend().unwrap();
        }
        path
    }

    #[test]
    fn a_version_2_or_3_in_progress_file_sealed_before_a_crash_is_moved_on_and_an_open_one_left_for_adoption() {
        for version in [mak::Version::V2, mak::Version::V3] {
            let dir = tempfile::tempdir().unwrap();
            let work = WorkDir::new(dir.path());
            fs::create_dir_all(work.state_dir()).unwrap();
            let (done, open) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
            let sealed_path = write_inprogress(&work, &done, version, 4, true);
            let bytes = fs::read(&sealed_path).unwrap();
            let open_path = write_inprogress(&work, &open, version, 3, false);

            let recovery = recover(&work).unwrap();
            assert!(!sealed_path.exists(), "{version:?}");
            let moved = work.list_sealed_for(&done).unwrap();
            assert_eq!(moved.len(), 1);
            assert_eq!((moved[0].name.start, moved[0].name.end), (0, 3));
            assert_eq!(fs::read(&moved[0].path).unwrap(), bytes, "moved unchanged");
            assert_eq!(recovery.backlog.bytes(), bytes.len() as u64, "counted in the backlog");
            assert!(!recovery.legacy.contains(&moved[0].name), "our own file, not the original's");
            assert!(open_path.exists(), "an open file is resumed or judged on adoption, not here");
            assert!(work.list_sealed_for(&open).unwrap().is_empty());
        }
    }

    #[test]
    fn a_new_working_directory_has_no_legacy_files() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let recovery = recover(&work).unwrap();
        assert_eq!(recovery.backlog.bytes(), 0);
        assert!(work.state_dir().is_dir());
        assert!(!recovery.legacy.contains(&name(0, 0, 1)));
    }
}
