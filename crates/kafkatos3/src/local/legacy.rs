//! The files of a working directory last run by the Python original (`state/legacy`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::local::durable::{self, FsError};
use crate::local::layout::WorkDir;
use crate::names::{SealedName, TopicPartition};

/// Files found in a working directory last run by the Python original. The original committed
/// offsets before uploading, so these are uploaded unconditionally (whoever owns the partition)
/// and never judged against the committed offset.
#[derive(Debug)]
pub struct Legacy {
    work: WorkDir,
    stems: Mutex<BTreeSet<String>>,
    /// Highest end offset among legacy files per partition: consumption resumes after it.
    ends: HashMap<TopicPartition, i64>,
}

impl Legacy {
    pub fn load(work: &WorkDir) -> Result<Self, FsError> {
        let path = work.legacy_list();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(FsError::new("read", &path, e)),
        };
        let stems: BTreeSet<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
        let mut ends = HashMap::new();
        for name in stems.iter().filter_map(|s| SealedName::parse(&format!("{s}.mak"))) {
            let end = ends.entry(name.tp).or_insert(name.end);
            *end = (*end).max(name.end);
        }
        Ok(Legacy { work: work.clone(), stems: Mutex::new(stems), ends })
    }

    /// Records the files of a working directory adopted from the original, durably.
    pub fn create(work: &WorkDir, names: &[SealedName]) -> Result<Self, FsError> {
        let stems: Vec<String> = names.iter().map(SealedName::stem).collect();
        durable::write_file_durable(&work.legacy_list(), lines(stems.iter().map(String::as_str)).as_bytes())?;
        Self::load(work)
    }

    pub fn contains(&self, name: &SealedName) -> bool {
        self.stems.lock().unwrap_or_else(|p| p.into_inner()).contains(&name.stem())
    }

    pub fn end_for(&self, tp: &TopicPartition) -> Option<i64> {
        self.ends.get(tp).copied()
    }

    /// Forgets an uploaded legacy file (durably, before its local copy is deleted).
    pub fn uploaded(&self, name: &SealedName) -> Result<(), FsError> {
        let mut stems = self.stems.lock().unwrap_or_else(|p| p.into_inner());
        if !stems.remove(&name.stem()) {
            return Ok(());
        }
        durable::write_file_durable(&self.work.legacy_list(), lines(stems.iter().map(String::as_str)).as_bytes())
    }
}

/// The legacy list's file format: one stem per line.
fn lines<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.fold(String::new(), |mut text, item| {
        text.push_str(item);
        text.push('\n');
        text
    })
}
