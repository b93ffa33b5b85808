//! What versions 2 and 3 share before their data: the 8-byte magic, the version and the flags
//! (bytes 0..12), then, after each version's progress block, the header length, the header JSON
//! and its CRC.

use std::io::Read;

use crate::error::{Field, ReadError};
use crate::input::Input;
use crate::v2::{Header, CRC_LEN, KNOWN_FLAGS, MAGIC};

/// Bytes 0..12: magic, version, flags.
pub(crate) const PREAMBLE_LEN: usize = 12;

/// Checks the magic, that the version is `version`, and that no unknown flag is set.
pub(crate) fn check(preamble: &[u8; PREAMBLE_LEN], version: u16) -> Result<(), ReadError> {
    let (magic, rest) = preamble.split_at(MAGIC.len());
    if magic != MAGIC {
        let mut found = [0u8; 8];
        found.copy_from_slice(magic);
        return Err(ReadError::BadMagicV2 { found });
    }
    let found = u16::from_be_bytes([rest[0], rest[1]]);
    if found != version {
        return Err(ReadError::UnsupportedVersion { version: found, expected: version });
    }
    let flags = u16::from_be_bytes([rest[2], rest[3]]);
    if flags & !KNOWN_FLAGS != 0 {
        return Err(ReadError::UnknownFlags { flags });
    }
    Ok(())
}

/// The version of a file starting with the version 2 and 3 magic, from its first 10 bytes.
pub(crate) fn version_of(first: &[u8]) -> Option<u16> {
    (first.len() >= 10 && first[..MAGIC.len()] == MAGIC).then(|| u16::from_be_bytes([first[8], first[9]]))
}

/// The header and where the data starts.
pub(crate) struct Head {
    pub(crate) header: Header,
    /// Byte position of the first frame or block.
    pub(crate) data_start: u64,
    /// CRC-32C of the header length, JSON and CRC: where the body CRC starts.
    pub(crate) body_crc: u32,
}

/// Where data starts for a header JSON of `json_len` bytes whose length field is at `header_len_at`.
pub(crate) fn data_start(header_len_at: u64, json_len: u32) -> u64 {
    header_len_at + 4 + u64::from(json_len) + CRC_LEN
}

/// Reads the header length at `header_len_at` (the input is there), the header JSON and its CRC.
/// The write position of the progress block, when it checked out, must lie inside the data.
pub(crate) fn read_header<R: Read>(
    input: &mut Input<R>,
    header_len_at: u64,
    write_position: Option<u64>,
) -> Result<Head, ReadError> {
    let mut len_bytes = [0u8; 4];
    input.read_exact(&mut len_bytes, Field::HeaderLength)?;
    let header_len = u32::from_be_bytes(len_bytes);
    let data_start = data_start(header_len_at, header_len);
    let limit = input.limit();
    if data_start > limit {
        let length = u64::from(header_len);
        return Err(ReadError::LengthPastEnd { position: header_len_at, field: Field::HeaderJson, length, limit });
    }
    if let Some(write_position) = write_position {
        if write_position < data_start || write_position > limit {
            return Err(ReadError::WritePositionOutOfRange { write_position, data_start, limit });
        }
    }
    let mut json = Vec::new();
    input.read_vec(&mut json, header_len as usize, Field::HeaderJson)?;
    let crc_at = input.position;
    let mut crc_bytes = [0u8; CRC_LEN as usize];
    input.read_exact(&mut crc_bytes, Field::HeaderCrc)?;
    let stored = u32::from_be_bytes(crc_bytes);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), &json);
    if stored != computed {
        return Err(ReadError::HeaderCrc { position: crc_at, stored, computed });
    }
    let header = Header::from_json_at(&json, header_len_at + 4)?;
    Ok(Head { header, data_start, body_crc: crc32c::crc32c_append(computed, &crc_bytes) })
}

/// Creates a new file of `version` (never overwrites one) holding the preamble, the progress block
/// `encode_progress` makes for the data start, and the header, and makes it durable: the file
/// data, then the parent directory entry. Returns the file, the data start and the body CRC
/// (of the header length, JSON and CRC).
pub(crate) fn create(
    path: &std::path::Path,
    version: u16,
    header_len_at: u64,
    header: &Header,
    encode_progress: impl FnOnce(u64) -> Vec<u8>,
) -> Result<(std::fs::File, u64, u32), crate::error::WriteError> {
    use std::io::Write;

    use crate::error::{IoAction, WriteError};
    header.validate().map_err(|problem| WriteError::InvalidHeader { path: path.to_path_buf(), problem })?;
    let io_err = |action| WriteError::io(path, action);
    let json = header.to_json();
    let json_len = u32::try_from(json.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "header json longer than 4 GiB"))
        .map_err(io_err(IoAction::Create))?;
    let data_start = data_start(header_len_at, json_len);
    let mut bytes = Vec::with_capacity(data_start as usize);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes.extend_from_slice(&KNOWN_FLAGS.to_be_bytes());
    bytes.extend_from_slice(&encode_progress(data_start));
    debug_assert_eq!(bytes.len() as u64, header_len_at);
    bytes.extend_from_slice(&json_len.to_be_bytes());
    bytes.extend_from_slice(&json);
    let header_crc = crc32c::crc32c(&bytes[header_len_at as usize..]);
    bytes.extend_from_slice(&header_crc.to_be_bytes());
    let body_crc = crc32c::crc32c(&bytes[header_len_at as usize..]);

    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(io_err(IoAction::Create))?;
    file.write_all(&bytes).map_err(io_err(IoAction::Write))?;
    file.sync_data().map_err(io_err(IoAction::Sync))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    std::fs::File::open(parent).and_then(|dir| dir.sync_all()).map_err(io_err(IoAction::SyncDirectory))?;
    Ok((file, data_start, body_crc))
}
