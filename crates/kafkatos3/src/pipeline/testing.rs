//! Test fixtures for the stages: working-directory files as the earlier stages leave them.

use std::path::PathBuf;

use crate::archive::testing::object_bytes;
use crate::local::layout::WorkDir;
use crate::names::{SealedName, TopicPartition};

/// A sealed, gzipped file of `tp` holding `start..=end` in `work`'s `tos3/`, as the compressors
/// leave it.
pub fn tos3_file(work: &WorkDir, tp: &TopicPartition, start: i64, end: i64) -> PathBuf {
    let name = SealedName { tp: tp.clone(), start, end, date: "261206".into() };
    let path = work.tos3_path(&name, ".mak.gz");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, object_bytes(tp, start, end)).unwrap();
    path
}
