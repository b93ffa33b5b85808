//! The names the working directory and the archive share: a topic partition, the original's name
//! for a run of a partition's offsets (`<topic>-<partition>_<start>-<end>_<yymmdd>`, which its
//! local files and its S3 objects both carry), and the suffixes that say how a MAK file is stored.

use std::fmt;

/// A Kafka topic partition. Displayed as `topic:partition`, the original's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.topic, self.partition)
    }
}

pub const MAK_SUFFIX: &str = ".mak";
pub const GZ_SUFFIX: &str = ".mak.gz";
/// The suffix of an age-encrypted file, after the codec's.
pub const AGE_SUFFIX: &str = ".age";

/// Splits a compressed file's name into its stem and its suffix: `.mak`, then the codec's
/// (`.gz`, `.zst`, `.lz4` or none), then `.age` when encrypted. None for any other name.
pub fn split_archive_suffix(file_name: &str) -> Option<(&str, &str)> {
    let plain = file_name.strip_suffix(AGE_SUFFIX).unwrap_or(file_name);
    mak::codec::Codec::ALL.iter().find_map(|codec| {
        let stem = plain.strip_suffix(codec.suffix())?.strip_suffix(MAK_SUFFIX)?;
        Some((stem, &file_name[stem.len()..]))
    })
}

/// The name of a sealed file: which partition and which offsets it holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SealedName {
    pub tp: TopicPartition,
    /// First offset the file covers (the position the file was started at).
    pub start: i64,
    /// Last offset written to the file, inclusive.
    pub end: i64,
    /// `yymmdd` of the day the file was sealed.
    pub date: String,
}

impl SealedName {
    pub fn stem(&self) -> String {
        format!("{}-{}_{}-{}_{}", self.tp.topic, self.tp.partition, self.start, self.end, self.date)
    }

    /// Parses `<topic>-<partition>_<start>-<end>_<yymmdd>.mak[<codec>][.age]`. Topics may
    /// themselves contain `-` and `_`, so the name is taken apart from the right.
    pub fn parse(file_name: &str) -> Option<SealedName> {
        let (stem, _) = split_archive_suffix(file_name)?;
        let (rest, date) = stem.rsplit_once('_')?;
        if date.len() != 6 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (rest, range) = rest.rsplit_once('_')?;
        let (start, end) = range.split_once('-')?;
        let (topic, partition) = rest.rsplit_once('-')?;
        let name = SealedName {
            tp: TopicPartition::new(topic, partition.parse().ok()?),
            start: start.parse().ok()?,
            end: end.parse().ok()?,
            date: date.to_string(),
        };
        (!name.tp.topic.is_empty() && name.start >= 0 && name.end >= name.start).then_some(name)
    }
}

/// Today's `yymmdd` (UTC), the date part of a sealed file's name.
pub fn today_yymmdd() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}{:02}{:02}", now.year() % 100, u8::from(now.month()), now.day())
}

/// A regular expression that must match a whole consumer-group name, as Kafka's own tools take
/// one (`[groups] archive_groups`, `restore --groups`); Err says what is wrong in one line (the
/// crate's message draws the pattern over several lines; its last one says what is wrong).
pub fn whole_name_pattern(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| e.to_string().lines().last().unwrap_or_default().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_name_round_trips_topics_with_dashes_and_underscores() {
        let name = SealedName { tp: TopicPartition::new("my-topic_v2", 11), start: 0, end: 500, date: "160811".into() };
        assert_eq!(name.stem(), "my-topic_v2-11_0-500_160811");
        assert_eq!(SealedName::parse("my-topic_v2-11_0-500_160811.mak.gz"), Some(name.clone()));
        assert_eq!(SealedName::parse("my-topic_v2-11_0-500_160811.mak"), Some(name));
    }

    #[test]
    fn sealed_name_rejects_foreign_names() {
        for bad in ["data.mak", "t-0_5-4_160811.mak", "t-0_1-2_16081.mak", "t-x_1-2_160811.mak", "t-0_1-2_160811.txt"] {
            assert_eq!(SealedName::parse(bad), None, "{bad}");
        }
    }
}
