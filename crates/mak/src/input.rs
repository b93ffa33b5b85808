//! The input of the version 2 and 3 readers: a buffered source that knows the byte position it is
//! at, so every error names one, and that never allocates for a length it has not seen bytes for.

use std::io::{self, BufReader, Read};

use crate::error::{Field, ReadError};

/// Capacity of the internal read buffer.
const READ_BUFFER: usize = 64 * 1024;
/// Without a size limit, buffers grow by at most this much (or by doubling) at a time, so
/// memory follows the bytes that actually arrive rather than a length prefix.
const GROW_STEP: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Input<R> {
    source: BufReader<R>,
    /// Bytes consumed so far.
    pub(crate) position: u64,
    /// Size limit given by the caller; buffers may then be sized from length prefixes at once.
    pub(crate) size_limit: Option<u64>,
}

impl<R: Read> Input<R> {
    pub(crate) fn new(reader: R, size_limit: Option<u64>) -> Self {
        Input { source: BufReader::with_capacity(READ_BUFFER, reader), position: 0, size_limit }
    }

    /// The size limit, or no limit.
    pub(crate) fn limit(&self) -> u64 {
        self.size_limit.unwrap_or(u64::MAX)
    }

    /// The underlying stream, positioned after the last byte consumed (buffered bytes kept).
    pub(crate) fn into_inner(self) -> BufReader<R> {
        self.source
    }

    /// Fills `buf` completely from the source.
    pub(crate) fn read_exact(&mut self, buf: &mut [u8], field: Field) -> Result<(), ReadError> {
        let position = self.position;
        let mut filled = 0usize;
        while filled < buf.len() {
            let n = read_some(&mut self.source, &mut buf[filled..])
                .map_err(|source| ReadError::Io { position: position.saturating_add(filled as u64), source })?;
            if n == 0 {
                let needed = buf.len() as u64;
                return Err(ReadError::Truncated { position, field, needed, available: filled as u64 });
            }
            filled += n;
        }
        self.position = position.saturating_add(buf.len() as u64);
        Ok(())
    }

    /// Reads `len` bytes into `buf` (which keeps its capacity between calls). The length was
    /// checked against the write position or size limit; without a size limit the buffer only
    /// grows as bytes arrive, so a lying length reserves nothing.
    pub(crate) fn read_vec(&mut self, buf: &mut Vec<u8>, len: usize, field: Field) -> Result<(), ReadError> {
        let position = self.position;
        let bounded = self.size_limit.is_some();
        let mut filled = 0usize;
        while filled < len {
            if filled == buf.len() {
                let target = if bounded { len } else { len.min(buf.len().saturating_mul(2).max(GROW_STEP)) };
                buf.resize(target, 0);
            }
            let end = buf.len().min(len);
            let n = read_some(&mut self.source, &mut buf[filled..end])
                .map_err(|source| ReadError::Io { position: position.saturating_add(filled as u64), source })?;
            if n == 0 {
                let needed = len as u64;
                return Err(ReadError::Truncated { position, field, needed, available: filled as u64 });
            }
            filled += n;
        }
        self.position = position.saturating_add(len as u64);
        Ok(())
    }
}

/// One `read`, retried on `Interrupted`.
fn read_some(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match source.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
