//! Resyncs: a later stage that finds a partition's local data must go asks the partition's
//! consumer to drop it and read it again from Kafka. Two ends, so the types say who may do what:
//! the uploader and the compressors hold [`ResyncRequests`] (ask), the consumers hold the
//! [`ResyncInbox`] (apply). A request that stops the partition's uploads until it is applied (a
//! lost upload race) holds the partition in the ledger; only [`ResyncRequests`] does that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::local::ledger::Ledger;
use crate::names::{SealedName, TopicPartition};

/// Drop a partition's local files that start at `drop_from` or later (and its open file), and
/// resume at `resume_at`, or where the archive's chain continues from `drop_from` when None.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resync {
    pub drop_from: i64,
    pub resume_at: Option<i64>,
}

/// Requests waiting for the owning consumer; of two for a partition the one that drops more wins.
#[derive(Debug, Default)]
struct Pending(Mutex<HashMap<TopicPartition, Resync>>);

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, Resync>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request(&self, tp: &TopicPartition, resync: Resync) {
        let mut pending = self.lock();
        let entry = pending.entry(tp.clone()).or_insert(resync);
        if resync.drop_from < entry.drop_from {
            *entry = resync;
        }
    }
}

/// The two ends of the resync requests of one daemon.
pub fn channel(ledger: Arc<Ledger>) -> (ResyncRequests, ResyncInbox) {
    let pending = Arc::new(Pending::default());
    (ResyncRequests { pending: pending.clone(), ledger }, ResyncInbox { pending })
}

/// Asking for resyncs: the uploader and the compressors.
#[derive(Debug, Clone)]
pub struct ResyncRequests {
    pending: Arc<Pending>,
    ledger: Arc<Ledger>,
}

impl ResyncRequests {
    /// The partition's local data from `resync.drop_from` on is not to be uploaded (another
    /// instance archived that offset, or the archive ends elsewhere): its uploads stop until its
    /// consumer has resynced it. False when the partition is not owned (nothing to resync).
    pub fn hold_and_request(&self, tp: &TopicPartition, resync: Resync) -> bool {
        if !self.ledger.hold_for_resync(tp) {
            return false;
        }
        self.pending.request(tp, resync);
        true
    }

    /// The disk is full and `oldest` cannot be compressed. When it is the partition's oldest file
    /// (the one to upload next; nothing of the partition can move before it), the partition's
    /// later local data goes - sealed files and the open file - to be read again once `oldest` is
    /// archived. True when asked.
    pub fn free_space_after(&self, oldest: &SealedName) -> bool {
        if self.ledger.oldest_unconfirmed(&oldest.tp) != Some(oldest.start) {
            return false;
        }
        let after = oldest.end + 1;
        self.pending.request(&oldest.tp, Resync { drop_from: after, resume_at: Some(after) });
        true
    }
}

/// Applying resyncs: the consumers, for the partitions they own.
#[derive(Debug, Clone)]
pub struct ResyncInbox {
    pending: Arc<Pending>,
}

impl ResyncInbox {
    /// Takes the requests for the partitions `owns` accepts.
    pub fn take(&self, owns: impl Fn(&TopicPartition) -> bool) -> Vec<(TopicPartition, Resync)> {
        let mut pending = self.pending.lock();
        if pending.is_empty() {
            return Vec::new();
        }
        let mine: Vec<TopicPartition> = pending.keys().filter(|tp| owns(tp)).cloned().collect();
        mine.into_iter().filter_map(|tp| pending.remove(&tp).map(|r| (tp, r))).collect()
    }

    /// A request that could not be applied yet, kept for the next try.
    pub fn retry(&self, tp: &TopicPartition, resync: Resync) {
        self.pending.request(tp, resync);
    }

    /// Forgets the partition's request: an adoption settles the partition anew.
    pub fn forget(&self, tp: &TopicPartition) {
        self.pending.lock().remove(tp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::layout::WorkDir;

    fn name(start: i64, end: i64) -> SealedName {
        SealedName { tp: TopicPartition::new("t", 0), start, end, date: "261206".into() }
    }

    #[test]
    fn a_request_that_holds_needs_an_owned_partition_and_the_one_dropping_more_wins() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::new(WorkDir::new(dir.path())));
        let (requests, inbox) = channel(ledger.clone());
        let tp = TopicPartition::new("t", 0);
        assert!(!requests.hold_and_request(&tp, Resync { drop_from: 10, resume_at: None }), "not owned");
        assert!(inbox.take(|_| true).is_empty());
        ledger.adopt(&tp, &[name(10, 19)]);
        assert!(requests.hold_and_request(&tp, Resync { drop_from: 20, resume_at: None }));
        assert!(requests.hold_and_request(&tp, Resync { drop_from: 10, resume_at: Some(12) }));
        assert!(!ledger.awaits_upload(&name(10, 19)), "held: nothing is uploaded until resynced");
        assert!(inbox.take(|other| other != &tp).is_empty(), "only the owner takes it");
        assert_eq!(inbox.take(|_| true), vec![(tp, Resync { drop_from: 10, resume_at: Some(12) })]);
    }

    #[test]
    fn a_full_disk_drops_the_later_data_only_for_the_partitions_oldest_file() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::new(WorkDir::new(dir.path())));
        let (requests, inbox) = channel(ledger.clone());
        ledger.adopt(&TopicPartition::new("t", 0), &[name(0, 9), name(10, 19)]);
        assert!(!requests.free_space_after(&name(10, 19)), "not the oldest: the oldest goes first");
        assert!(requests.free_space_after(&name(0, 9)));
        let taken = inbox.take(|_| true);
        assert_eq!(taken[0].1, Resync { drop_from: 10, resume_at: Some(10) });
        assert!(ledger.awaits_upload(&name(0, 9)), "the oldest file still uploads");
    }
}
