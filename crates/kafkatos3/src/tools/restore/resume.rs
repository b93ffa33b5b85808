//! Where a restore starts: a first run records each target partition's beginning and the
//! objects it reads in the state file; a re-run takes its plan from that state, waits for the
//! targets' ends to settle, and reads back the last record there (see [`super::state`]).

use std::collections::BTreeMap;
use std::time::Duration;

use super::plan::{self, PartitionPlan};
use super::produce::{Resume, Skipped};
use super::state::{PartitionState, RestoreState, StateError, StateObject};
use super::target::Target;
use super::{Options, RestoreError};
use crate::archive::Archive;
use crate::names::TopicPartition;

/// A partition the state names, spelled exactly as written (it names the state's entry again).
fn recorded_partition(name: &str, path: &std::path::Path) -> Result<TopicPartition, RestoreError> {
    let bad = || StateError::BadPartition { path: path.to_path_buf(), name: name.to_string() };
    let (topic, number) = name.rsplit_once(':').ok_or_else(bad)?;
    let tp = TopicPartition::new(topic, number.parse::<i32>().map_err(|_| bad())?);
    if tp.to_string() != name {
        return Err(bad().into());
    }
    Ok(tp)
}

/// With `--repartition`: the target partitions a first run recorded.
pub(super) fn recorded_targets(
    state: &RestoreState,
    path: &std::path::Path,
) -> Result<Vec<TopicPartition>, RestoreError> {
    let mut tps: Vec<TopicPartition> =
        state.targets.keys().map(|name| recorded_partition(name, path)).collect::<Result<_, _>>()?;
    tps.sort();
    Ok(tps)
}

/// The plans a first run recorded in its state.
pub(super) fn plans_from_state(
    archive: &Archive,
    state: &RestoreState,
    path: &std::path::Path,
) -> Result<Vec<PartitionPlan>, RestoreError> {
    let partition = |name: &str| recorded_partition(name, path);
    let mut plans = Vec::new();
    for (target, recorded) in &state.partitions {
        let objects: Vec<plan::PlannedObject> = recorded
            .objects
            .iter()
            .map(|o| plan::PlannedObject {
                key: o.key.as_str().into(),
                url: archive.url(&o.key),
                start: o.start,
                end: o.end,
                bytes: o.bytes,
            })
            .collect();
        plans.push(PartitionPlan {
            source: partition(&recorded.source)?,
            target: partition(target)?,
            first_offset: objects.iter().map(|o| o.start).min().unwrap_or(0),
            last_offset: recorded.last_source_offset,
            min_timestamp: None,
            max_timestamp: None,
            bytes: objects.iter().map(|o| o.bytes).sum(),
            object_count: objects.len(),
            v1_objects: 0,
            gaps: Vec::new(),
            missing: Vec::new(),
            overlaps: Vec::new(),
            objects,
        });
    }
    Ok(plans)
}

/// Target ends read until two readings `settle` apart agree.
pub(super) fn settled_ends(
    target: &Target,
    tps: &[TopicPartition],
    settle: Duration,
) -> Result<BTreeMap<TopicPartition, i64>, RestoreError> {
    let mut ends = target.end_offsets(tps)?;
    loop {
        std::thread::sleep(settle);
        let again = target.end_offsets(tps)?;
        if again == ends {
            return Ok(ends);
        }
        ends = again;
    }
}

/// Where each partition resumes, with the target's last record of this restore read back.
pub(super) fn resumes(
    target: &Target,
    plans: &[PartitionPlan],
    state: &RestoreState,
    ends: &BTreeMap<TopicPartition, i64>,
) -> Result<Vec<Resume>, RestoreError> {
    plans
        .iter()
        .map(|plan| {
            let recorded = &state.partitions[&plan.target.to_string()];
            let mut resume = resume_at(target, &plan.target, recorded.base, ends[&plan.target])?;
            resume.skipped = skippable(&recorded.objects, resume.already);
            Ok(resume)
        })
        .collect()
}

/// The leading objects an earlier run read to their end whose records are all among the
/// `already` records in the target - short of the one holding the last of them, which is read
/// again for the read-back check.
pub(super) fn skippable(objects: &[StateObject], already: u64) -> Skipped {
    let mut skipped = Skipped::default();
    for (object, read) in objects.iter().map_while(|o| o.read.as_ref().map(|read| (o, read))) {
        if skipped.records + read.records >= already {
            break;
        }
        skipped.objects += 1;
        skipped.records += read.records;
        for run in &read.offset_map {
            match skipped.offset_map.last_mut() {
                Some(last)
                    if last.source_first + last.count as i64 == run.source_first
                        && last.target_first + last.count as i64 == run.target_first =>
                {
                    last.count += run.count
                }
                _ => skipped.offset_map.push(run.clone()),
            }
        }
        // The overlap rule goes on from the highest offset read so far: an object inside an
        // earlier one ends before it.
        skipped.last_offset = skipped.last_offset.max(Some(object.end));
        skipped.opened = read.opened;
    }
    skipped
}

/// With `--repartition`: where each target partition resumes.
pub(super) fn target_resumes(
    target: &Target,
    state: &RestoreState,
    ends: &BTreeMap<TopicPartition, i64>,
) -> Result<BTreeMap<TopicPartition, Resume>, RestoreError> {
    ends.iter()
        .map(|(tp, &end)| Ok((tp.clone(), resume_at(target, tp, state.targets[&tp.to_string()], end)?)))
        .collect()
}

/// `tp` holds `end - base` records of this restore; the last of them read back.
fn resume_at(target: &Target, tp: &TopicPartition, base: i64, end: i64) -> Result<Resume, RestoreError> {
    let Ok(already) = u64::try_from(end - base) else {
        // The target ends before where this restore began: recreated or truncated.
        return Err(RestoreError::Truncated { tp: tp.clone(), end, base });
    };
    let last_there = if already > 0 { Some(target.record_at(tp, end - 1)?) } else { None };
    Ok(Resume { base, already, last_there, skipped: Skipped::default() })
}

/// The state of a first run: each target partition's end now (`tps`: the plans' targets, or with
/// `--repartition` every partition of their topics) is where its records begin. A target that
/// holds records is refused unless `--append`.
pub(super) fn first_state(
    target: &Target,
    plans: &[PartitionPlan],
    tps: &[TopicPartition],
    options: &Options<'_>,
    command: String,
) -> Result<(RestoreState, BTreeMap<TopicPartition, i64>), RestoreError> {
    let ends = target.end_offsets(tps)?;
    let starts = target.start_offsets(tps)?;
    let mut state = RestoreState::new(command);
    for tp in tps {
        let end = ends[tp];
        if end > starts[tp] && !options.append {
            return Err(RestoreError::Refused(format!(
                "{tp} already holds offsets {}-{}: restoring into a non-empty partition cannot be checked for exactly once; give --append if this restore is its only writer from now on",
                starts[tp],
                end - 1
            )));
        }
        if options.repartition.is_some() {
            state.targets.insert(tp.to_string(), end);
        }
    }
    for plan in plans {
        // With --repartition the entry's own base is not used: -1.
        let end = ends.get(&plan.target).copied().filter(|_| options.repartition.is_none()).unwrap_or(-1);
        let objects = plan
            .objects
            .iter()
            .map(|o| StateObject { key: o.key.to_string(), start: o.start, end: o.end, bytes: o.bytes, read: None })
            .collect();
        let partition = PartitionState {
            source: plan.source.to_string(),
            base: end,
            last_source_offset: plan.last_offset,
            objects,
            offset_map: Vec::new(),
        };
        state.partitions.insert(plan.target.to_string(), partition);
    }
    state.save(&options.state_path)?;
    Ok((state, ends))
}
