//! Consumer-group offsets carried over to the restored topics, so that consumers continue where
//! they were.
//!
//! A committed offset C of a source partition is "the next record to read". On the target it
//! becomes the offset of the first restored record whose source offset is at or after C, found
//! in the offset map; when no restored record is, the restored partition's end. So a commit that
//! falls in a hole of the source (compaction, transaction markers) or before the restored window
//! lands on the next record the consumer has not seen, never on one it has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

use super::produce::OffsetRun;
use super::state::RestoreState;
use super::RestoreError;

pub use crate::archive::GroupOffsets;

/// One translated commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Translation {
    pub group: String,
    pub source: String,
    pub committed: i64,
    pub target_topic: String,
    pub target_partition: i32,
    pub target_offset: i64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    #[error("reading group offsets {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not group offsets ({source}); expected {{\"GROUP\": {{\"TOPIC\": {{\"PARTITION\": OFFSET}}}}}}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("--groups {pattern}: not a regular expression ({why})")]
    Pattern { pattern: String, why: String },
    #[error("group {group} has {members} active members on the target: stop its consumers, then commit again")]
    Active { group: String, members: usize },
    #[error("group {group}: {error}")]
    Kafka { group: String, error: rdkafka::error::KafkaError },
}

/// Reads `{"GROUP": {"TOPIC": {"PARTITION": OFFSET}}}`.
pub fn load(path: &Path) -> Result<GroupOffsets, GroupError> {
    let text = std::fs::read_to_string(path).map_err(|source| GroupError::Read { path: path.into(), source })?;
    serde_json::from_str(&text).map_err(|source| GroupError::Parse { path: path.into(), source })
}

/// The target offset for committed offset `committed`, by `runs` (in source order); `end` when
/// no restored record is at or after it.
pub fn translate_offset(runs: &[OffsetRun], end: i64, committed: i64) -> i64 {
    for run in runs {
        if committed < run.source_first + run.count as i64 {
            return run.target_first + (committed - run.source_first).max(0);
        }
    }
    end
}

/// The commits of the groups `patterns` select (regular expressions that match whole names, as
/// `[groups] archive_groups`; a plain name selects itself), for the partitions this restore
/// wrote; sorted by group and partition.
pub fn translate(
    offsets: &GroupOffsets,
    patterns: &[String],
    state: &RestoreState,
) -> Result<Vec<Translation>, GroupError> {
    let patterns: Vec<regex::Regex> = patterns
        .iter()
        .map(|p| crate::names::whole_name_pattern(p).map_err(|why| GroupError::Pattern { pattern: p.clone(), why }))
        .collect::<Result<_, _>>()?;
    let mut translations = Vec::new();
    for (group, topics) in offsets.iter().filter(|(g, _)| patterns.iter().any(|p| p.is_match(g))) {
        for (target, recorded) in &state.partitions {
            let (Some((topic, partition)), Some((target_topic, target_partition))) =
                (recorded.source.rsplit_once(':'), target.rsplit_once(':'))
            else {
                continue;
            };
            let Ok(target_partition) = target_partition.parse::<i32>() else { continue };
            // A negative offset is "no commit" (kafka-consumer-groups prints `-`): nothing to carry.
            let Some(&committed) = partition.parse().ok().and_then(|p: i32| topics.get(topic)?.get(&p)) else {
                continue;
            };
            if committed < 0 {
                continue;
            }
            let end = recorded.base + recorded.offset_map.iter().map(|r| r.count as i64).sum::<i64>();
            translations.push(Translation {
                group: group.clone(),
                source: recorded.source.clone(),
                committed,
                target_topic: target_topic.to_string(),
                target_partition,
                target_offset: translate_offset(&recorded.offset_map, end, committed),
            });
        }
    }
    Ok(translations)
}

/// Commits the translations on the target, group by group; refuses a group with active members
/// (their next commit would overwrite these, and they read from offsets of the old topics).
pub fn commit(client: &ClientConfig, translations: &[Translation]) -> Result<(), RestoreError> {
    let mut by_group: BTreeMap<&str, Vec<&Translation>> = BTreeMap::new();
    for t in translations {
        by_group.entry(&t.group).or_default().push(t);
    }
    // Every group is checked before any is committed: a refusal leaves all of them as they were.
    let mut consumers = Vec::new();
    for (group, commits) in by_group {
        let kafka = |error| GroupError::Kafka { group: group.to_string(), error };
        let mut client = client.clone();
        client.set("group.id", group).set("enable.auto.commit", "false");
        let consumer = crate::kafka::consumer(&client).map_err(kafka)?;
        let list = consumer.fetch_group_list(Some(group), Duration::from_secs(30)).map_err(kafka)?;
        let members = list.groups().iter().map(|g| g.members().len()).sum::<usize>();
        if members > 0 {
            return Err(GroupError::Active { group: group.to_string(), members }.into());
        }
        consumers.push((group, commits, consumer));
    }
    for (group, commits, consumer) in consumers {
        let kafka = |error| GroupError::Kafka { group: group.to_string(), error };
        let mut tpl = TopicPartitionList::new();
        for t in commits {
            tpl.add_partition_offset(&t.target_topic, t.target_partition, Offset::Offset(t.target_offset))
                .map_err(kafka)?;
        }
        consumer.commit(&tpl, CommitMode::Sync).map_err(kafka)?;
    }
    Ok(())
}
