//! Every state change on disk goes through these helpers: write, fsync the file, rename into place,
//! fsync the directory. A crash at any point leaves either the old state or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An I/O failure tied to the path it happened on, so every log line names the file.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct FsError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl FsError {
    pub fn new(op: &'static str, path: &Path, source: io::Error) -> Self {
        FsError { op, path: path.to_path_buf(), source }
    }

    /// Disk full or quota exceeded: the caller should stop writing and retry later, not give up.
    pub fn is_out_of_space(&self) -> bool {
        io_is_out_of_space(&self.source)
    }
}

fn io_is_out_of_space(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error() || code == rustix::io::Errno::DQUOT.raw_os_error())
}

/// True when the first I/O error in `error`'s chain of sources is a full disk or quota.
pub fn is_out_of_space(error: &(dyn std::error::Error + 'static)) -> bool {
    first_io_error(error).is_some_and(io_is_out_of_space)
}

/// The first I/O error in `error`'s chain of sources (`error` included).
pub fn first_io_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut source = Some(error);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = err.source();
    }
    None
}

pub type FsResult<T> = Result<T, FsError>;

/// Makes a directory entry (creation, rename, removal) survive a crash.
pub fn fsync_dir(dir: &Path) -> FsResult<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| FsError::new("fsync directory", dir, e))
}

/// `mkdir -p`, with every newly created level made durable in its parent.
pub fn create_dir_all_durable(dir: &Path) -> FsResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(FsError::new("create directory", dir, e)),
    }
    if let Some(parent) = dir.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Moves a file that is already durable to its next state. Both directories are synced so the
/// file is never lost nor present twice after a crash.
pub fn rename_durable(from: &Path, to: &Path) -> FsResult<()> {
    let to_dir = to.parent().expect("destination has a parent directory");
    create_dir_all_durable(to_dir)?;
    fs::rename(from, to).map_err(|e| FsError::new("rename", from, e))?;
    fsync_dir(to_dir)?;
    if let Some(from_dir) = from.parent() {
        if from_dir != to_dir {
            fsync_dir(from_dir)?;
        }
    }
    Ok(())
}

/// Replaces `path` with `contents` atomically (temp file, fsync, rename, fsync directory).
pub fn write_file_durable(path: &Path, contents: &[u8]) -> FsResult<()> {
    let dir = path.parent().expect("file has a parent directory");
    create_dir_all_durable(dir)?;
    let tmp = tmp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| FsError::new("create", &tmp, e))?;
    file.write_all(contents).map_err(|e| FsError::new("write", &tmp, e))?;
    file.sync_all().map_err(|e| FsError::new("fsync", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| FsError::new("rename", &tmp, e))?;
    fsync_dir(dir)
}

/// Removes a file and makes the removal durable. A file that is already gone is not an error:
/// recovery may repeat a removal that a crash interrupted. Says whether this call removed it.
pub fn remove_durable(path: &Path) -> FsResult<bool> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(FsError::new("remove", path, e)),
    }
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    Ok(true)
}

/// The name a file takes while it is being written; recovery deletes these.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("file name").to_os_string();
    name.push(TMP_SUFFIX);
    path.with_file_name(name)
}

pub const TMP_SUFFIX: &str = ".tmp";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_durable_replaces_contents_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state");
        write_file_durable(&path, b"one").unwrap();
        write_file_durable(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn remove_durable_accepts_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        remove_durable(&dir.path().join("gone")).unwrap();
    }

    #[test]
    fn rename_durable_creates_the_destination_directory() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("x");
        fs::write(&from, b"data").unwrap();
        let to = dir.path().join("deep/er/y");
        rename_durable(&from, &to).unwrap();
        assert_eq!(fs::read(&to).unwrap(), b"data");
        assert!(!from.exists());
    }
}
