//! Delivery semantics live here, and only here: which offset of a partition may be committed to
//! Kafka, and which local files may be deleted, given what has been confirmed in S3.
//!
//! The invariant: a committed offset `C` means every record below `C` is in S3. A partition's
//! files are uploaded one at a time, oldest first (the fence, see docs/design.md, needs every
//! object to be created right after its confirmed predecessor); `uploaded_through` grows with
//! each confirmation, is made durable before the local copy is deleted, and the offset handed
//! to Kafka is never past the start of the oldest file that is not yet confirmed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::local::durable::{self, FsError};
use crate::local::layout::WorkDir;
use crate::names::{SealedName, TopicPartition};

/// The offset to commit for a partition: the first offset whose record is not known to be in S3.
///
/// `oldest_unconfirmed` is the start of the oldest sealed file not yet released by the ledger,
/// `open_start` the start of the in-progress file when it holds records, and `next_offset` the
/// position after the last record written (or the position the partition was resumed at).
pub fn commit_point(oldest_unconfirmed: Option<i64>, open_start: Option<i64>, next_offset: Option<i64>) -> Option<i64> {
    [oldest_unconfirmed, open_start, next_offset].into_iter().flatten().min()
}

/// What to do with each local file of a partition when it is assigned to this daemon.
#[derive(Debug, PartialEq, Eq)]
pub enum FileFate {
    /// Part of the contiguous chain from the resume point: keep it and upload it.
    Keep,
    /// Every record is already in S3 (proven by the committed offset or the upload marker).
    Covered,
    /// Does not continue the chain (a gap or an overlap with what another owner archived):
    /// set aside, never deleted, never uploaded; its records are read again from Kafka.
    SetAside,
}

/// The resume decision for one partition, see [`plan_adoption`].
#[derive(Debug, PartialEq, Eq)]
pub struct AdoptionPlan {
    /// Fate of each sealed file, in the order given.
    pub sealed: Vec<FileFate>,
    /// Fate of the in-progress file, when it has records.
    pub open: Option<FileFate>,
    /// Where consumption resumes; `None` means "no position known: apply auto.offset.reset".
    pub resume_at: Option<i64>,
}

/// Decides, on assignment, where a partition resumes and which local files continue it.
///
/// The resume point is never before data already held (in S3 per the committed offset or the
/// local upload marker, or in local files that continue the chain) and never after data not
/// held: a file only extends the chain when it starts exactly where the chain ends.
/// `sealed` is `(start, end)` sorted by start; `open` is `(start, last_offset)` of an
/// in-progress file that has records.
pub fn plan_adoption(
    committed: Option<i64>,
    uploaded_through: Option<i64>,
    legacy_end: Option<i64>,
    sealed: &[(i64, i64)],
    open: Option<(i64, i64)>,
) -> AdoptionPlan {
    let mut base = [committed, uploaded_through.map(|u| u + 1), legacy_end.map(|l| l + 1)].into_iter().flatten().max();
    let mut fate_of = |start: i64, end: i64| match base {
        Some(b) if end < b => FileFate::Covered,
        Some(b) if start != b => FileFate::SetAside,
        _ => {
            base = Some(end + 1);
            FileFate::Keep
        }
    };
    let sealed = sealed.iter().map(|&(start, end)| fate_of(start, end)).collect();
    let open = open.map(|(start, last)| fate_of(start, last));
    AdoptionPlan { sealed, open, resume_at: base }
}

#[derive(Debug, Default)]
struct PartitionLedger {
    /// Sealed files not yet released, by start offset, with "confirmed in S3".
    files: BTreeMap<i64, (SealedName, bool)>,
    /// Lost an upload race: nothing is uploaded until the consumer has resynced the partition.
    held: bool,
    /// Started without knowing where the archive ends (no commit, S3 unreachable): nothing is
    /// committed until the first upload has asked S3.
    base_unconfirmed: bool,
}

/// What a confirmed upload released.
#[derive(Debug, Default)]
pub struct Released {
    /// Local files whose records are now durably recorded as uploaded; safe to delete.
    pub deletable: Vec<SealedName>,
    /// False when the partition is no longer owned: the caller must keep the local file.
    pub owned: bool,
}

/// The ledger of every partition this daemon owns.
#[derive(Debug)]
pub struct Ledger {
    work: WorkDir,
    partitions: Mutex<HashMap<TopicPartition, PartitionLedger>>,
    /// Bumped by every confirmation that released files: the consumers commit soon after.
    releases: AtomicU64,
}

impl Ledger {
    pub fn new(work: WorkDir) -> Self {
        Ledger { work, partitions: Mutex::new(HashMap::new()), releases: AtomicU64::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, PartitionLedger>> {
        self.partitions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the durable upload marker of a partition.
    pub fn read_marker(&self, tp: &TopicPartition) -> Option<i64> {
        let text = std::fs::read_to_string(self.work.uploaded_marker(tp)).ok()?;
        text.trim().parse().ok()
    }

    /// Records durably that S3 holds the partition through `end` (a leftover uploaded while
    /// the partition is not owned).
    pub fn write_marker(&self, tp: &TopicPartition, end: i64) -> Result<(), FsError> {
        durable::write_file_durable(&self.work.uploaded_marker(tp), format!("{end}\n").as_bytes())
    }

    /// Starts owning a partition with the sealed files that continue its chain.
    pub fn adopt(&self, tp: &TopicPartition, files: &[SealedName]) {
        let files = files.iter().map(|name| (name.start, (name.clone(), false))).collect();
        let ledger = PartitionLedger { files, held: false, base_unconfirmed: false };
        self.lock().insert(tp.clone(), ledger);
    }

    /// Stops owning a partition; later confirmations for it release nothing.
    pub fn release(&self, tp: &TopicPartition) {
        self.lock().remove(tp);
    }

    /// How many partitions this daemon owns (all its consumers).
    pub fn owned(&self) -> usize {
        self.lock().len()
    }

    pub fn is_owned(&self, tp: &TopicPartition) -> bool {
        self.lock().contains_key(tp)
    }

    /// Registers a file the spool has just sealed.
    pub fn sealed(&self, name: &SealedName) {
        if let Some(ledger) = self.lock().get_mut(&name.tp) {
            ledger.files.insert(name.start, (name.clone(), false));
        }
    }

    /// True when this file is the oldest tracked file of its partition and still waiting for
    /// its upload: the only file of an owned partition the uploader may upload now.
    pub fn awaits_upload(&self, name: &SealedName) -> bool {
        self.lock()
            .get(&name.tp)
            .filter(|l| !l.held)
            .and_then(|l| l.files.first_key_value())
            .is_some_and(|(_, (tracked, confirmed))| tracked == name && !*confirmed)
    }

    /// Stops the partition's uploads until [`Ledger::truncate`]; false when it is not owned.
    pub fn hold_for_resync(&self, tp: &TopicPartition) -> bool {
        self.lock().get_mut(tp).map(|l| l.held = true).is_some()
    }

    pub fn set_base_unconfirmed(&self, tp: &TopicPartition) {
        if let Some(ledger) = self.lock().get_mut(tp) {
            ledger.base_unconfirmed = true;
        }
    }

    /// True while the partition's resume point is unconfirmed: not to be committed.
    pub fn base_unconfirmed(&self, tp: &TopicPartition) -> bool {
        self.lock().get(tp).is_some_and(|l| l.base_unconfirmed)
    }

    pub fn confirm_base(&self, tp: &TopicPartition) {
        if let Some(ledger) = self.lock().get_mut(tp) {
            ledger.base_unconfirmed = false;
        }
    }

    /// Forgets the partition's files from offset `from` on (their local copies are being
    /// dropped) and lifts a hold.
    pub fn truncate(&self, tp: &TopicPartition, from: i64) {
        if let Some(ledger) = self.lock().get_mut(tp) {
            ledger.files.retain(|&start, _| start < from);
            ledger.held = false;
            // A resync resumes at a point S3 named.
            ledger.base_unconfirmed = false;
        }
    }

    /// True when this file's upload is confirmed but not yet released (an earlier file of the
    /// partition is still pending): it must not be uploaded again.
    pub fn is_confirmed(&self, name: &SealedName) -> bool {
        self.lock().get(&name.tp).and_then(|l| l.files.get(&name.start)).is_some_and(|(_, confirmed)| *confirmed)
    }

    /// Start of the oldest file of a partition whose upload is not yet released.
    pub fn oldest_unconfirmed(&self, tp: &TopicPartition) -> Option<i64> {
        self.lock().get(tp).and_then(|l| l.files.keys().next().copied())
    }

    /// How many confirmations have released files so far: a change means a commit point may
    /// have moved.
    pub fn releases(&self) -> u64 {
        self.releases.load(Ordering::Acquire)
    }

    /// Files of a partition not yet released (sealed, compressed or uploaded out of order).
    pub fn pending_files(&self, tp: &TopicPartition) -> usize {
        self.lock().get(tp).map_or(0, |l| l.files.len())
    }

    /// Records a confirmed upload. The marker is advanced over the contiguous run of confirmed
    /// files and made durable before any of them is reported deletable.
    pub fn upload_confirmed(&self, name: &SealedName) -> Result<Released, FsError> {
        let mut partitions = self.lock();
        let Some(ledger) = partitions.get_mut(&name.tp) else {
            return Ok(Released { deletable: Vec::new(), owned: false });
        };
        if let Some(entry) = ledger.files.get_mut(&name.start) {
            entry.1 = true;
        }
        let run = ledger.files.values().take_while(|(_, confirmed)| *confirmed).count();
        let Some(new_through) = run.checked_sub(1).and_then(|i| ledger.files.values().nth(i)).map(|(n, _)| n.end)
        else {
            return Ok(Released { deletable: Vec::new(), owned: true });
        };
        // The marker first: if it cannot be written the files stay tracked (and confirmed), and
        // the next confirmation of the partition retries the release.
        durable::write_file_durable(&self.work.uploaded_marker(&name.tp), format!("{new_through}\n").as_bytes())?;
        let mut deletable = Vec::with_capacity(run);
        for _ in 0..run {
            if let Some((_, (released, _))) = ledger.files.pop_first() {
                deletable.push(released);
            }
        }
        self.releases.fetch_add(1, Ordering::Release);
        Ok(Released { deletable, owned: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FileFate::*;

    #[test]
    fn commit_point_is_the_oldest_record_not_in_s3() {
        assert_eq!(commit_point(Some(100), Some(200), Some(250)), Some(100));
        assert_eq!(commit_point(None, Some(200), Some(250)), Some(200));
        assert_eq!(commit_point(None, None, Some(250)), Some(250));
        assert_eq!(commit_point(None, None, None), None);
    }

    #[test]
    fn adoption_resumes_after_local_files_that_continue_the_committed_offset() {
        let plan = plan_adoption(Some(100), None, None, &[(100, 199), (200, 299)], Some((300, 350)));
        assert_eq!(plan, AdoptionPlan { sealed: vec![Keep, Keep], open: Some(Keep), resume_at: Some(351) });
    }

    #[test]
    fn adoption_drops_files_already_covered_by_the_upload_marker() {
        // Crash after the upload was confirmed and recorded, before Kafka saw the commit.
        let plan = plan_adoption(Some(0), Some(99), None, &[(0, 99), (100, 199)], None);
        assert_eq!(plan, AdoptionPlan { sealed: vec![Covered, Keep], open: None, resume_at: Some(200) });
    }

    #[test]
    fn adoption_sets_aside_files_that_leave_a_gap_after_another_owner_committed() {
        // Another owner archived up to 150; our files 100..199 and 200..299 are stale.
        let plan = plan_adoption(Some(151), None, None, &[(100, 199), (200, 299)], None);
        assert_eq!(plan, AdoptionPlan { sealed: vec![SetAside, SetAside], open: None, resume_at: Some(151) });
    }

    #[test]
    fn adoption_without_any_known_position_starts_the_chain_at_the_first_file() {
        let plan = plan_adoption(None, None, None, &[(40, 49)], Some((50, 60)));
        assert_eq!(plan, AdoptionPlan { sealed: vec![Keep], open: Some(Keep), resume_at: Some(61) });
        let empty = plan_adoption(None, None, None, &[], None);
        assert_eq!(empty.resume_at, None);
    }

    #[test]
    fn adoption_resumes_after_legacy_files_of_the_original() {
        let plan = plan_adoption(Some(10), None, Some(500), &[], None);
        assert_eq!(plan.resume_at, Some(501));
    }

    #[test]
    fn out_of_order_confirmations_release_in_offset_order() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let ledger = Ledger::new(work.clone());
        let tp = TopicPartition::new("t", 3);
        let name = |start, end| SealedName { tp: tp.clone(), start, end, date: "240101".into() };
        ledger.adopt(&tp, &[]);
        for (start, end) in [(0, 9), (10, 19), (20, 29)] {
            ledger.sealed(&name(start, end));
        }
        let released = ledger.upload_confirmed(&name(10, 19)).unwrap();
        assert!(released.deletable.is_empty(), "a later file must wait for the earlier one");
        assert_eq!(ledger.oldest_unconfirmed(&tp), Some(0));
        assert_eq!(ledger.read_marker(&tp), None);
        assert_eq!(ledger.releases(), 0, "nothing released: no commit point moved");

        let released = ledger.upload_confirmed(&name(0, 9)).unwrap();
        let starts: Vec<i64> = released.deletable.iter().map(|n| n.start).collect();
        assert_eq!(starts, vec![0, 10]);
        assert_eq!(ledger.read_marker(&tp), Some(19), "marker is durable before files are deletable");
        assert_eq!(ledger.oldest_unconfirmed(&tp), Some(20));
        assert_eq!(ledger.releases(), 1, "the consumers are told a commit point moved");
    }

    #[test]
    fn a_marker_that_cannot_be_written_keeps_the_files_tracked_until_a_retry_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let ledger = Ledger::new(work.clone());
        let tp = TopicPartition::new("t", 3);
        let name = SealedName { tp: tp.clone(), start: 0, end: 9, date: "240101".into() };
        ledger.adopt(&tp, std::slice::from_ref(&name));
        // A file where the partition's state directory belongs makes the marker write fail.
        let state_dir = work.uploaded_marker(&tp).parent().unwrap().to_path_buf();
        std::fs::create_dir_all(state_dir.parent().unwrap()).unwrap();
        std::fs::write(&state_dir, b"in the way").unwrap();
        assert!(ledger.upload_confirmed(&name).is_err());
        assert_eq!(ledger.oldest_unconfirmed(&tp), Some(0), "nothing released without the marker");
        assert!(ledger.is_confirmed(&name) && !ledger.awaits_upload(&name), "not uploaded again");

        std::fs::remove_file(&state_dir).unwrap();
        let released = ledger.upload_confirmed(&name).unwrap();
        assert_eq!(released.deletable, vec![name]);
        assert_eq!(ledger.read_marker(&tp), Some(9));
    }

    #[test]
    fn only_the_oldest_pending_file_of_a_partition_may_be_uploaded_and_a_hold_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(WorkDir::new(dir.path()));
        let tp = TopicPartition::new("t", 0);
        let name = |start, end| SealedName { tp: tp.clone(), start, end, date: "240101".into() };
        ledger.adopt(&tp, &[name(0, 9), name(10, 19)]);
        ledger.sealed(&name(20, 29));
        assert!(ledger.awaits_upload(&name(0, 9)));
        assert!(!ledger.awaits_upload(&name(10, 19)), "waits for its predecessor's confirmation");
        ledger.upload_confirmed(&name(0, 9)).unwrap();
        assert!(ledger.awaits_upload(&name(10, 19)));

        assert!(ledger.hold_for_resync(&tp));
        assert!(!ledger.awaits_upload(&name(10, 19)), "held until resynced");
        ledger.truncate(&tp, 10);
        assert_eq!(ledger.pending_files(&tp), 0, "files from the resync offset on are forgotten");
        assert_eq!(ledger.oldest_unconfirmed(&tp), None);
        ledger.sealed(&name(10, 12));
        assert!(ledger.awaits_upload(&name(10, 12)), "the hold is lifted");
        assert!(!ledger.hold_for_resync(&TopicPartition::new("t", 1)), "not owned");
    }

    #[test]
    fn confirmation_after_release_keeps_the_local_file() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(WorkDir::new(dir.path()));
        let tp = TopicPartition::new("t", 0);
        ledger.adopt(&tp, &[SealedName { tp: tp.clone(), start: 0, end: 9, date: "240101".into() }]);
        ledger.release(&tp);
        let released = ledger.upload_confirmed(&SealedName { tp, start: 0, end: 9, date: "240101".into() }).unwrap();
        assert!(!released.owned);
        assert!(released.deletable.is_empty());
    }
}
