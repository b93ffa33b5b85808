//! Startup recovery: rebuilds a consistent working directory from the files alone, whatever
//! point a crash (of this daemon or of the Python original) interrupted.

use std::fs;

use crate::durable::{self, FsError, TMP_SUFFIX};
use crate::layout::{SealedName, Stage, WorkDir, GZ_SUFFIX, MAK_SUFFIX};
use crate::shared::Legacy;
use crate::spool::{self, SpoolError};

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("sealing the original's in-progress file: {0}")]
    Spool(#[from] SpoolError),
}

/// What recovery found and did.
#[derive(Debug)]
pub struct Recovery {
    pub legacy: Legacy,
    /// Bytes in `tocompress/` and `tos3/` waiting for the later stages.
    pub backlog_bytes: u64,
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
                durable::rename_durable(&path, &work.sealed_path(Stage::ToS3, &sealed))?;
            }
            continue;
        }
        if in_tocompress && name.ends_with(MAK_SUFFIX) {
            // Compression completed (the .gz is renamed into place only once durable) but the
            // crash came before the source was removed.
            if let Some(sealed) = SealedName::parse(&name) {
                if work.sealed_path(Stage::ToS3, &sealed).exists() {
                    durable::remove_durable(&path)?;
                }
            }
        }
    }
    remove_tmp_in(&work.state_dir())?;

    let legacy = if work.state_dir().is_dir() { Legacy::load(work)? } else { adopt_original(work)? };

    let mut backlog_bytes = 0;
    for stage in [Stage::ToCompress, Stage::ToS3] {
        for file in work.list_sealed(stage)? {
            backlog_bytes += fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(Recovery { legacy, backlog_bytes, removed_partial })
}

/// A working directory without our `state/` was last run by the Python original (or is new).
/// Its in-progress files are sealed as its own rotate tool would, and every sealed file is
/// listed as legacy so it is uploaded whatever the committed offsets say.
fn adopt_original(work: &WorkDir) -> Result<Legacy, RecoverError> {
    for (tp, _) in work.list_inprogress()? {
        if let Some((name, _)) = spool::seal_existing(work, &tp)? {
            tracing::info!(file = %name.stem(), "sealed the in-progress file left by the original");
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
