//! The append side both writer versions share: the file is only ever extended through one
//! in-memory buffer, so appending a record costs a copy, not a syscall.
//!
//! The buffer is allocated on the first byte appended and can be given back
//! ([`Appender::release`]) once written out, so a file that is open but idle holds no buffer: a
//! daemon with thousands of open files pays for the busy ones only.
//!
//! Likewise the file descriptor can be given back ([`Appender::close_file`]) once everything is
//! written out; the next operation that needs the file opens it again by its path, at the same
//! length. A daemon with ten thousand partitions then holds descriptors for the busy ones only.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// Bytes collected before one `write` to the file, unless set otherwise.
pub const DEFAULT_BUFFER_CAPACITY: usize = 64 * 1024;
/// The smallest buffer accepted: below it the `write` calls, not the copies, dominate.
pub const MIN_BUFFER_CAPACITY: usize = 4 * 1024;

#[derive(Debug)]
pub(crate) struct Appender {
    /// `None` after [`Appender::close_file`], until [`Appender::file`] opens it again.
    file: Option<File>,
    /// Where the file is opened again from.
    path: PathBuf,
    /// Empty and unallocated until the first byte is appended, and again after a release.
    buf: Vec<u8>,
    /// The size `buf` is allocated with (it never grows past it).
    capacity: usize,
    /// Bytes handed to the file (the file length without `buf`).
    written: u64,
    /// When kept (version 2's body CRC): the CRC-32C of every byte handed to the file, extended
    /// a whole buffer at a time, which is several times faster than record by record.
    crc: Option<u32>,
}

impl Appender {
    /// Appends to `file` (at `path`), whose length is `written`.
    pub(crate) fn new(file: File, path: PathBuf, written: u64) -> Self {
        Appender { file: Some(file), path, buf: Vec::new(), capacity: DEFAULT_BUFFER_CAPACITY, written, crc: None }
    }

    /// Like [`Appender::new`], extending `crc` (the CRC of the bytes that matter so far) with
    /// every byte appended.
    pub(crate) fn with_crc(file: File, path: PathBuf, written: u64, crc: u32) -> Self {
        Appender { crc: Some(crc), ..Appender::new(file, path, written) }
    }

    /// The open file, opened again (at its end) if it was closed by [`Appender::close_file`].
    /// Its length must still be what was written: anything else means it was changed behind
    /// our back, and appending would corrupt it.
    pub(crate) fn file(&mut self) -> io::Result<&mut File> {
        reopened(&mut self.file, &self.path, self.written)
    }

    /// Closes the file descriptor if nothing is buffered (and frees the buffer); true when it
    /// is closed now. The caller makes the file durable first: closing does not sync.
    pub(crate) fn close_file(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.buf = Vec::new();
        self.file = None;
        true
    }

    /// Whether the file descriptor is held.
    pub(crate) fn is_file_open(&self) -> bool {
        self.file.is_some()
    }

    /// The kept CRC including the buffered bytes; `None` when no CRC is kept.
    pub(crate) fn crc(&self) -> Option<u32> {
        self.crc.map(|crc| crc32c::crc32c_append(crc, &self.buf))
    }

    /// The file's length without the buffered bytes.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The file's length including the buffered bytes.
    pub(crate) fn len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Sets the size of the buffer from its next allocation on, at least
    /// [`MIN_BUFFER_CAPACITY`]. A buffer allocated larger is written out and released now, so
    /// lowering it bounds memory at once.
    pub(crate) fn set_capacity(&mut self, capacity: usize) -> io::Result<()> {
        self.capacity = capacity.max(MIN_BUFFER_CAPACITY);
        if self.buf.capacity() > self.capacity {
            self.release()?;
        }
        Ok(())
    }

    /// The bytes the buffer holds allocated now (0 when released).
    pub(crate) fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    /// Writes the buffer out (no sync) and frees it; the next append allocates it again.
    pub(crate) fn release(&mut self) -> io::Result<()> {
        self.flush()?;
        self.buf = Vec::new();
        Ok(())
    }

    /// Allocates the buffer if it was released: once per release, never per record.
    fn ensure_allocated(&mut self) {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(self.capacity);
        }
    }

    /// Copies `bytes` into the buffer, writing the buffer out first if they do not fit and
    /// writing `bytes` directly if they are larger than the whole buffer.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.ensure_allocated();
        if bytes.len() > self.buf.capacity() - self.buf.len() {
            self.flush()?;
            if bytes.len() > self.buf.capacity() {
                if let Some(crc) = &mut self.crc {
                    *crc = crc32c::crc32c_append(*crc, bytes);
                }
                self.file()?.write_all(bytes)?;
                self.written += bytes.len() as u64;
                return Ok(());
            }
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Makes `len` contiguous bytes of room in the buffer, writing it out first if needed, and
    /// returns the buffer to extend by at most `len` bytes (so it never reallocates); `None`
    /// when `len` is larger than the whole buffer.
    pub(crate) fn room(&mut self, len: usize) -> io::Result<Option<&mut Vec<u8>>> {
        self.ensure_allocated();
        if len > self.buf.capacity() {
            return Ok(None);
        }
        if len > self.buf.capacity() - self.buf.len() {
            self.flush()?;
        }
        Ok(Some(&mut self.buf))
    }

    /// Writes `pieces` (at most 12) after the buffered bytes in vectored writes - one system
    /// call for a whole version 3 block, however many columns it has - without copying them
    /// into the buffer.
    pub(crate) fn write_pieces<'a>(&mut self, pieces: impl IntoIterator<Item = &'a [u8]>) -> io::Result<()> {
        self.write_vectored(pieces, true)
    }

    /// [`Appender::write_pieces`] for pieces whose CRC the caller has computed already: all but
    /// the last `tail` bytes have CRC `covered` (a version 3 block and its own CRC). The body CRC
    /// is extended by combining, so the bytes are not read a second time.
    pub(crate) fn write_pieces_covered<'a>(
        &mut self,
        pieces: impl IntoIterator<Item = &'a [u8]>,
        covered: (u32, usize),
        tail: &[u8],
    ) -> io::Result<()> {
        self.flush()?;
        if let Some(crc) = &mut self.crc {
            *crc = crc32c::crc32c_append(crc32c::crc32c_combine(*crc, covered.0, covered.1), tail);
        }
        self.write_vectored(pieces, false)
    }

    fn write_vectored<'a>(&mut self, pieces: impl IntoIterator<Item = &'a [u8]>, extend_crc: bool) -> io::Result<()> {
        self.flush()?;
        let mut slices = [IoSlice::new(&[]); 12];
        let mut count = 0;
        for piece in pieces.into_iter().filter(|piece| !piece.is_empty()) {
            if let (Some(crc), true) = (&mut self.crc, extend_crc) {
                *crc = crc32c::crc32c_append(*crc, piece);
            }
            slices[count] = IoSlice::new(piece);
            count += 1;
        }
        let mut left = &mut slices[..count];
        while !left.is_empty() {
            match self.file()?.write_vectored(left) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    self.written += written as u64;
                    IoSlice::advance_slices(&mut left, written);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Writes the buffer to the file (no sync).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            if let Some(crc) = &mut self.crc {
                *crc = crc32c::crc32c_append(*crc, &self.buf);
            }
            reopened(&mut self.file, &self.path, self.written)?.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

/// `file`, opened again from `path` (at its end) when it was closed; see [`Appender::file`].
fn reopened<'a>(file: &'a mut Option<File>, path: &std::path::Path, written: u64) -> io::Result<&'a mut File> {
    if file.is_none() {
        let mut opened = OpenOptions::new().read(true).write(true).open(path)?;
        let len = opened.metadata()?.len();
        if len != written {
            return Err(io::Error::other(format!(
                "reopening {}: it is {len} bytes long, {written} were written",
                path.display()
            )));
        }
        opened.seek(SeekFrom::Start(len))?;
        *file = Some(opened);
    }
    Ok(file.as_mut().expect("opened above"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn appender() -> (tempfile::NamedTempFile, Appender) {
        let file = tempfile::NamedTempFile::new().unwrap();
        let appender = Appender::new(file.reopen().unwrap(), file.path().to_path_buf(), 0);
        (file, appender)
    }

    #[test]
    fn buffer_is_allocated_on_first_byte_and_freed_by_release() {
        let (file, mut appender) = appender();
        assert_eq!(appender.allocated(), 0, "an appender nobody wrote to holds no buffer");
        appender.put(b"hello").unwrap();
        assert_eq!(appender.allocated(), DEFAULT_BUFFER_CAPACITY);
        appender.release().unwrap();
        assert_eq!(appender.allocated(), 0);
        assert_eq!(appender.len(), 5, "released bytes are in the file, not lost");
        appender.put(b" world").unwrap();
        appender.flush().unwrap();
        let mut written = String::new();
        file.reopen().unwrap().read_to_string(&mut written).unwrap();
        assert_eq!(written, "hello world");
    }

    #[test]
    fn lowering_the_capacity_writes_out_and_frees_a_larger_buffer() {
        let (_file, mut appender) = appender();
        appender.put(&[7; 100]).unwrap();
        appender.set_capacity(8 * 1024).unwrap();
        assert_eq!(appender.allocated(), 0);
        assert_eq!(appender.written(), 100);
        appender.put(&[7; 100]).unwrap();
        assert_eq!(appender.allocated(), 8 * 1024, "reallocated at the new size");
        appender.set_capacity(1).unwrap();
        appender.put(&[7; 1]).unwrap();
        assert_eq!(appender.allocated(), MIN_BUFFER_CAPACITY, "never below the minimum");
    }
}
