//! The archive in S3: where a partition's objects live, what they are called, and how far S3
//! already holds a partition (its *frontier*).
//!
//! A partition's folder `<prefix>/<topic>/<partition>/` holds two kinds of keys:
//! - data objects, `<topic>-<partition>_<first>-<last>.mak<codec suffix>[.age]` with both
//!   offsets zero-padded to 20 digits (keys sort by offset), written whatever is there;
//! - claims, `<topic>-<partition>_<first>.claim`: a few bytes of JSON naming the one data object
//!   that holds the partition from `first` on, and its last offset. A claim is created once
//!   (`If-None-Match: *`) and never changed: it is the fence. Two files that start at the same
//!   offset - the only way two instances can overlap, see docs/design.md - compete for one claim
//!   key whatever their last offsets, codecs or encryption, and exactly one wins. The loser
//!   deletes its data object (no claim names it) and gives way.
//!
//! A data object counts once its claim names it: it is written before its claim, so a claim
//! never names a missing object, and an object left unclaimed by a crash or a lost race is not
//! part of the archive (`verify` lists such objects). Claims are plain text even when the data
//! is encrypted, so the frontier and `verify` need no key. Objects uploaded by the Python
//! original are named `<topic>-<partition>_<first>-<last>_<yymmdd>.mak.gz`, have no claim,
//! and are read alike.

pub mod store;

use std::io::Read;

use futures::TryStreamExt;
use mak::AnyReader;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::names::{split_archive_suffix, SealedName, TopicPartition, GZ_SUFFIX};

/// The file name suffix of claims.
pub const CLAIM_SUFFIX: &str = ".claim";

/// Compressed bytes fetched to read a header: the MAK header is the first few hundred bytes of
/// the stream, which every codec keeps in its first block.
pub const HEADER_FETCH: u64 = 64 * 1024;

/// A claim larger than this is not one of ours.
const CLAIM_MAX: u64 = 64 * 1024;

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

    /// `<prefix>/<topic>/<partition>`: every object and claim of the partition is directly below it.
    pub fn partition_dir(&self, tp: &TopicPartition) -> ObjectPath {
        self.key(format!("{}/{}", tp.topic, tp.partition))
    }

    /// The key of the data object holding `name`'s offsets, stored with `suffix` (`.mak.zst`...).
    pub fn object_key(&self, name: &SealedName, suffix: &str) -> ObjectPath {
        self.key(format!("{}/{}/{}", name.tp.topic, name.tp.partition, object_file_name(name, suffix)))
    }

    /// The key of the claim on the partition's offsets from `start` on.
    pub fn claim_key(&self, tp: &TopicPartition, start: i64) -> ObjectPath {
        self.key(format!("{}/{}/{}", tp.topic, tp.partition, claim_file_name(tp, start)))
    }

    /// The original's key of a file adopted from the Python daemon, which keeps its name.
    pub fn original_key(&self, name: &SealedName) -> ObjectPath {
        self.key(format!("{}/{}/{}{GZ_SUFFIX}", name.tp.topic, name.tp.partition, name.stem()))
    }

    /// What an object key under this prefix is, if it is an archive key.
    pub fn parse_key(&self, key: &str) -> Option<ArchiveKey> {
        let rest = if self.prefix.is_empty() { key } else { key.strip_prefix(&self.prefix)?.strip_prefix('/')? };
        let mut parts = rest.split('/');
        let (topic, partition, file) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let parsed = parse_file_name(file)?;
        let tp = parsed.tp();
        (tp.topic == topic && tp.partition.to_string() == partition).then_some(parsed)
    }
}

/// `<topic>-<partition>_<first, 20 digits>-<last, 20 digits><suffix>`.
pub fn object_file_name(name: &SealedName, suffix: &str) -> String {
    format!("{}-{}_{:020}-{:020}{suffix}", name.tp.topic, name.tp.partition, name.start, name.end)
}

/// `<topic>-<partition>_<first, 20 digits>.claim`.
pub fn claim_file_name(tp: &TopicPartition, start: i64) -> String {
    format!("{}-{}_{start:020}{CLAIM_SUFFIX}", tp.topic, tp.partition)
}

/// An archive key, as its name tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveKey {
    Object(ObjectName),
    Claim { tp: TopicPartition, start: i64 },
}

impl ArchiveKey {
    pub fn tp(&self) -> &TopicPartition {
        match self {
            ArchiveKey::Object(name) => &name.tp,
            ArchiveKey::Claim { tp, .. } => tp,
        }
    }
}

/// A data object as its key names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub tp: TopicPartition,
    pub start: i64,
    pub end: i64,
    /// Named by the Python original (`_<first>-<last>_<yymmdd>.mak.gz`, no claim).
    pub original: bool,
}

/// Parses a claim's or a data object's file name, in either naming.
pub fn parse_file_name(file: &str) -> Option<ArchiveKey> {
    if let Some(stem) = file.strip_suffix(CLAIM_SUFFIX) {
        let (tp, start) = split_padded(stem)?;
        return Some(ArchiveKey::Claim { tp, start });
    }
    if let Some(original) = SealedName::parse(file).filter(|_| file.ends_with(GZ_SUFFIX)) {
        let name = ObjectName { tp: original.tp, start: original.start, end: original.end, original: true };
        return Some(ArchiveKey::Object(name));
    }
    let (stem, _suffix) = split_archive_suffix(file)?;
    let (rest, end) = stem.rsplit_once('-')?;
    let end = padded_offset(end)?;
    let (tp, start) = split_padded(rest)?;
    (end >= start).then_some(ArchiveKey::Object(ObjectName { tp, start, end, original: false }))
}

/// `<topic>-<partition>_<offset, 20 digits>`.
fn split_padded(stem: &str) -> Option<(TopicPartition, i64)> {
    let (rest, offset) = stem.rsplit_once('_')?;
    let offset = padded_offset(offset)?;
    let (topic, partition) = rest.rsplit_once('-')?;
    let tp = TopicPartition::new(topic, partition.parse().ok()?);
    (!tp.topic.is_empty() && tp.partition >= 0).then_some((tp, offset))
}

fn padded_offset(digits: &str) -> Option<i64> {
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// The body of a claim: which data object holds the partition from `first` to `last`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub topic: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    /// The data object's file name, in the same folder.
    pub object: String,
}

impl Claim {
    pub fn new(name: &SealedName, suffix: &str) -> Claim {
        Claim {
            topic: name.tp.topic.clone(),
            partition: name.tp.partition,
            first: name.start,
            last: name.end,
            object: object_file_name(name, suffix),
        }
    }

    pub fn tp(&self) -> TopicPartition {
        TopicPartition::new(&self.topic, self.partition)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("a claim serializes");
        bytes.push(b'\n');
        bytes
    }
}

/// The claim at `key`, or None when there is none (one GET of a few bytes).
pub async fn read_claim(store: &dyn ObjectStore, key: &ObjectPath) -> Result<Option<Claim>, ArchiveError> {
    let result = match store.get(key).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(source) => return Err(store_error(key, source)),
    };
    let unreadable = |problem: String| ArchiveError::Unreadable { key: key.to_string(), problem };
    if result.meta.size > CLAIM_MAX {
        return Err(unreadable(format!("{} bytes: too large for a claim", result.meta.size)));
    }
    let bytes = result.bytes().await.map_err(|source| store_error(key, source))?;
    let claim: Claim = serde_json::from_slice(&bytes).map_err(|e| unreadable(format!("not a claim: {e}")))?;
    if claim.last < claim.first {
        return Err(unreadable(format!("claims offsets {} to {}", claim.first, claim.last)));
    }
    Ok(Some(claim))
}

/// What an object's MAK header says it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHeader {
    pub tp: TopicPartition,
    pub start: i64,
    /// The last offset written: version 1's last-offset header field, version 2's progress block.
    pub end: i64,
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

fn store_error(key: &ObjectPath, source: object_store::Error) -> ArchiveError {
    ArchiveError::Store { key: key.to_string(), source }
}

/// The claim on the partition from `start`, checked to be the one its key names.
pub async fn chain_link(
    store: &dyn ObjectStore,
    at: &Location,
    tp: &TopicPartition,
    start: i64,
) -> Result<Option<Claim>, ArchiveError> {
    let key = at.claim_key(tp, start);
    let Some(claim) = read_claim(store, &key).await? else {
        return Ok(None);
    };
    if claim.tp() != *tp || claim.first != start {
        return Err(ArchiveError::Unreadable {
            key: key.to_string(),
            problem: format!("claims {} from offset {}, not what its key names", claim.tp(), claim.first),
        });
    }
    Ok(Some(claim))
}

/// The first offset at or after `from` that S3 does not hold for the partition, following the
/// chain of claims that start where the previous one ended: one small GET per claim found, and
/// one answered "not found" at the end. `from` must be a point of the chain (a committed offset or
/// the end of an uploaded file plus one), which every offset this daemon resumes at is.
pub async fn frontier(
    store: &dyn ObjectStore,
    at: &Location,
    tp: &TopicPartition,
    from: i64,
) -> Result<i64, ArchiveError> {
    let mut next = from;
    while let Some(claim) = chain_link(store, at, tp, next).await? {
        next = claim.last + 1;
    }
    Ok(next)
}

/// One past the highest offset any object of the partition holds, or None when S3 holds none:
/// for a partition nothing else is known about (no committed offset, no local state). Lists
/// the partition's own folder only, then reads the last claim.
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
    let mut end: Option<i64> = None;
    let mut last_claim: Option<i64> = None;
    for key in listed.iter().filter_map(|meta| at.parse_key(meta.location.as_ref())).filter(|k| k.tp() == tp) {
        match key {
            // The original's objects have no claims: their names tell their offsets.
            ArchiveKey::Object(name) if name.original => end = Some(end.map_or(name.end, |x| x.max(name.end))),
            ArchiveKey::Object(_) => {}
            ArchiveKey::Claim { start, .. } => last_claim = Some(last_claim.map_or(start, |x| x.max(start))),
        }
    }
    if let Some(start) = last_claim {
        let key = at.claim_key(tp, start);
        let claim = chain_link(store, at, tp, start)
            .await?
            .ok_or_else(|| ArchiveError::Unreadable { key: key.to_string(), problem: "listed but not found".into() })?;
        end = Some(end.map_or(claim.last, |x| x.max(claim.last)));
    }
    // The chain may go on past the last listed object if one was created meanwhile.
    match end {
        Some(end) => Ok(Some(frontier(store, at, tp, end + 1).await?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests;
