//! `kafkatos3_rotate`: seals every in-progress file of a working directory into `tocompress/`,
//! as the original's tool did. It takes the directory lock, so it refuses while a daemon runs.

use crate::local::layout::WorkDir;
use crate::pipeline::spool::{self, SpoolError};

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Lock(#[from] crate::local::lock::LockError),
    #[error(transparent)]
    Fs(#[from] crate::local::durable::FsError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// One line per in-progress file: what was done with it.
pub fn rotate_all(work: &WorkDir, out: &mut impl std::io::Write) -> Result<usize, RotateError> {
    let _lock = crate::local::lock::lock_working_directory(work)?;
    let mut sealed = 0;
    for (tp, path) in work.list_inprogress()? {
        match spool::seal_existing(work, &tp)? {
            Some((name, bytes)) => {
                let _ = writeln!(
                    out,
                    "sealed {} -> tocompress/{}/{}/{}.mak ({bytes} bytes)",
                    path.display(),
                    tp.topic,
                    tp.partition,
                    name.stem()
                );
                sealed += 1;
            }
            None => {
                let _ = writeln!(out, "skipping {tp}: no records");
            }
        }
    }
    Ok(sealed)
}
