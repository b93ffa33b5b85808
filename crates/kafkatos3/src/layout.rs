//! The working directory is the persistent form of every partition's state:
//!
//! ```text
//! <working_directory>/
//!   inprogress/<topic>/<partition>/data.mak             open file of a partition (being appended)
//!   tocompress/<topic>/<partition>/<name>.mak           sealed, waiting for compression
//!   tos3/<topic>/<partition>/<name>.mak.gz              compressed, waiting for upload
//!   state/<topic>/<partition>/uploaded_through          last offset known to be in S3 (contiguously)
//!   state/legacy                                        files adopted from the Python original
//!   orphaned/<topic>/<partition>/<stamp>-<file>         files that did not continue the archived offsets
//!   .kafkatos3.lock                                     held (flock) by the running daemon
//! ```
//!
//! `<name>` is `<topic>-<partition>_<start>-<end>_<yymmdd>`, end inclusive, as the original named it.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::durable::FsError;

/// A Kafka topic partition. Displayed as `topic:partition`, the original's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.topic, self.partition)
    }
}

pub const MAK_SUFFIX: &str = ".mak";
pub const GZ_SUFFIX: &str = ".mak.gz";
/// The suffix of an age-encrypted file, after the codec's.
pub const AGE_SUFFIX: &str = ".age";

/// Splits a compressed file's name into its stem and its suffix: `.mak`, then the codec's
/// (`.gz`, `.zst`, `.lz4` or none), then `.age` when encrypted. None for any other name.
pub fn split_archive_suffix(file_name: &str) -> Option<(&str, &str)> {
    let plain = file_name.strip_suffix(AGE_SUFFIX).unwrap_or(file_name);
    mak::codec::Codec::ALL.iter().find_map(|codec| {
        let stem = plain.strip_suffix(codec.suffix())?.strip_suffix(MAK_SUFFIX)?;
        Some((stem, &file_name[stem.len()..]))
    })
}
pub const INPROGRESS_FILE: &str = "data.mak";

/// The name of a sealed file: which partition and which offsets it holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SealedName {
    pub tp: TopicPartition,
    /// First offset the file covers (the position the file was started at).
    pub start: i64,
    /// Last offset written to the file, inclusive.
    pub end: i64,
    /// `yymmdd` of the day the file was sealed.
    pub date: String,
}

impl SealedName {
    pub fn stem(&self) -> String {
        format!("{}-{}_{}-{}_{}", self.tp.topic, self.tp.partition, self.start, self.end, self.date)
    }

    /// Parses `<topic>-<partition>_<start>-<end>_<yymmdd>.mak[<codec>][.age]`. Topics may
    /// themselves contain `-` and `_`, so the name is taken apart from the right.
    pub fn parse(file_name: &str) -> Option<SealedName> {
        let (stem, _) = split_archive_suffix(file_name)?;
        let (rest, date) = stem.rsplit_once('_')?;
        if date.len() != 6 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (rest, range) = rest.rsplit_once('_')?;
        let (start, end) = range.split_once('-')?;
        let (topic, partition) = rest.rsplit_once('-')?;
        let name = SealedName {
            tp: TopicPartition::new(topic, partition.parse().ok()?),
            start: start.parse().ok()?,
            end: end.parse().ok()?,
            date: date.to_string(),
        };
        (!name.tp.topic.is_empty() && name.start >= 0 && name.end >= name.start).then_some(name)
    }
}

/// Today's `yymmdd` (UTC), the date part of a sealed file's name.
pub fn today_yymmdd() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}{:02}{:02}", now.year() % 100, u8::from(now.month()), now.day())
}

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

    #[test]
    fn sealed_name_round_trips_topics_with_dashes_and_underscores() {
        let name = SealedName { tp: TopicPartition::new("my-topic_v2", 11), start: 0, end: 500, date: "160811".into() };
        assert_eq!(name.stem(), "my-topic_v2-11_0-500_160811");
        assert_eq!(SealedName::parse("my-topic_v2-11_0-500_160811.mak.gz"), Some(name.clone()));
        assert_eq!(SealedName::parse("my-topic_v2-11_0-500_160811.mak"), Some(name));
    }

    #[test]
    fn sealed_name_rejects_foreign_names() {
        for bad in ["data.mak", "t-0_5-4_160811.mak", "t-0_1-2_16081.mak", "t-x_1-2_160811.mak", "t-0_1-2_160811.txt"] {
            assert_eq!(SealedName::parse(bad), None, "{bad}");
        }
    }

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
}
