//! `kafkatos3_rotate`: seals every in-progress file of a working directory into `tocompress/`,
//! as the original's tool did. It takes the directory lock, so it refuses while a daemon runs.

use std::fmt;
use std::path::PathBuf;

use crate::local::layout::WorkDir;
use crate::local::seal::{self, SealError};
use crate::names::{SealedName, TopicPartition};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    #[error(transparent)]
    Lock(#[from] crate::local::lock::LockError),
    #[error(transparent)]
    Fs(#[from] crate::local::durable::FsError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// What was done with one in-progress file; its `Display` is the line the tool prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    Sealed {
        from: PathBuf,
        name: SealedName,
        bytes: u64,
    },
    /// The file holds no records: left in place.
    Empty {
        tp: TopicPartition,
    },
}

impl fmt::Display for Rotated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rotated::Sealed { from, name, bytes } => write!(
                f,
                "sealed {} -> tocompress/{}/{}/{}.mak ({bytes} bytes)",
                from.display(),
                name.tp.topic,
                name.tp.partition,
                name.stem()
            ),
            Rotated::Empty { tp } => write!(f, "skipping {tp}: no records"),
        }
    }
}

/// Seals every in-progress file, telling `each` what became of it as it goes (so that what was
/// done before a failure is known); returns how many were sealed.
pub fn rotate_all(work: &WorkDir, mut each: impl FnMut(&Rotated)) -> Result<usize, RotateError> {
    let _lock = crate::local::lock::lock_working_directory(work)?;
    let mut sealed = 0;
    for (tp, path) in work.list_inprogress()? {
        let outcome = match seal::seal_existing(work, &tp)? {
            Some((name, bytes)) => {
                sealed += 1;
                Rotated::Sealed { from: path, name, bytes }
            }
            None => Rotated::Empty { tp },
        };
        each(&outcome);
    }
    Ok(sealed)
}
