//! One daemon (or rotate tool) per working directory, enforced by an flock on
//! `<working_directory>/.kafkatos3.lock` that the kernel releases when the process dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;

use crate::local::durable::{self, FsError};
use crate::local::layout::WorkDir;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{path} is locked by another kafkatos3 process (pid {holder}); refusing to touch its working directory")]
    Held { path: String, holder: String },
}

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

pub fn lock_working_directory(work: &WorkDir) -> Result<DirLock, LockError> {
    durable::create_dir_all_durable(work.root())?;
    let path = work.lock_file();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| FsError::new("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
            return Err(LockError::Held { path: path.display().to_string(), holder });
        }
        Err(TryLockError::Error(e)) => return Err(FsError::new("lock", &path, e).into()),
    }
    file.set_len(0).map_err(|e| FsError::new("truncate", &path, e))?;
    write!(file, "{}", std::process::id()).map_err(|e| FsError::new("write", &path, e))?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let _held = lock_working_directory(&work).unwrap();
        let err = lock_working_directory(&work).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
    }
}
