//! Where a partition's objects live and what they are called.
//!
//! A partition's folder `<prefix>/<topic>/<partition>/` holds two kinds of keys:
//! - data objects, `<topic>-<partition>_<first>-<last>.mak<codec suffix>[.age]`, both offsets
//!   zero-padded to 20 digits so that keys sort by offset;
//! - claims, `<topic>-<partition>_<first>.claim` (see [`super::claim`]).
//!
//! Objects uploaded by the Python original keep its name, `<topic>-<partition>_<first>-<last>_<yymmdd>.mak.gz`,
//! and have no claim.

use mak::codec::Codec;
use object_store::path::Path as ObjectPath;

use crate::names::{split_archive_suffix, SealedName, TopicPartition, AGE_SUFFIX, GZ_SUFFIX, MAK_SUFFIX};

/// The file name suffix of claims.
pub const CLAIM_SUFFIX: &str = ".claim";

/// The key prefix of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    prefix: String,
}

impl Location {
    pub fn new(prefix: &str) -> Self {
        Location { prefix: prefix.trim_matches('/').to_string() }
    }

    /// The prefix, without leading or trailing `/` (empty: the whole bucket).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/<rest>`.
    pub fn key(&self, rest: String) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rest)
        } else {
            ObjectPath::from(format!("{}/{rest}", self.prefix))
        }
    }

    /// What to list for the whole archive: the prefix, or None for a whole bucket.
    pub fn root(&self) -> Option<ObjectPath> {
        (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()))
    }

    /// `<prefix>/<topic>`: every partition folder of the topic is directly below it.
    pub fn topic_dir(&self, topic: &str) -> ObjectPath {
        self.key(topic.to_string())
    }

    /// `<prefix>/<topic>/<partition>`: every object and claim of the partition is directly below it.
    pub fn partition_dir(&self, tp: &TopicPartition) -> ObjectPath {
        self.key(format!("{}/{}", tp.topic, tp.partition))
    }

    /// The key of the data object holding `name`'s offsets, stored with `suffix` (`.mak.zst`...).
    pub fn object_key(&self, name: &SealedName, suffix: &str) -> ObjectPath {
        self.key(format!("{}/{}/{}", name.tp.topic, name.tp.partition, object_file_name(name, suffix)))
    }

    /// The key of a file named `file_name` in the partition's folder (a claim's object).
    pub fn key_in(&self, tp: &TopicPartition, file_name: &str) -> ObjectPath {
        self.key(format!("{}/{}/{file_name}", tp.topic, tp.partition))
    }

    /// The key of the claim on the partition's offsets from `start` on.
    pub fn claim_key(&self, tp: &TopicPartition, start: i64) -> ObjectPath {
        self.key_in(tp, &claim_file_name(tp, start))
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
    /// How the object is stored, as its suffix says (the original's: gzip).
    pub codec: Codec,
    pub encrypted: bool,
    /// Named by the Python original (`_<first>-<last>_<yymmdd>.mak.gz`, no claim).
    pub original: bool,
}

/// Parses a claim's or a data object's file name, in either naming.
pub fn parse_file_name(file: &str) -> Option<ArchiveKey> {
    if let Some(stem) = file.strip_suffix(CLAIM_SUFFIX) {
        let (tp, start) = split_padded(stem)?;
        return Some(ArchiveKey::Claim { tp, start });
    }
    let (stem, suffix) = split_archive_suffix(file)?;
    let (plain, encrypted) = suffix.strip_suffix(AGE_SUFFIX).map_or((suffix, false), |plain| (plain, true));
    let codec_suffix = plain.strip_prefix(MAK_SUFFIX)?;
    let codec = *Codec::ALL.iter().find(|codec| codec.suffix() == codec_suffix)?;
    if let Some(original) = SealedName::parse(file).filter(|_| file.ends_with(GZ_SUFFIX)) {
        let name =
            ObjectName { tp: original.tp, start: original.start, end: original.end, codec, encrypted, original: true };
        return Some(ArchiveKey::Object(name));
    }
    let (rest, end) = stem.rsplit_once('-')?;
    let end = padded_offset(end)?;
    let (tp, start) = split_padded(rest)?;
    (end >= start).then_some(ArchiveKey::Object(ObjectName { tp, start, end, codec, encrypted, original: false }))
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sealed(topic: &str, partition: i32, start: i64, end: i64) -> SealedName {
        SealedName { tp: TopicPartition::new(topic, partition), start, end, date: "261130".into() }
    }

    #[test]
    fn keys_name_the_partition_and_the_zero_padded_offsets() {
        let name = sealed("my-topic_x", 3, 42, 99);
        let at = Location::new("archive/");
        assert_eq!(
            at.object_key(&name, ".mak.zst").as_ref(),
            "archive/my-topic_x/3/my-topic_x-3_00000000000000000042-00000000000000000099.mak.zst"
        );
        assert_eq!(at.claim_key(&name.tp, 42).as_ref(), "archive/my-topic_x/3/my-topic_x-3_00000000000000000042.claim");
        assert_eq!(
            Location::new("").object_key(&sealed("t", 0, 0, 0), ".mak.gz.age").as_ref(),
            "t/0/t-0_00000000000000000000-00000000000000000000.mak.gz.age"
        );
    }

    #[test]
    fn every_naming_parses_and_must_agree_with_its_folder() {
        let at = Location::new("p");
        let tp = TopicPartition::new("t-1", 0);
        let name = |start, end, codec, encrypted, original| ObjectName {
            tp: tp.clone(),
            start,
            end,
            codec,
            encrypted,
            original,
        };
        let ours = at.parse_key("p/t-1/0/t-1-0_00000000000000000100-00000000000000000199.mak.lz4").unwrap();
        assert_eq!(ours, ArchiveKey::Object(name(100, 199, Codec::Lz4, false, false)));
        let encrypted = at.parse_key("p/t-1/0/t-1-0_00000000000000000100-00000000000000000199.mak.age").unwrap();
        assert_eq!(encrypted, ArchiveKey::Object(name(100, 199, Codec::None, true, false)));
        let claim = at.parse_key("p/t-1/0/t-1-0_00000000000000000100.claim").unwrap();
        assert_eq!(claim, ArchiveKey::Claim { tp: tp.clone(), start: 100 });
        let original = at.parse_key("p/t/2/t-2_5-9_160811.mak.gz").unwrap();
        let tp = TopicPartition::new("t", 2);
        assert_eq!(
            original,
            ArchiveKey::Object(ObjectName {
                tp,
                start: 5,
                end: 9,
                codec: Codec::Gzip,
                encrypted: false,
                original: true
            })
        );
        assert!(at.parse_key("p/t/1/t-2_5-9_160811.mak.gz").is_none(), "folder disagrees");
        assert!(at.parse_key("q/t/0/t-0_00000000000000000100.claim").is_none(), "other prefix");
        assert!(at.parse_key("p/t/0/t-0_100.claim").is_none(), "unpadded is not ours");
        assert!(at.parse_key("p/t/0/t-0_00000000000000000100-00000000000000000099.mak").is_none(), "end before start");
        assert!(at.parse_key("p/t/0/t-0_00000000000000000100-00000000000000000199.mak.bz2").is_none(), "no such codec");
    }

    #[test]
    fn keys_sort_by_offset() {
        let at = Location::new("p");
        let tp = TopicPartition::new("t", 0);
        let (a, b) = (at.claim_key(&tp, 999), at.claim_key(&tp, 1000));
        assert!(a.as_ref() < b.as_ref());
        let (a, b) =
            (at.object_key(&sealed("t", 0, 999, 999), ".mak"), at.object_key(&sealed("t", 0, 1000, 1000), ".mak"));
        assert!(a.as_ref() < b.as_ref());
    }
}
