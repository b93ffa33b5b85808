//! `--repartition key|round-robin`: a topic restored into a target topic with another number of
//! partitions, exactly once across crashes all the same.
//!
//! Without repartitioning, each target partition receives one archived partition, so "how many
//! records are there" says where to continue. Here a target partition receives records from every
//! archived partition of its topic, so the restore makes each target partition's sequence
//! deterministic instead: it reads the archived partitions one after the other in a fixed order
//! (target topic, then partition number), each in offset order through its cut, and sends each
//! record to a partition chosen from the record alone and a counter over that sequence:
//!
//! - `key`: Kafka's default partitioner (murmur2 of the key, as the Java client and librdkafka's
//!   `murmur2` partitioner compute it), so keyed records land where a producer would put them
//!   and a key's records keep their order; records without a key go round-robin;
//! - `round-robin`: record i of the sequence goes to partition i mod N.
//!
//! The same command therefore sends every target partition the same sequence every time. Each
//! partition holds a prefix of its sequence (the idempotent, gapless producer of the normal
//! restore), so a re-run counts each target partition's records since its `base`, skips that many
//! of the partition's sequence (reading, not producing) after checking the last one there is the
//! record the count says, and sends the rest. The price: one archived partition is read at a time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::plan::PartitionPlan;
use super::produce::{self, PartitionOutcome, Resume, Shared, Skipped, Step, Tally};
use super::state::RestoreState;
use super::{cut_for, progress, Options, RestoreError};
use crate::names::TopicPartition;

/// How records are spread over the target's partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Repartition {
    /// By key, as Kafka's default partitioner (murmur2); records without a key round-robin.
    Key,
    /// Record i of the topic's sequence to partition i mod N.
    RoundRobin,
}

/// Kafka's `Utils.murmur2`: the hash its default partitioner (and librdkafka's `murmur2`
/// partitioner) places keyed records with.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The target partition of each record of one target topic's sequence, in order.
pub struct Chooser {
    how: Repartition,
    partitions: i32,
    /// Records placed round-robin so far.
    turns: u64,
}

impl Chooser {
    pub fn new(how: Repartition, partitions: i32) -> Self {
        Chooser { how, partitions: partitions.max(1), turns: 0 }
    }

    pub fn choose(&mut self, key: Option<&[u8]>) -> i32 {
        match (self.how, key) {
            // Kafka's toPositive, then modulo.
            (Repartition::Key, Some(key)) => (murmur2(key) & 0x7fff_ffff) % self.partitions,
            _ => {
                let partition = (self.turns % self.partitions as u64) as i32;
                self.turns += 1;
                partition
            }
        }
    }
}

/// One target partition of a repartitioning restore, as reported.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TargetOutcome {
    pub target: String,
    /// Its end before this restore wrote to it.
    pub base: i64,
    pub records: u64,
    pub already_there: u64,
}

/// Every target partition of the plans' target topics, by the target's partition counts.
pub(super) fn target_partitions(
    plans: &[PartitionPlan],
    counts: &BTreeMap<String, i32>,
) -> Result<Vec<TopicPartition>, RestoreError> {
    let mut topics: Vec<&str> = plans.iter().map(|p| p.target.topic.as_str()).collect();
    topics.dedup();
    let mut all = Vec::new();
    for topic in topics {
        let count = counts.get(topic).copied().filter(|&count| count > 0).ok_or_else(|| {
            RestoreError::Refused(format!("target topic {topic} does not exist or has no partitions yet"))
        })?;
        all.extend((0..count).map(|p| TopicPartition::new(topic, p)));
    }
    Ok(all)
}

/// Produces every plan's cut, one archived partition after the other (`plans` sorted by target),
/// each record to the partition its topic's [`Chooser`] picks, skipping what `resumes` say is
/// there. Returns the outcome per archived partition and per target partition.
pub(super) fn produce_all(
    shared: &Shared<'_>,
    plans: &[PartitionPlan],
    state: &RestoreState,
    resumes: &BTreeMap<TopicPartition, Resume>,
    how: Repartition,
    options: &Options<'_>,
) -> Result<(Vec<PartitionOutcome>, Vec<TargetOutcome>), RestoreError> {
    let mut choosers: BTreeMap<String, Chooser> = BTreeMap::new();
    let mut targets: BTreeMap<TopicPartition, TargetOutcome> = resumes
        .iter()
        .map(|(tp, resume)| {
            (tp.clone(), TargetOutcome { target: tp.to_string(), base: resume.base, ..Default::default() })
        })
        .collect();
    for tp in targets.keys() {
        let chooser = choosers.entry(tp.topic.clone()).or_insert_with(|| Chooser::new(how, 0));
        chooser.partitions = chooser.partitions.max(tp.partition + 1);
    }
    let expected: u64 = plans
        .iter()
        .map(|plan| {
            let cut = cut_for(plan, options, state.partitions[&plan.target.to_string()].last_source_offset);
            let first = cut.from_offset.map_or(plan.first_offset, |from| from.max(plan.first_offset));
            u64::try_from(cut.to_offset.unwrap_or(plan.last_offset) - first + 1).unwrap_or(0)
        })
        .sum::<u64>()
        .saturating_sub(resumes.values().map(|r| r.already).sum());
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let done = &done;
        scope.spawn(move || progress::report(shared, done, options.progress_every, expected));
        let result = (|| {
            let mut outcomes = Vec::new();
            let mut tally = Tally::default();
            for plan in plans {
                let cut = cut_for(plan, options, state.partitions[&plan.target.to_string()].last_source_offset);
                let Some(chooser) = choosers.get_mut(&plan.target.topic) else {
                    return Err(RestoreError::Refused(format!(
                        "the state names no partition of target topic {}",
                        plan.target.topic
                    )));
                };
                let source = plan.source.to_string();
                let mut outcome = PartitionOutcome::default();
                produce::for_each_in_cut(shared, plan, cut, &Skipped::default(), |step| {
                    let Step::Record(record) = step else { return Ok(true) };
                    if shared.stopping() {
                        return Ok(false);
                    }
                    let tp = TopicPartition::new(&plan.target.topic, chooser.choose(record.key));
                    let Some(there) = targets.get_mut(&tp) else {
                        return Err(RestoreError::Refused(format!("the state does not name target partition {tp}")));
                    };
                    let resume = &resumes[&tp];
                    let index = there.records;
                    there.records += 1;
                    outcome.first_source_offset.get_or_insert(record.offset);
                    outcome.last_source_offset = Some(record.offset);
                    outcome.records += 1;
                    if index < resume.already {
                        there.already_there += 1;
                        outcome.already_there += 1;
                        if index + 1 == resume.already {
                            let at = resume.base + index as i64;
                            produce::check_last_there(&tp, &plan.source, record, at, resume.last_there.as_ref())?;
                        }
                        return Ok(true);
                    }
                    tally.add(shared, produce::send(shared, &tp, &source, record)?);
                    outcome.produced += 1;
                    Ok(true)
                })?;
                outcomes.push(outcome);
                if shared.stopping() {
                    break;
                }
            }
            tally.flush(shared);
            Ok(outcomes)
        })();
        done.store(true, Ordering::Relaxed);
        result.map(|outcomes| (outcomes, targets.into_values().collect()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas_own_hash() {
        // Apache Kafka's UtilsTest.testMurmur2.
        for (data, hash) in [
            (&b"21"[..], -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ] {
            assert_eq!(murmur2(data), hash, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn keys_stay_on_one_partition_and_everything_else_takes_turns() {
        let mut by_key = Chooser::new(Repartition::Key, 4);
        let first = by_key.choose(Some(b"customer-17"));
        assert!((0..4).contains(&first));
        assert_eq!(by_key.choose(Some(b"customer-17")), first);
        assert_eq!([None, None, None, None, None].map(|k| by_key.choose(k)), [0, 1, 2, 3, 0], "null keys round-robin");
        let mut turns = Chooser::new(Repartition::RoundRobin, 3);
        let placed: Vec<i32> = (0..7).map(|i| turns.choose(Some(format!("k{i}").as_bytes()))).collect();
        assert_eq!(placed, [0, 1, 2, 0, 1, 2, 0]);
    }
}
