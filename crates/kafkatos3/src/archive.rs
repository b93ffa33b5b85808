//! The archive in S3: where a partition's objects live, what they are called, and how far S3
//! already holds a partition (its *frontier*).
//!
//! An object's key names its partition and its first offset only:
//! `<prefix>/<topic>/<partition>/<topic>-<partition>_<first offset, 20 digits>.mak.gz`. The last
//! offset is in the object's MAK header. Keys therefore sort by offset, a retry of the same file
//! writes the same key, and two files that start at the same offset - the only way two
//! instances can overlap, see docs/design.md - compete for one key that S3 creates once
//! (`If-None-Match: *`). Objects uploaded by the Python original, or by kafkatos3 before 0.4,
//! are named `<topic>-<partition>_<first>-<last>_<yymmdd>.mak.gz` and are read alike.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use futures::TryStreamExt;
use mak::AnyReader;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::layout::{SealedName, TopicPartition, GZ_SUFFIX};

/// Folder under the prefix where multipart uploads are assembled before their conditional copy
/// to the final key. A lifecycle rule may expire it (see the README).
pub const INCOMING: &str = "_incoming";

/// Compressed bytes fetched to read a header: the MAK header is the first few hundred bytes of
/// the stream, which gzip keeps in its first block.
pub const HEADER_FETCH: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("s3 object {key}: {source}")]
    Store { key: String, source: object_store::Error },
    #[error("s3 object {key}: {problem}")]
    Unreadable { key: String, problem: String },
}

/// The key prefix of an archive.
#[derive(Debug, Clone)]
pub struct Location {
    prefix: String,
}

impl Location {
    pub fn new(prefix: &str) -> Self {
        Location { prefix: prefix.trim_matches('/').to_string() }
    }

    fn key(&self, rest: String) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rest)
        } else {
            ObjectPath::from(format!("{}/{rest}", self.prefix))
        }
    }

    /// `<prefix>/<topic>/<partition>`: every object of the partition is directly below it.
    pub fn partition_dir(&self, tp: &TopicPartition) -> ObjectPath {
        self.key(format!("{}/{}", tp.topic, tp.partition))
    }

    /// The key of the object whose first offset is `start`.
    pub fn object_key(&self, tp: &TopicPartition, start: i64) -> ObjectPath {
        self.key(format!("{}/{}/{}", tp.topic, tp.partition, file_name(tp, start)))
    }

    /// Where a multipart upload of that object is assembled.
    pub fn staging_key(&self, tp: &TopicPartition, start: i64) -> ObjectPath {
        self.key(format!("{INCOMING}/{}", file_name(tp, start)))
    }

    /// The original's key of a file adopted from the Python daemon, which keeps its name.
    pub fn original_key(&self, name: &SealedName) -> ObjectPath {
        self.key(format!("{}/{}/{}{GZ_SUFFIX}", name.tp.topic, name.tp.partition, name.stem()))
    }

    /// The archive name of an object key under this prefix, if it is one.
    pub fn parse_key(&self, key: &str) -> Option<ObjectName> {
        let rest = if self.prefix.is_empty() { key } else { key.strip_prefix(&self.prefix)?.strip_prefix('/')? };
        let mut parts = rest.split('/');
        let (topic, partition, file) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let name = parse_file_name(file)?;
        (name.tp.topic == topic && name.tp.partition.to_string() == partition).then_some(name)
    }
}

/// `<topic>-<partition>_<start, 20 digits>.mak.gz`: zero padding makes keys sort by offset.
pub fn file_name(tp: &TopicPartition, start: i64) -> String {
    format!("{}-{}_{start:020}{GZ_SUFFIX}", tp.topic, tp.partition)
}

/// An archive object as its key names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub tp: TopicPartition,
    pub start: i64,
    /// Named by the original's keys; for ours it is in the header.
    pub end: Option<i64>,
}

/// Parses either naming: ours (first offset only) or the original's (first and last offset).
pub fn parse_file_name(file: &str) -> Option<ObjectName> {
    if let Some(original) = SealedName::parse(file).filter(|_| file.ends_with(GZ_SUFFIX)) {
        return Some(ObjectName { tp: original.tp, start: original.start, end: Some(original.end) });
    }
    let stem = file.strip_suffix(GZ_SUFFIX)?;
    let (rest, start) = stem.rsplit_once('_')?;
    if start.len() != 20 || !start.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (topic, partition) = rest.rsplit_once('-')?;
    let tp = TopicPartition::new(topic, partition.parse().ok()?);
    (!tp.topic.is_empty()).then_some(ObjectName { tp, start: start.parse().ok()?, end: None })
}

/// What an object's MAK header says it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHeader {
    pub tp: TopicPartition,
    pub start: i64,
    /// The last offset written: version 1's last-offset header field, version 2's progress block.
    pub end: i64,
}

/// Reads the MAK header (either version) from the (possibly partial) gzip bytes of an object.
pub fn header_of(bytes: &[u8]) -> Result<ObjectHeader, String> {
    let reader = AnyReader::new(MultiGzDecoder::new(bytes)).map_err(|e| format!("header: {e}"))?;
    header_from(&reader)
}

/// The range the fixed part of the file states, read before any record: enough from the
/// first 64 KiB of an object.
pub fn header_from<R: Read>(reader: &AnyReader<R>) -> Result<ObjectHeader, String> {
    let start = reader.start_offset();
    let end = reader.last_offset_hint().ok_or_else(|| match reader.version() {
        mak::Version::V1 => "last offset out of range".to_string(),
        mak::Version::V2 => "no last offset: the progress block is torn or the file is empty".to_string(),
    })?;
    if end < start {
        return Err(format!("last offset {end} before the first offset {start}"));
    }
    Ok(ObjectHeader { tp: TopicPartition::new(reader.topic(), reader.partition()), start, end })
}

/// The header of the object at `key`, or None when there is no such object (one ranged GET).
pub async fn read_header(store: &dyn ObjectStore, key: &ObjectPath) -> Result<Option<ObjectHeader>, ArchiveError> {
    let bytes = match store.get_range(key, 0..HEADER_FETCH).await {
        Ok(bytes) => bytes,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        // A store that refuses a range past the end of a small object: read it whole.
        Err(object_store::Error::Generic { .. }) | Err(object_store::Error::NotImplemented { .. }) => {
            match store.get(key).await {
                Ok(result) => result.bytes().await.map_err(|source| store_error(key, source))?,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(source) => return Err(store_error(key, source)),
            }
        }
        Err(source) => return Err(store_error(key, source)),
    };
    header_of(&bytes).map(Some).map_err(|problem| ArchiveError::Unreadable { key: key.to_string(), problem })
}

fn store_error(key: &ObjectPath, source: object_store::Error) -> ArchiveError {
    ArchiveError::Store { key: key.to_string(), source }
}

/// The header at `key`, checked to be the object its key names.
async fn chain_link(
    store: &dyn ObjectStore,
    at: &Location,
    tp: &TopicPartition,
    start: i64,
) -> Result<Option<ObjectHeader>, ArchiveError> {
    let key = at.object_key(tp, start);
    let Some(header) = read_header(store, &key).await? else {
        return Ok(None);
    };
    if header.tp != *tp || header.start != start {
        return Err(ArchiveError::Unreadable {
            key: key.to_string(),
            problem: format!(
                "holds {}:{} from offset {}, not what its key names",
                header.tp.topic, header.tp.partition, header.start
            ),
        });
    }
    Ok(Some(header))
}

/// The first offset at or after `from` that S3 does not hold for the partition, following the
/// chain of objects that start where the previous one ended: one GET per object found, and one
/// answered "not found" at the end. `from` must be a point of the chain (a committed offset or
/// the end of an uploaded file plus one), which every offset this daemon resumes at is.
pub async fn frontier(
    store: &dyn ObjectStore,
    at: &Location,
    tp: &TopicPartition,
    from: i64,
) -> Result<i64, ArchiveError> {
    let mut next = from;
    while let Some(header) = chain_link(store, at, tp, next).await? {
        next = header.end + 1;
    }
    Ok(next)
}

/// One past the highest offset any object of the partition holds, or None when S3 holds none:
/// for a partition nothing else is known about (no committed offset, no local state). Lists
/// the partition's own folder only, then reads the header of the last object.
pub async fn listed_end(
    store: &dyn ObjectStore,
    at: &Location,
    tp: &TopicPartition,
) -> Result<Option<i64>, ArchiveError> {
    let dir = at.partition_dir(tp);
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|source| ArchiveError::Store { key: format!("{dir}/"), source })?;
    let names = listed.iter().filter_map(|meta| at.parse_key(meta.location.as_ref()));
    let mut end: Option<i64> = None;
    let mut last_ours: Option<i64> = None;
    for name in names.filter(|n| n.tp == *tp) {
        match name.end {
            Some(e) => end = Some(end.map_or(e, |x| x.max(e))),
            None => last_ours = Some(last_ours.map_or(name.start, |x| x.max(name.start))),
        }
    }
    if let Some(start) = last_ours {
        let key = at.object_key(tp, start);
        let header = chain_link(store, at, tp, start)
            .await?
            .ok_or_else(|| ArchiveError::Unreadable { key: key.to_string(), problem: "listed but not found".into() })?;
        end = Some(end.map_or(header.end, |x| x.max(header.end)));
    }
    // The chain may go on past the last listed object if one was created meanwhile.
    match end {
        Some(end) => Ok(Some(frontier(store, at, tp, end + 1).await?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_partition_and_the_zero_padded_first_offset() {
        let tp = TopicPartition::new("my-topic_x", 3);
        let at = Location::new("archive/");
        assert_eq!(at.object_key(&tp, 42).as_ref(), "archive/my-topic_x/3/my-topic_x-3_00000000000000000042.mak.gz");
        assert_eq!(at.staging_key(&tp, 42).as_ref(), "archive/_incoming/my-topic_x-3_00000000000000000042.mak.gz");
        assert_eq!(
            Location::new("").object_key(&tp, 0).as_ref(),
            "my-topic_x/3/my-topic_x-3_00000000000000000000.mak.gz"
        );
    }

    #[test]
    fn both_namings_parse_and_must_agree_with_their_folders() {
        let at = Location::new("p");
        let ours = at.parse_key("p/t-1/0/t-1-0_00000000000000000100.mak.gz").unwrap();
        assert_eq!(ours, ObjectName { tp: TopicPartition::new("t-1", 0), start: 100, end: None });
        let original = at.parse_key("p/t/2/t-2_5-9_160811.mak.gz").unwrap();
        assert_eq!(original, ObjectName { tp: TopicPartition::new("t", 2), start: 5, end: Some(9) });
        assert!(at.parse_key("p/t/1/t-2_5-9_160811.mak.gz").is_none(), "folder disagrees");
        assert!(at.parse_key("p/_incoming/t-0_00000000000000000100.mak.gz").is_none());
        assert!(at.parse_key("q/t/0/t-0_00000000000000000100.mak.gz").is_none());
        assert!(at.parse_key("p/t/0/t-0_100.mak.gz").is_none(), "unpadded is not ours");
    }

    /// A sealed file of `version` with records `start..start + count` of incompressible values,
    /// gzipped: larger than the 64 KiB a header read fetches.
    fn gzipped_file(version: mak::Version, start: i64, count: i64) -> Vec<u8> {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.mak");
        let created = mak::FileStart { topic: "t", partition: 4, start_offset: start, created_secs: 1, writer: None };
        let mut writer = mak::AnyWriter::create(&path, version, &created).unwrap();
        let mut noise = 0x9e37_79b9_u32;
        for offset in start..start + count {
            let value: Vec<u8> = (0..2000)
                .map(|_| {
                    noise ^= noise << 13;
                    noise ^= noise >> 17;
                    noise ^= noise << 5;
                    noise as u8
                })
                .collect();
            let record = mak::v2::RecordRef {
                offset,
                timestamp: offset,
                timestamp_type: mak::v2::TimestampType::CreateTime,
                key: None,
                value: Some(&value),
                headers: &[("h", None)],
            };
            writer.append(&record).unwrap();
        }
        writer.seal().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&std::fs::read(&path).unwrap()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn the_range_of_either_version_is_read_from_the_first_64_kib_of_the_gzipped_object() {
        for version in [mak::Version::V1, mak::Version::V2] {
            let gz = gzipped_file(version, 100, 200);
            assert!(gz.len() as u64 > 2 * HEADER_FETCH, "{} bytes", gz.len());
            let header = header_of(&gz[..HEADER_FETCH as usize]).unwrap();
            assert_eq!(header, ObjectHeader { tp: TopicPartition::new("t", 4), start: 100, end: 299 }, "{version:?}");
        }
    }

    #[test]
    fn keys_sort_by_offset() {
        let at = Location::new("p");
        let tp = TopicPartition::new("t", 0);
        let (a, b) = (at.object_key(&tp, 999), at.object_key(&tp, 1000));
        assert!(a.as_ref() < b.as_ref());
    }
}
