//! Back-pressure from the local backlog: the sealed files on disk waiting for compression or
//! upload (`[s3] max_local_backlog_bytes`).
//!
//! Two levels. Past half the limit, the partitions holding at least their fair share of it
//! (limit / partitions owned) stop fetching: a partition catching up a large lag, or one whose
//! uploads fail, cannot fill the disk at the expense of the quiet partitions, which keep being
//! archived with their usual delay. Past the whole limit, or after a failed write (a full disk),
//! every partition stops until the backlog is back under 90 % of it. Pausing never stops the
//! poll loop: librdkafka keeps serving the group (heartbeats, rebalances) and `max.poll.interval.ms`
//! is never at risk. Memory is bounded elsewhere: librdkafka stops fetching when its queue, sized
//! by the memory budget (see [`crate::config::budget`]), is full.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::names::TopicPartition;
use crate::pipeline::consume::context::ArchiverContext;
use crate::pipeline::consume::hold;
use crate::pipeline::consume::Consumers;

/// Pause after a failed write (a full disk) before fetching again.
const WRITE_FAILURE_BACKOFF: Duration = Duration::from_secs(5);

/// The partitions to pause for being furthest ahead of their archive.
///
/// `held` is the backlog of each partition the caller owns, `owned` the number of partitions
/// the daemon owns in all, `paused` the caller's current selection. A partition is added at or
/// above its share once the backlog is past half the limit, and stays until it is under three
/// quarters of its share or the backlog under 45 % of the limit (no flapping at every upload).
pub fn furthest_ahead<'a>(
    limit: u64,
    backlog: u64,
    owned: usize,
    held: impl IntoIterator<Item = (&'a TopicPartition, u64)>,
    paused: &HashSet<TopicPartition>,
) -> HashSet<TopicPartition> {
    if backlog <= limit / 20 * 9 {
        return HashSet::new();
    }
    let share = limit / owned.max(1) as u64;
    let adding = backlog > limit / 2;
    held.into_iter()
        .filter(|(tp, bytes)| (adding && *bytes >= share) || (paused.contains(*tp) && *bytes >= share / 4 * 3))
        .map(|(tp, _)| tp.clone())
        .collect()
}

/// One consumer's pauses.
#[derive(Debug, Default)]
pub struct FetchPauses {
    /// Every assigned partition is paused.
    all: bool,
    /// Partitions paused for being furthest ahead (while `all` is false).
    ahead: HashSet<TopicPartition>,
    write_failed_at: Option<Instant>,
}

impl FetchPauses {
    /// A write failed: pause everything for a while (a full disk needs uploads to free space).
    pub fn write_failed(&mut self, consumer: &BaseConsumer<ArchiverContext>) {
        self.pause_all(consumer);
        self.write_failed_at = Some(Instant::now());
    }

    pub fn pause_all(&mut self, consumer: &BaseConsumer<ArchiverContext>) {
        let assigned: Vec<TopicPartition> = consumer.context().state().spools().map(|s| s.tp.clone()).collect();
        hold::pause(consumer, &assigned);
        self.all = true;
    }

    /// Pauses and resumes partitions for the backlog as it is now; called at every tick.
    pub fn apply(&mut self, stage: &Consumers, consumer: &BaseConsumer<ArchiverContext>) {
        let limit = stage.config.s3.max_local_backlog_bytes;
        let backlog = stage.backlog.bytes();
        let failing = self.write_failed_at.is_some_and(|at| at.elapsed() < WRITE_FAILURE_BACKOFF);
        // The consumer's state is not held across librdkafka's calls.
        let step = {
            let state = consumer.context().state();
            let held = || stage.backlog.of_each(state.spools().map(|s| &s.tp));
            self.step(limit, backlog, failing, stage.ledger.owned(), held)
        };
        if step.pause_all {
            if step.newly_full {
                tracing::warn!(
                    backlog_bytes = backlog,
                    limit_bytes = limit,
                    "local backlog over its limit; pausing consumption until uploads catch up"
                );
            }
            self.pause_all(consumer);
            return;
        }
        if !step.newly_ahead.is_empty() {
            tracing::warn!(
                partitions = %names(&step.newly_ahead),
                backlog_bytes = backlog,
                limit_bytes = limit,
                "local backlog over half its limit; pausing consumption of the partitions furthest ahead"
            );
        }
        if step.left_full || !step.resume.is_empty() {
            tracing::info!(partitions = %names(&step.resume), backlog_bytes = backlog, "resuming consumption");
        }
        hold::resume(consumer, &step.resume);
        hold::pause(consumer, &step.pause);
    }

    /// Decides one tick from the backlog alone (no librdkafka call) and moves to the new state.
    /// `held` lists the caller's assigned partitions with their backlog; it is only asked for
    /// when a decision needs it.
    fn step(
        &mut self,
        limit: u64,
        backlog: u64,
        failing: bool,
        owned: usize,
        held: impl FnOnce() -> Vec<(TopicPartition, u64)>,
    ) -> Step {
        let over = if self.all { failing || backlog > limit / 10 * 9 } else { backlog > limit };
        if over {
            // Again at every tick: a rebalance while paused hands out partitions that fetch
            // (those paused already are left alone: see `hold`).
            let newly_full = !self.all;
            self.all = true;
            return Step { pause_all: true, newly_full, ..Step::default() };
        }
        let held = if self.all || backlog > limit / 20 * 9 || !self.ahead.is_empty() { held() } else { Vec::new() };
        let selected = furthest_ahead(limit, backlog, owned, held.iter().map(|(tp, bytes)| (tp, *bytes)), &self.ahead);
        let resume: Vec<TopicPartition> = if self.all {
            held.iter().map(|(tp, _)| tp).filter(|tp| !selected.contains(*tp)).cloned().collect()
        } else {
            // A partition revoked meanwhile is resumed too: harmless, and it comes back unpaused.
            self.ahead.iter().filter(|tp| !selected.contains(*tp)).cloned().collect()
        };
        let mut newly_ahead: Vec<TopicPartition> =
            selected.iter().filter(|tp| self.all || !self.ahead.contains(*tp)).cloned().collect();
        newly_ahead.sort();
        // Again at every tick, as above: a partition handed back after a rebalance fetches.
        let mut pause: Vec<TopicPartition> = selected.iter().cloned().collect();
        pause.sort();
        let left_full = self.all;
        self.all = false;
        self.write_failed_at = None;
        self.ahead = selected;
        Step { pause_all: false, newly_full: false, left_full, resume, pause, newly_ahead }
    }
}

/// What one tick of [`FetchPauses::step`] decided.
#[derive(Debug, Default, PartialEq)]
struct Step {
    /// Pause every assigned partition.
    pause_all: bool,
    /// The full pause begins with this tick.
    newly_full: bool,
    /// The full pause ends with this tick.
    left_full: bool,
    resume: Vec<TopicPartition>,
    /// The partitions furthest ahead, paused again at every tick.
    pause: Vec<TopicPartition>,
    /// Those of `pause` not paused for being ahead before this tick.
    newly_ahead: Vec<TopicPartition>,
}

/// At most a few partitions by name (a log line, not a dump of thousands).
fn names(tps: &[TopicPartition]) -> String {
    const SHOWN: usize = 8;
    let mut text = tps.iter().take(SHOWN).map(|tp| tp.to_string()).collect::<Vec<_>>().join(", ");
    if tps.len() > SHOWN {
        text.push_str(&format!(" and {} more", tps.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    fn select(backlog: u64, held: &[(i32, u64)], paused: &[i32]) -> Vec<i32> {
        let tps: Vec<(TopicPartition, u64)> = held.iter().map(|&(p, b)| (tp(p), b)).collect();
        let paused: HashSet<TopicPartition> = paused.iter().map(|&p| tp(p)).collect();
        let chosen = furthest_ahead(100 * MIB, backlog, 4, tps.iter().map(|(t, b)| (t, *b)), &paused);
        let mut chosen: Vec<i32> = chosen.into_iter().map(|t| t.partition).collect();
        chosen.sort();
        chosen
    }

    #[test]
    fn below_half_the_limit_nothing_is_paused() {
        assert!(select(50 * MIB, &[(0, 50 * MIB), (1, 0)], &[]).is_empty());
    }

    #[test]
    fn past_half_the_limit_the_partitions_over_their_share_pause_and_the_others_fetch() {
        // 4 partitions owned, limit 100 MiB: a share is 25 MiB.
        let held = [(0, 40 * MIB), (1, 25 * MIB), (2, MIB), (3, 0)];
        assert_eq!(select(66 * MIB, &held, &[]), vec![0, 1]);
    }

    #[test]
    fn a_paused_partition_stays_paused_until_well_under_its_share() {
        let held = [(0, 20 * MIB), (1, 18 * MIB)];
        assert_eq!(select(60 * MIB, &held, &[0, 1]), vec![0], "over 3/4 of the 25 MiB share");
        assert_eq!(select(48 * MIB, &[(0, 30 * MIB)], &[0]), vec![0], "between 45 % and 50 %: kept");
        assert!(select(48 * MIB, &[(0, 30 * MIB)], &[]).is_empty(), "between 45 % and 50 %: none added");
        assert!(select(45 * MIB, &[(0, 30 * MIB)], &[0]).is_empty(), "at 45 % every pause is lifted");
    }

    #[test]
    fn a_single_partition_is_only_stopped_by_the_whole_limit() {
        let only = [(0, 99 * MIB)];
        let tps: Vec<(TopicPartition, u64)> = only.iter().map(|&(p, b)| (tp(p), b)).collect();
        let chosen = furthest_ahead(100 * MIB, 99 * MIB, 1, tps.iter().map(|(t, b)| (t, *b)), &HashSet::new());
        assert!(chosen.is_empty(), "its share is the whole limit");
    }

    fn held(list: &[(i32, u64)]) -> Vec<(TopicPartition, u64)> {
        list.iter().map(|&(p, b)| (tp(p), b)).collect()
    }

    fn unused() -> Vec<(TopicPartition, u64)> {
        panic!("the partitions were asked for although no decision needed them")
    }

    #[test]
    fn the_full_pause_lasts_until_under_90_percent_and_past_a_failed_writes_backoff() {
        let mut pauses = FetchPauses::default();
        let step = pauses.step(100 * MIB, 101 * MIB, false, 2, unused);
        assert!(step.pause_all && step.newly_full);
        let step = pauses.step(100 * MIB, 95 * MIB, false, 2, unused);
        assert!(step.pause_all && !step.newly_full, "between 90 % and the limit: still paused, reported once");
        let step = pauses.step(100 * MIB, 10 * MIB, true, 2, unused);
        assert!(step.pause_all, "a recent failed write keeps everything paused");
        let step = pauses.step(100 * MIB, 10 * MIB, false, 2, || held(&[(0, 5 * MIB), (1, 5 * MIB)]));
        assert!(!step.pause_all && step.left_full);
        assert_eq!(step.resume, vec![tp(0), tp(1)]);
        assert!(step.pause.is_empty());
    }

    #[test]
    fn leaving_the_full_pause_keeps_the_partitions_furthest_ahead_paused() {
        let mut pauses = FetchPauses::default();
        pauses.step(100 * MIB, 101 * MIB, false, 4, unused);
        let step = pauses.step(100 * MIB, 80 * MIB, false, 4, || held(&[(0, 60 * MIB), (1, 20 * MIB)]));
        assert!(step.left_full);
        assert_eq!((step.resume, step.pause.clone(), step.newly_ahead), (vec![tp(1)], vec![tp(0)], vec![tp(0)]));
    }

    #[test]
    fn leaving_the_full_pause_is_reported_with_nothing_assigned() {
        let mut pauses = FetchPauses::default();
        pauses.step(100 * MIB, 101 * MIB, false, 0, unused);
        let step = pauses.step(100 * MIB, 0, false, 0, Vec::new);
        assert!(step.left_full && step.resume.is_empty() && !step.pause_all);
    }

    #[test]
    fn a_partition_ahead_is_paused_at_every_tick_reported_once_and_resumed_when_revoked() {
        let mut pauses = FetchPauses::default();
        let both = || held(&[(0, 40 * MIB), (1, 10 * MIB)]);
        let step = pauses.step(100 * MIB, 60 * MIB, false, 4, both);
        assert_eq!((step.pause.clone(), step.newly_ahead.clone()), (vec![tp(0)], vec![tp(0)]));
        assert!(step.resume.is_empty() && !step.left_full);
        let step = pauses.step(100 * MIB, 60 * MIB, false, 4, both);
        assert_eq!(step.pause, vec![tp(0)], "paused again: a rebalance may have handed it back");
        assert!(step.newly_ahead.is_empty(), "reported once");
        let step = pauses.step(100 * MIB, 60 * MIB, false, 4, || held(&[(1, 10 * MIB)]));
        assert_eq!(step.resume, vec![tp(0)], "revoked while paused: resumed, so it comes back unpaused");
        assert!(step.pause.is_empty());
    }

    #[test]
    fn under_45_percent_with_nothing_paused_a_tick_does_nothing() {
        let mut pauses = FetchPauses::default();
        assert_eq!(pauses.step(100 * MIB, 45 * MIB, false, 4, unused), Step::default());
    }
}
