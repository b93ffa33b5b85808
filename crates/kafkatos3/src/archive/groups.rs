//! Consumer-group snapshots: the committed offsets of the groups the daemon is told to keep
//! (`[groups] archive_groups`), stored beside the data as small JSON objects, so that a restore
//! into a new cluster can carry the groups over (`restore --groups`) without the old one.
//!
//! Keys: `<prefix>/_kafkatos3/groups/<day, UTC>/<taken at, ms, 20 digits>-<instance>.json`: a
//! listing returns them oldest first, and finding the newest one at a time lists one day's folder
//! (and the folder of days), not years of snapshots. `_kafkatos3` is a legal topic name, but `groups` is not a partition
//! number, so no data key or claim can be read as a snapshot, nor a snapshot as either. Every
//! instance of a group writes its own snapshots (when what it reads has changed): no fence is
//! needed, a newer reading simply wins.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::{Archive, ArchiveError, Location};

/// The folder of everything in an archive that is not a partition's data.
const META_DIR: &str = "_kafkatos3";
const GROUPS_DIR: &str = "groups";
const SNAPSHOT_SUFFIX: &str = ".json";
/// The snapshot format this version writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// Committed offsets: group -> topic -> partition -> next offset to read.
pub type GroupOffsets = BTreeMap<String, BTreeMap<String, BTreeMap<i32, i64>>>;

/// One reading of the selected groups' committed offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    pub format: u32,
    /// When the offsets were read, ms since the epoch.
    pub taken_ms: i64,
    /// Who read them (host and process), so two instances never write the same key.
    pub instance: String,
    /// The partition count of each archived topic at that time: what `restore --create-topics`
    /// recreates.
    pub topics: BTreeMap<String, i32>,
    /// Only partitions with a commit; a group with none is left out.
    pub groups: GroupOffsets,
}

/// Why no snapshot could be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("{url}: not a group snapshot this version reads: {problem}")]
    Invalid { url: String, problem: String },
}

/// A snapshot as listed: its key and when it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotKey {
    pub key: ObjectPath,
    pub taken_ms: i64,
}

impl Location {
    /// `<prefix>/_kafkatos3/groups`.
    pub fn groups_dir(&self) -> ObjectPath {
        self.key(format!("{META_DIR}/{GROUPS_DIR}"))
    }

    fn snapshot_key(&self, taken_ms: i64, instance: &str) -> ObjectPath {
        // An instance name is the user's (a host name): keep it to what any store takes as is.
        let instance: String =
            instance.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        let day = day_of(taken_ms);
        self.key(format!("{META_DIR}/{GROUPS_DIR}/{day}/{taken_ms:020}-{instance}{SNAPSHOT_SUFFIX}"))
    }

    /// `<prefix>/_kafkatos3/groups/<day>`.
    fn snapshot_day_dir(&self, day: &str) -> ObjectPath {
        self.key(format!("{META_DIR}/{GROUPS_DIR}/{day}"))
    }

    /// Whether `key` is in the archive's own folder (snapshots, and whatever later versions keep
    /// there): not data, and not foreign either.
    pub fn is_meta_key(&self, key: &str) -> bool {
        let rest = if self.prefix().is_empty() {
            Some(key)
        } else {
            key.strip_prefix(self.prefix()).and_then(|r| r.strip_prefix('/'))
        };
        let mut parts = rest.unwrap_or_default().split('/');
        // `_kafkatos3/<partition number>/...` is the data of a topic of that name.
        parts.next() == Some(META_DIR) && parts.next().is_some_and(|second| second.parse::<i32>().is_err())
    }

    /// The snapshot `key` names, with when it was taken.
    pub fn parse_snapshot_key(&self, key: &ObjectPath) -> Option<SnapshotKey> {
        let rest = key.as_ref().strip_prefix(self.groups_dir().as_ref())?.strip_prefix('/')?;
        let (day, file) = rest.split_once('/')?;
        let (taken, _) = file.strip_suffix(SNAPSHOT_SUFFIX)?.split_once('-')?;
        (day.len() == 10).then_some(())?;
        (taken.len() == 20).then_some(())?;
        Some(SnapshotKey { key: key.clone(), taken_ms: taken.parse().ok()? })
    }
}

impl Archive {
    /// Stores `snapshot` under a key of its own; returns the key.
    pub async fn put_group_snapshot(&self, snapshot: &GroupSnapshot) -> Result<ObjectPath, ArchiveError> {
        let key = self.location().snapshot_key(snapshot.taken_ms, &snapshot.instance);
        let body = serde_json::to_vec_pretty(snapshot).expect("a snapshot is plain data");
        self.store().put(&key, PutPayload::from(body)).await.map_err(|e| self.store_error(&key, e))?;
        Ok(key)
    }

    /// The snapshots under `dir` (the whole folder, or one day's), oldest first.
    async fn group_snapshots(&self, dir: &ObjectPath) -> Result<Vec<SnapshotKey>, ArchiveError> {
        let listed: Vec<ObjectMeta> = self
            .store()
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|source| ArchiveError::List { url: self.url(&format!("{dir}/")), source })?;
        let mut snapshots: Vec<SnapshotKey> =
            listed.iter().filter_map(|meta| self.location().parse_snapshot_key(&meta.location)).collect();
        snapshots.sort_by(|a, b| (a.taken_ms, a.key.as_ref()).cmp(&(b.taken_ms, b.key.as_ref())));
        Ok(snapshots)
    }

    /// The days that have snapshots, newest first.
    async fn snapshot_days(&self) -> Result<Vec<String>, ArchiveError> {
        let dir = self.location().groups_dir();
        let listed = self
            .store()
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|source| ArchiveError::List { url: self.url(&format!("{dir}/")), source })?;
        let mut days: Vec<String> =
            listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect();
        days.sort_by(|a, b| b.cmp(a));
        Ok(days)
    }

    /// The newest snapshot taken at or before `at_ms` (any, when None), read.
    pub async fn latest_group_snapshot(
        &self,
        at_ms: Option<i64>,
    ) -> Result<Option<(String, GroupSnapshot)>, SnapshotError> {
        let last_day = at_ms.map(day_of);
        let mut chosen = None;
        for day in self.snapshot_days().await?.into_iter().filter(|d| last_day.as_ref().is_none_or(|last| d <= last)) {
            let snapshots = self.group_snapshots(&self.location().snapshot_day_dir(&day)).await?;
            chosen = snapshots.into_iter().rev().find(|s| at_ms.is_none_or(|at| s.taken_ms <= at));
            if chosen.is_some() {
                break;
            }
        }
        let Some(chosen) = chosen else {
            return Ok(None);
        };
        let bytes: Bytes = match self.store().get(&chosen.key).await {
            Ok(result) => result.bytes().await,
            Err(e) => Err(e),
        }
        .map_err(|e| self.store_error(&chosen.key, e))?;
        let url = self.url(chosen.key.as_ref());
        let snapshot: GroupSnapshot = serde_json::from_slice(&bytes)
            .map_err(|e| SnapshotError::Invalid { url: url.clone(), problem: e.to_string() })?;
        if snapshot.format != SNAPSHOT_FORMAT {
            let problem = format!("snapshot format {} (this version reads {SNAPSHOT_FORMAT})", snapshot.format);
            return Err(SnapshotError::Invalid { url, problem });
        }
        Ok(Some((url, snapshot)))
    }
}

/// `YYYY-MM-DD` (UTC) of a time in ms since the epoch.
fn day_of(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let date = at.date();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_keys_sort_by_time_and_are_never_data_keys() {
        for prefix in ["", "backups/kafka"] {
            let at = Location::new(prefix);
            let key = at.snapshot_key(1_700_000_000_123, "host a/1");
            let parsed = at.parse_snapshot_key(&key).unwrap();
            assert_eq!(parsed.taken_ms, 1_700_000_000_123);
            assert!(key.as_ref().ends_with("/groups/2023-11-14/00000001700000000123-host_a_1.json"), "{key}");
            assert!(at.is_meta_key(key.as_ref()));
            assert_eq!(at.parse_key(key.as_ref()), None, "{key} is not a data key");
            // A topic really called _kafkatos3 keeps its data.
            let data = at.partition_dir(&crate::names::TopicPartition::new("_kafkatos3", 0));
            assert!(!at.is_meta_key(&format!("{data}/_kafkatos3-0_00000000000000000000.claim")));
        }
        let at = Location::new("p");
        assert!(at.snapshot_key(9, "x").as_ref() < at.snapshot_key(10, "a").as_ref());
    }

    #[tokio::test]
    async fn the_newest_snapshot_at_or_before_a_time_is_found_across_days() {
        let store = std::sync::Arc::new(object_store::memory::InMemory::new());
        let archive = Archive::new(store, "s3://b", "p");
        let day = 86_400_000;
        let snapshot = |taken_ms: i64, instance: &str| GroupSnapshot {
            format: SNAPSHOT_FORMAT,
            taken_ms,
            instance: instance.into(),
            topics: [("t".to_string(), 3)].into(),
            groups: [("g".to_string(), [("t".to_string(), [(0, taken_ms)].into())].into())].into(),
        };
        assert_eq!(archive.latest_group_snapshot(None).await.unwrap(), None, "no snapshot yet");
        for (taken, instance) in [(10 * day + 5, "a"), (10 * day + 9, "b"), (12 * day + 1, "a")] {
            archive.put_group_snapshot(&snapshot(taken, instance)).await.unwrap();
        }
        let archive = &archive;
        let taken =
            |at: Option<i64>| async move { archive.latest_group_snapshot(at).await.unwrap().map(|(_, s)| s.taken_ms) };
        assert_eq!(taken(None).await, Some(12 * day + 1));
        assert_eq!(taken(Some(12 * day)).await, Some(10 * day + 9), "the day before has the newest one");
        assert_eq!(taken(Some(10 * day + 8)).await, Some(10 * day + 5));
        assert_eq!(taken(Some(10 * day + 4)).await, None);
        let (url, read) = archive.latest_group_snapshot(None).await.unwrap().unwrap();
        assert_eq!(read, snapshot(12 * day + 1, "a"));
        assert!(url.starts_with("s3://b/p/_kafkatos3/groups/1970-01-13/"), "{url}");
    }
}
