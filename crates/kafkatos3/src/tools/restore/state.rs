//! The restore's state file: what a re-run of the same command needs to continue exactly where a
//! killed run stopped.
//!
//! Written (fsync, rename) before the first record is produced, it holds per target partition
//! its end offset before the restore (`base`) and the last source offset the restore takes, fixed
//! at the first run so that objects archived meanwhile do not change what "the same command"
//! restores. Records go to each target partition in source order through an idempotent producer
//! that stops at its first failed batch (no gaps), so the target always holds a prefix of the
//! planned records: how many are there is the target's end minus `base`, and the re-run skips
//! that many. This holds while the restore is the only writer of its target partitions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::produce::OffsetRun;
use crate::local::durable::{write_file_durable, FsError};

/// 2: the offset map is kept once complete (1 did not keep it).
const FORMAT: u32 = 2;

/// See the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreState {
    pub format: u32,
    /// The restore's selection and mapping, as the command gave them: a re-run must be the same.
    pub command: String,
    /// By target partition (`topic:partition`); with `--repartition`, by the partition of the
    /// same number as the source's (a name only: the records go to every partition).
    pub partitions: BTreeMap<String, PartitionState>,
    /// With `--repartition`: every target partition's end offset before the restore.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, i64>,
    /// Every planned record is in the target.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// `topic:partition` the records come from.
    pub source: String,
    /// The target partition's end offset before the restore produced into it.
    pub base: i64,
    /// The last source offset this restore takes (the archive's end for it at the first run).
    pub last_source_offset: i64,
    /// The objects the first run planned to read: a re-run reads exactly these, so that it
    /// counts and skips the same records whatever the archive has become meanwhile.
    pub objects: Vec<StateObject>,
    /// Once complete: where the records went (group offsets are translated with it).
    #[serde(default)]
    pub offset_map: Vec<OffsetRun>,
}

/// One planned object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateObject {
    pub key: String,
    pub start: i64,
    pub end: i64,
    pub bytes: u64,
    /// Noted once a run has read the object to its end, so that a re-run can skip it whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<ObjectRead>,
}

/// What one object contributed to its partition's cut: the same for every run of the command
/// (same objects, same cut), so a re-run whose target already holds these records need not read
/// the object again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRead {
    /// Records of the cut in the object.
    pub records: u64,
    /// Where they went.
    pub offset_map: Vec<OffsetRun>,
    /// Whether the cut's time window had opened by the object's end.
    pub opened: bool,
}

/// The state while records are produced: objects read are noted, and the state is saved now and
/// then. Losing a note costs a re-run one object read again, nothing else.
pub struct Progress {
    /// The state, and when it was last saved (None: not yet, so the first note is saved at once).
    state: Mutex<(RestoreState, Option<Instant>)>,
    path: PathBuf,
}

impl Progress {
    /// How often noted objects are saved.
    const SAVE_EVERY: Duration = Duration::from_secs(5);

    pub fn new(state: RestoreState, path: &Path) -> Self {
        Progress { state: Mutex::new((state, None)), path: path.to_path_buf() }
    }

    /// Object number `index` of `target`'s plan has been read to its end.
    pub fn object_read(&self, target: &str, index: usize, read: ObjectRead) {
        let mut guard = self.state.lock().expect("state lock");
        let (state, saved) = &mut *guard;
        if let Some(object) = state.partitions.get_mut(target).and_then(|p| p.objects.get_mut(index)) {
            object.read = Some(read);
        }
        if saved.is_none_or(|at| at.elapsed() >= Self::SAVE_EVERY) {
            *saved = Some(Instant::now());
            if let Err(error) = state.save(&self.path) {
                tracing::warn!(%error, "noting the objects read so far (a re-run reads them again)");
            }
        }
    }

    pub fn into_state(self) -> RestoreState {
        self.state.into_inner().expect("state lock").0
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("reading the restore state {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not a restore state file ({source}); move it away or name another with --state", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("{}: written by another restore command (`{found}`); run that command to finish it, or name another file with --state", path.display())]
    OtherCommand { path: PathBuf, found: String },
    #[error("{0}")]
    Write(#[from] FsError),
    #[error("{}: {source}", path.display())]
    Path { path: PathBuf, source: std::io::Error },
    #[error("{}: names {name}, which is not topic:partition", path.display())]
    BadPartition { path: PathBuf, name: String },
}

impl RestoreState {
    pub fn new(command: String) -> Self {
        RestoreState { format: FORMAT, command, partitions: BTreeMap::new(), targets: BTreeMap::new(), complete: false }
    }

    /// The state at `path` if there is one; an error if it belongs to another command.
    pub fn load(path: &Path, command: &str) -> Result<Option<RestoreState>, StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path: path.to_path_buf(), source }),
        };
        let state: RestoreState =
            serde_json::from_str(&text).map_err(|source| StateError::Parse { path: path.to_path_buf(), source })?;
        if state.command != command {
            return Err(StateError::OtherCommand { path: path.to_path_buf(), found: state.command });
        }
        Ok(Some(state))
    }

    /// Replaces the file at `path` with this state, durably.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let absolute = std::path::absolute(path).map_err(|source| StateError::Path { path: path.into(), source })?;
        let text = serde_json::to_string_pretty(self).expect("the state is plain data");
        Ok(write_file_durable(&absolute, text.as_bytes())?)
    }
}
