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
    /// When kept (version 2's body CRC): the CRC-32C of every byte handed to the file, extended
    /// a whole buffer at a time, which is several times faster than record by record.
    crc: Option<u32>,
}

impl Appender {
    /// Appends to `file`, whose length is `written`.
    pub(crate) fn new(file: File, written: u64) -> Self {
        Appender { file, buf: Vec::with_capacity(BUFFER_CAPACITY), written, crc: None }
    }

    /// Like [`Appender::new`], extending `crc` (the CRC of the bytes that matter so far) with
    /// every byte appended.
    pub(crate) fn with_crc(file: File, written: u64, crc: u32) -> Self {
        Appender { crc: Some(crc), ..Appender::new(file, written) }
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

    /// Copies `bytes` into the buffer, writing the buffer out first if they do not fit and
    /// writing `bytes` directly if they are larger than the whole buffer.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() > self.buf.capacity() - self.buf.len() {
            self.flush()?;
            if bytes.len() > self.buf.capacity() {
                if let Some(crc) = &mut self.crc {
                    *crc = crc32c::crc32c_append(*crc, bytes);
                }
                self.file.write_all(bytes)?;
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
        if len > self.buf.capacity() {
            return Ok(None);
        }
        if len > self.buf.capacity() - self.buf.len() {
            self.flush()?;
        }
        Ok(Some(&mut self.buf))
    }

    /// Writes the buffer to the file (no sync).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            if let Some(crc) = &mut self.crc {
                *crc = crc32c::crc32c_append(*crc, &self.buf);
            }
            self.file.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}
