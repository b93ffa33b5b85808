//! The append side both writer versions share: the file is only ever extended through one
//! in-memory buffer, so appending a record costs a copy, not a syscall.

use std::fs::File;
use std::io::{self, Write};

/// Bytes collected before one `write` to the file.
const BUFFER_CAPACITY: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Appender {
    pub(crate) file: File,
    buf: Vec<u8>,
    /// Bytes handed to the file (the file length without `buf`).
    written: u64,
}

impl Appender {
    /// Appends to `file`, whose length is `written`.
    pub(crate) fn new(file: File, written: u64) -> Self {
        Appender { file, buf: Vec::with_capacity(BUFFER_CAPACITY), written }
    }

    /// The file's length without the buffered bytes.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The file's length including the buffered bytes.
    pub(crate) fn len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Copies `bytes` into the buffer, writing the buffer out first if they do not fit and
    /// writing `bytes` directly if they are larger than the whole buffer.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() > self.buf.capacity() - self.buf.len() {
            self.flush()?;
            if bytes.len() > self.buf.capacity() {
                self.file.write_all(bytes)?;
                self.written += bytes.len() as u64;
                return Ok(());
            }
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes the buffer to the file (no sync).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}
