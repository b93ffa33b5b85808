//! Before anything is produced: the targets exist (or are created) with enough partitions, are
//! not archived into this same archive, and their settings will not undo the restore. What makes
//! a restore wrong is refused; what the user should know is returned as warnings.

use std::collections::BTreeMap;

use super::plan::{archived_partition_counts, PartitionPlan};
use super::target::Target;
use super::{Options, RestoreError};
use crate::names::TopicPartition;

/// What the preflight found, when nothing is refused.
#[derive(Debug, Default)]
pub struct Preflight {
    pub warnings: Vec<String>,
    /// Each target topic's `max.message.bytes`, where the broker says.
    pub max_message_bytes: BTreeMap<String, u64>,
}

/// The warnings, or the refusal.
///
/// `source_counts`: the partition counts of the source topics as the daemon last saw them (its
/// group snapshots), which `--create-topics` prefers to what the archive's partitions show.
pub fn check(
    target: &Target,
    plans: &[PartitionPlan],
    options: &Options<'_>,
    source_counts: &BTreeMap<String, i32>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Preflight, RestoreError> {
    let mut warnings = Vec::new();
    if plans.is_empty() {
        warnings.push("nothing in the archive matches the selection: nothing to restore".to_string());
        return Ok(Preflight { warnings, max_message_bytes: BTreeMap::new() });
    }
    let mut sources: BTreeMap<&TopicPartition, &TopicPartition> = BTreeMap::new();
    for plan in plans {
        if let Some(other) = sources.insert(&plan.target, &plan.source) {
            return Err(RestoreError::Refused(format!(
                "{} and {} would both be restored into {}: map them to different topics",
                other, plan.source, plan.target
            )));
        }
    }
    for plan in plans {
        if options.archived_by_daemon.as_ref().is_some_and(|topics| topics.matches(&plan.target.topic))
            && !options.force
        {
            return Err(RestoreError::Refused(format!(
                "topic {} is archived into this same archive by the config's daemon: restoring into it would archive the records again (a loop); give --force if that is what you want, or --topic-map to another topic",
                plan.target.topic
            )));
        }
        for (from, to) in plan.gaps.iter().chain(&plan.missing) {
            warnings
                .push(format!("{}: offsets {from}-{to} are not in the archive: they are not restored", plan.source));
        }
        if plan.v1_objects > 0 {
            warnings.push(format!(
                "{}: {} MAK v1 objects hold no headers and no timestamps and store null keys and values as empty: restored as such",
                plan.source, plan.v1_objects
            ));
        }
    }
    let existing = target.partition_counts()?;
    let needed = archived_partition_counts(plans);
    let mut to_create = Vec::new();
    for (topic, &count) in &needed {
        match existing.get(topic) {
            Some(&have) if have < count && options.repartition.is_none() => {
                return Err(RestoreError::Refused(format!(
                    "target topic {topic} has {have} partitions, the archive holds partitions up to {}: {count} needed (records keep their partition number unless --repartition key|round-robin)",
                    count - 1
                )));
            }
            Some(_) => {}
            None if options.create_topics => {
                let source = plans.iter().find(|p| &p.target.topic == topic).map(|p| &p.source.topic);
                let known = source.and_then(|s| source_counts.get(s)).copied().unwrap_or(0);
                to_create.push((topic.clone(), count.max(known)));
            }
            None => {
                return Err(RestoreError::Refused(format!(
                    "target topic {topic} does not exist: create it with at least {count} partitions, or give --create-topics"
                )));
            }
        }
    }
    if !to_create.is_empty() {
        if options.dry_run {
            warnings.extend(to_create.iter().map(|(t, n)| format!("would create topic {t} with {n} partitions")));
        } else {
            target.create_topics(&to_create, runtime)?;
        }
    }
    // The created topics too: a broker may give them other defaults than the archive's topics had.
    let created = |t: &String| !options.dry_run && to_create.iter().any(|(name, _)| name == t);
    let topics: Vec<String> = needed.keys().filter(|t| existing.contains_key(*t) || created(t)).cloned().collect();
    let mut max_message_bytes = BTreeMap::new();
    match target.topic_settings(&topics, runtime) {
        Ok(settings) => {
            warnings.extend(setting_warnings(plans, &settings));
            max_message_bytes = settings
                .iter()
                .filter_map(|(topic, values)| {
                    let limit = values.get("max.message.bytes")?.parse::<u64>().ok()?;
                    Some((topic.clone(), limit))
                })
                .collect();
        }
        Err(error) => warnings.push(format!("could not read the target topics' settings ({error}): not checked")),
    }
    Ok(Preflight { warnings, max_message_bytes })
}

/// For `--dry-run`: the target partitions that already hold records (a real run refuses them
/// without `--append`).
///
/// `spread` (`--repartition`): every partition of the target topics is written to.
pub fn non_empty(target: &Target, plans: &[PartitionPlan], spread: bool) -> Result<Vec<String>, RestoreError> {
    let existing = target.partition_counts()?;
    let mut tps: Vec<TopicPartition> = match spread {
        false => plans.iter().map(|p| p.target.clone()).collect(),
        true => plans
            .iter()
            .flat_map(|p| {
                (0..existing.get(&p.target.topic).copied().unwrap_or(0))
                    .map(|n| TopicPartition::new(&p.target.topic, n))
            })
            .collect(),
    };
    tps.sort();
    tps.dedup();
    tps.retain(|tp| existing.get(&tp.topic).is_some_and(|&count| tp.partition < count));
    let (starts, ends) = (target.start_offsets(&tps)?, target.end_offsets(&tps)?);
    Ok(tps
        .iter()
        .filter(|tp| ends[*tp] > starts[*tp])
        .map(|tp| {
            format!("{tp} already holds offsets {}-{}: the restore needs --append for it", starts[tp], ends[tp] - 1)
        })
        .collect())
}

/// LogAppendTime replaces the archived timestamps; a retention shorter than the records' age
/// deletes them as soon as they are written.
fn setting_warnings(plans: &[PartitionPlan], settings: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<String> {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut warnings = Vec::new();
    for (topic, values) in settings {
        if values.get("message.timestamp.type").is_some_and(|t| t == "LogAppendTime") {
            warnings.push(format!(
                "topic {topic} has message.timestamp.type=LogAppendTime: the broker replaces the archived timestamps with the time of the restore"
            ));
        }
        let retention = values.get("retention.ms").and_then(|r| r.parse::<i64>().ok()).filter(|&r| r >= 0);
        let oldest = plans.iter().filter(|p| &p.target.topic == topic).filter_map(|p| p.min_timestamp).min();
        if let (Some(retention), Some(oldest)) = (retention, oldest) {
            if now_ms - oldest > retention {
                warnings.push(format!(
                    "topic {topic} has retention.ms={retention}, and records from {} ms ago are restored: the broker may delete them at once",
                    now_ms - oldest
                ));
            }
        }
    }
    warnings
}
