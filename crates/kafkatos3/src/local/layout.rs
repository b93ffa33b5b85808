//! The working directory is the persistent form of every partition's state:
//!
//! ```text
//! <working_directory>/
//!   inprogress/<topic>/<partition>/data.mak             open file of a partition (being appended)
//!   tocompress/<topic>/<partition>/<name>.mak           sealed, waiting for compression
//!   tos3/<topic>/<partition>/<name>.mak.gz              compressed, waiting for upload
//!   state/<topic>/<partition>/uploaded_through          last offset known to be in S3 (contiguously)
//!   state/legacy                                        files adopted from the Python original
//!   orphaned/<topic>/<partition>/<stamp>-<file>         files set aside: they did not continue the archived offsets
//!   .kafkatos3.lock                                     held (flock) by the running daemon
//! ```
//!
//! `<name>` is `<topic>-<partition>_<start>-<end>_<yymmdd>`, end inclusive, as the original named it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::local::durable::FsError;
use crate::names::{split_archive_suffix, SealedName, TopicPartition, MAK_SUFFIX};

pub const INPROGRESS_FILE: &str = "data.mak";

/// Which pipeline stage a sealed file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    ToCompress,
    ToS3,
}

impl Stage {
    fn dir_name(self) -> &'static str {
        match self {
            Stage::ToCompress => "tocompress",
            Stage::ToS3 => "tos3",
        }
    }

    /// True for a file name of this stage's kind: `.mak` in `tocompress/` (a `.mak.gz` there is
    /// the original's in-place gzip output, which recovery deals with); in `tos3/` whatever the
    /// codec and encryption it was stored with when it was compressed.
    fn holds(self, file_name: &str) -> bool {
        match self {
            Stage::ToCompress => file_name.ends_with(MAK_SUFFIX),
            Stage::ToS3 => split_archive_suffix(file_name).is_some(),
        }
    }
}

/// A sealed file found on disk.
#[derive(Clone, Debug)]
pub struct SealedFile {
    pub path: PathBuf,
    pub name: SealedName,
    pub stage: Stage,
}

impl SealedFile {
    /// The file's suffix: `.mak` before compression, then as it was stored (`.mak.zst.age`...).
    pub fn suffix(&self) -> &str {
        let file = self.path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        split_archive_suffix(file).map_or(MAK_SUFFIX, |(_, suffix)| suffix)
    }
}

/// Paths inside one working directory.
#[derive(Clone, Debug)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        WorkDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn partition_dir(&self, area: &str, tp: &TopicPartition) -> PathBuf {
        self.root.join(area).join(&tp.topic).join(tp.partition.to_string())
    }

    pub fn inprogress_file(&self, tp: &TopicPartition) -> PathBuf {
        self.partition_dir("inprogress", tp).join(INPROGRESS_FILE)
    }

    /// Where a sealed file waits for compression.
    pub fn tocompress_path(&self, name: &SealedName) -> PathBuf {
        self.partition_dir(Stage::ToCompress.dir_name(), &name.tp).join(format!("{}{MAK_SUFFIX}", name.stem()))
    }

    /// Where a file compressed (and maybe encrypted) into `suffix` (`.mak.zst`...) waits for upload.
    pub fn tos3_path(&self, name: &SealedName, suffix: &str) -> PathBuf {
        self.partition_dir(Stage::ToS3.dir_name(), &name.tp).join(format!("{}{suffix}", name.stem()))
    }

    /// The files waiting for upload under `name`: one, unless a crash left a second one stored
    /// with another codec after a change of configuration.
    pub fn tos3_files(&self, name: &SealedName) -> Result<Vec<PathBuf>, FsError> {
        let dir = self.partition_dir(Stage::ToS3.dir_name(), &name.tp);
        let stem = name.stem();
        Ok(read_dir_sorted(&dir)?
            .into_iter()
            .filter(|path| {
                let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                split_archive_suffix(file).is_some_and(|(s, _)| s == stem)
            })
            .collect())
    }

    pub fn uploaded_marker(&self, tp: &TopicPartition) -> PathBuf {
        self.partition_dir("state", tp).join("uploaded_through")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    pub fn legacy_list(&self) -> PathBuf {
        self.state_dir().join("legacy")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join(".kafkatos3.lock")
    }

    pub fn stage_dir(&self, stage: Stage) -> PathBuf {
        self.root.join(stage.dir_name())
    }

    /// Moves a partition's file out of the pipeline to `orphaned/<topic>/<partition>/<stamp>-<file>`,
    /// where nothing deletes or uploads it: the safe place for data whose fate needs a human (or
    /// a later `verify`). Returns where it went.
    pub fn set_aside(&self, tp: &TopicPartition, path: &Path) -> Result<PathBuf, FsError> {
        let file_name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let target = self.partition_dir("orphaned", tp).join(format!("{stamp}-{file_name}"));
        crate::local::durable::rename_durable(path, &target)?;
        Ok(target)
    }

    /// Every `<area>/<topic>/<partition>/<file>` below one area, as (topic partition, path).
    fn walk_area(&self, area: &Path) -> Result<Vec<(TopicPartition, PathBuf)>, FsError> {
        let mut found = Vec::new();
        for topic_dir in read_dir_sorted(area)? {
            if !topic_dir.is_dir() {
                continue;
            }
            let Some(topic) = topic_dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            for partition_dir in read_dir_sorted(&topic_dir)? {
                let partition = partition_dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok());
                let (Some(partition), true) = (partition, partition_dir.is_dir()) else {
                    continue;
                };
                for file in read_dir_sorted(&partition_dir)? {
                    found.push((TopicPartition::new(topic, partition), file));
                }
            }
        }
        Ok(found)
    }

    /// Sealed files of one stage. Temporary files (`*.tmp`) and foreign names are skipped here;
    /// recovery deals with them.
    pub fn list_sealed(&self, stage: Stage) -> Result<Vec<SealedFile>, FsError> {
        let mut files = Vec::new();
        for (tp, path) in self.walk_area(&self.stage_dir(stage))? {
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !stage.holds(file_name) {
                continue;
            }
            match SealedName::parse(file_name) {
                Some(name) if name.tp == tp => files.push(SealedFile { path, name, stage }),
                _ => {
                    tracing::warn!(path = %path.display(), "ignoring a file whose name is not <topic>-<partition>_<start>-<end>_<yymmdd>")
                }
            }
        }
        Ok(files)
    }

    /// Sealed files of one partition in both stages, ordered by start offset.
    pub fn list_sealed_for(&self, tp: &TopicPartition) -> Result<Vec<SealedFile>, FsError> {
        let mut files = Vec::new();
        for stage in [Stage::ToCompress, Stage::ToS3] {
            let dir = self.partition_dir(stage.dir_name(), tp);
            for path in read_dir_sorted(&dir)? {
                let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if !stage.holds(file_name) {
                    continue;
                }
                if let Some(name) = SealedName::parse(file_name).filter(|n| &n.tp == tp) {
                    files.push(SealedFile { path, name, stage });
                }
            }
        }
        files.sort_by_key(|f| (f.name.start, f.name.end));
        Ok(files)
    }

    /// The open in-progress files, one per partition that has one.
    pub fn list_inprogress(&self) -> Result<Vec<(TopicPartition, PathBuf)>, FsError> {
        let area = self.root.join("inprogress");
        Ok(self
            .walk_area(&area)?
            .into_iter()
            .filter(|(_, path)| path.file_name().is_some_and(|n| n == INPROGRESS_FILE))
            .collect())
    }

    /// How many files each area holds and their bytes (`inprogress`, `tocompress`, `tos3`): the
    /// local backlog as an operator sees it (`kafkatos3_files`). A file that goes while it is
    /// counted is skipped.
    pub fn area_usage(&self) -> Result<Vec<(&'static str, u64, u64)>, FsError> {
        let mut usage = Vec::with_capacity(3);
        for area in ["inprogress", "tocompress", "tos3"] {
            let (mut files, mut bytes) = (0, 0);
            for (_, path) in self.walk_area(&self.root.join(area))? {
                if let Ok(meta) = fs::metadata(&path) {
                    files += 1;
                    bytes += meta.len();
                }
            }
            usage.push((area, files, bytes));
        }
        Ok(usage)
    }

    /// Every file below the inprogress, tocompress and tos3 areas, for recovery's clean-up pass.
    pub fn list_all_stage_files(&self) -> Result<Vec<PathBuf>, FsError> {
        let mut all = Vec::new();
        for area in ["inprogress", "tocompress", "tos3"] {
            all.extend(self.walk_area(&self.root.join(area))?.into_iter().map(|(_, path)| path));
        }
        Ok(all)
    }
}

/// Directory entries sorted by name; a missing directory is empty.
fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, FsError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(FsError::new("read directory", dir, e)),
    };
    let mut paths = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FsError::new("read directory", dir, e))?;
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::GZ_SUFFIX;

    #[test]
    fn list_sealed_for_orders_files_of_both_stages_by_offset() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("t", 0);
        for (stage, start, end) in [(Stage::ToS3, 0, 9), (Stage::ToCompress, 20, 29), (Stage::ToS3, 10, 19)] {
            let name = SealedName { tp: tp.clone(), start, end, date: "240101".into() };
            let path = match stage {
                Stage::ToCompress => work.tocompress_path(&name),
                Stage::ToS3 => work.tos3_path(&name, GZ_SUFFIX),
            };
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"").unwrap();
        }
        let starts: Vec<i64> = work.list_sealed_for(&tp).unwrap().iter().map(|f| f.name.start).collect();
        assert_eq!(starts, vec![0, 10, 20]);
    }

    #[test]
    fn a_file_set_aside_keeps_its_name_under_orphaned_and_its_partition() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let tp = TopicPartition::new("my-topic", 7);
        let file = work.inprogress_file(&tp);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, b"data").unwrap();
        let moved = work.set_aside(&tp, &file).unwrap();
        assert!(moved.starts_with(dir.path().join("orphaned/my-topic/7")), "{}", moved.display());
        assert!(moved.to_string_lossy().ends_with("-data.mak"));
        assert!(!file.exists() && moved.exists());
    }
}
