//! `kafkatos3 ls`: what an archive holds, per topic and partition - objects, offsets, time range,
//! bytes, and what does not add up (gaps, overlaps, claims naming missing objects, unsound
//! claims) - from the archive's [`Catalog`](crate::archive::Catalog): one listing, every claim, and one ranged GET per
//! object for its header (the time range), never a whole object.
//!
//! The time range of a partition is exact when every object states its smallest and largest
//! timestamp (version 3 does); version 2 keeps only the first and the last record's timestamps,
//! which Kafka does not order, and version 1 none, so for them it is the best the headers say.

pub(crate) mod render;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::archive::catalog::{CatalogObject, HeaderState, PartitionCatalog};
use crate::archive::{Archive, ArchiveError, Headers, Selection, SnapshotError};

/// What to list.
#[derive(Default)]
pub struct Options<'a> {
    pub selection: Selection,
    /// Encrypted objects' headers are read only with it.
    pub decryption: Option<&'a mak::crypt::Decryption>,
    /// Also list each object.
    pub objects: bool,
    /// Progress on stderr: a bar on a terminal, else a line at this interval. None: silent.
    pub progress_every: Option<std::time::Duration>,
}

/// The archive, as `ls` shows it (and `--json` writes it).
#[derive(Debug, Serialize)]
pub struct Listing {
    /// `s3://bucket/prefix`.
    pub archive: String,
    pub partitions: Vec<PartitionListing>,
    /// Data objects no claim names: not part of the archive (an interrupted or losing upload).
    pub unclaimed: Vec<String>,
    /// Keys under the prefix that are not archive names.
    pub foreign: Vec<String>,
    /// The newest consumer-group snapshot the daemon kept (`[groups]`), if any.
    pub group_snapshot: Option<GroupSnapshotListing>,
}

/// The newest group snapshot: what `restore --groups` would carry over by default.
#[derive(Debug, Serialize)]
pub struct GroupSnapshotListing {
    pub key: String,
    pub taken_ms: i64,
    /// The groups it holds offsets of.
    pub groups: Vec<String>,
}

/// One partition of the archive.
#[derive(Debug, Serialize)]
pub struct PartitionListing {
    pub topic: String,
    pub partition: i32,
    /// Selected objects (their count, offsets, bytes and times below).
    pub objects: usize,
    pub first_offset: Option<i64>,
    pub last_offset: Option<i64>,
    /// The smallest and the largest timestamp the objects' headers state, in ms since the epoch.
    pub min_timestamp: Option<i64>,
    pub max_timestamp: Option<i64>,
    /// Every object stated its smallest and largest timestamp (version 3); otherwise the range
    /// is made of first and last records' timestamps and may not hold every record.
    pub time_range_exact: bool,
    /// Bytes of the objects in the store.
    pub bytes: u64,
    /// Objects by MAK version (`v1`, `v2`, `v3`; `unread` when the header could not be read).
    pub versions: BTreeMap<String, usize>,
    /// Objects by codec (`gzip`, `zstd`, `lz4`, `none`).
    pub codecs: BTreeMap<String, usize>,
    pub encrypted: usize,
    /// Objects named by a claim, and the Python original's objects, which have none.
    pub claimed: usize,
    pub original: usize,
    /// Offset ranges (inclusive) no object holds, and ranges more than one holds.
    pub gaps: Vec<[i64; 2]>,
    pub overlaps: Vec<[i64; 2]>,
    /// Claims naming an object that is not in the store.
    pub missing: Vec<MissingListing>,
    /// Claims that cannot be read or do not claim what their key names.
    pub bad_claims: Vec<ProblemListing>,
    /// Objects whose header could not be read: encrypted without a key, unreadable or damaged.
    pub unread_headers: Vec<ProblemListing>,
    /// Each object, with `--objects`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_list: Option<Vec<ObjectListing>>,
}

#[derive(Debug, Serialize)]
pub struct MissingListing {
    pub claim: String,
    pub object: String,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Serialize)]
pub struct ProblemListing {
    pub key: String,
    pub problem: String,
}

/// One object.
#[derive(Debug, Serialize)]
pub struct ObjectListing {
    pub key: String,
    pub first_offset: i64,
    pub last_offset: i64,
    pub bytes: u64,
    pub codec: String,
    pub encrypted: bool,
    pub version: Option<String>,
    pub min_timestamp: Option<i64>,
    pub max_timestamp: Option<i64>,
    pub time_range_exact: bool,
    pub claim: Option<String>,
}

impl PartitionListing {
    /// Nothing that does not add up.
    pub fn is_sound(&self) -> bool {
        self.gaps.is_empty() && self.overlaps.is_empty() && self.missing.is_empty() && self.bad_claims.is_empty()
    }
}

/// Lists the selected part of `archive` (requests on `runtime`).
pub fn ls(
    archive: &Archive,
    options: &Options<'_>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Listing, ArchiveError> {
    let headers = Headers::Read { decryption: options.decryption };
    // One ranged GET per object's header: what takes the time on a large archive.
    let progress = crate::tools::progress::Progress::new("ls", "object headers read");
    let catalog = crate::tools::progress::reporting(&progress, options.progress_every, || {
        runtime.block_on(archive.catalog_telling(&options.selection, headers, &progress))
    })?;
    let mut unclaimed: Vec<String> = catalog.unclaimed.iter().map(|key| archive.url(key.as_ref())).collect();
    unclaimed.sort();
    let partitions = catalog
        .partitions
        .iter()
        .map(|(tp, partition)| {
            let mut listing = partition_listing(archive, partition, options.objects);
            listing.topic.clone_from(&tp.topic);
            listing.partition = tp.partition;
            listing
        })
        .collect();
    let location = archive.location().prefix().trim_end_matches('/');
    let group_snapshot = match runtime.block_on(archive.latest_group_snapshot(None)) {
        Ok(snapshot) => snapshot.map(|(key, snapshot)| GroupSnapshotListing {
            key,
            taken_ms: snapshot.taken_ms,
            groups: snapshot.groups.into_keys().collect(),
        }),
        Err(SnapshotError::Archive(error)) => return Err(error),
        // A snapshot this version cannot read is the restore's problem, and it says so there.
        Err(error) => {
            tracing::warn!(%error, "the newest group snapshot is not readable");
            None
        }
    };
    Ok(Listing { archive: archive.url(location), partitions, unclaimed, foreign: catalog.foreign, group_snapshot })
}

fn partition_listing(archive: &Archive, partition: &PartitionCatalog, with_objects: bool) -> PartitionListing {
    let objects: Vec<ObjectListing> = partition.objects.iter().map(|o| object_listing(archive, o)).collect();
    let mut versions = BTreeMap::new();
    let mut codecs = BTreeMap::new();
    for object in &objects {
        *versions.entry(object.version.clone().unwrap_or_else(|| "unread".into())).or_insert(0) += 1;
        *codecs.entry(object.codec.clone()).or_insert(0) += 1;
    }
    let unread_headers = partition
        .objects
        .iter()
        .filter_map(|o| {
            let problem = match &o.header {
                HeaderState::NotRead | HeaderState::Read(_) => return None,
                HeaderState::NeedsKey => "encrypted: give --identity or --passphrase to read its header".to_string(),
                HeaderState::Unreadable(error) => error.to_string(),
                HeaderState::Damaged(error) => error.problem.to_string(),
            };
            Some(ProblemListing { key: archive.url(o.key.as_ref()), problem })
        })
        .collect();
    PartitionListing {
        topic: String::new(),
        partition: 0,
        objects: objects.len(),
        first_offset: objects.iter().map(|o| o.first_offset).min(),
        last_offset: objects.iter().map(|o| o.last_offset).max(),
        min_timestamp: objects.iter().filter_map(|o| o.min_timestamp).min(),
        max_timestamp: objects.iter().filter_map(|o| o.max_timestamp).max(),
        time_range_exact: objects.iter().all(|o| o.time_range_exact),
        bytes: objects.iter().map(|o| o.bytes).sum(),
        versions,
        codecs,
        encrypted: objects.iter().filter(|o| o.encrypted).count(),
        claimed: objects.iter().filter(|o| o.claim.is_some()).count(),
        original: objects.iter().filter(|o| o.claim.is_none()).count(),
        gaps: partition.gaps.iter().map(|&(from, to)| [from, to]).collect(),
        overlaps: partition.overlaps.iter().map(|&(from, to)| [from, to]).collect(),
        missing: partition
            .missing
            .iter()
            .map(|m| MissingListing {
                claim: archive.url(m.claim.as_ref()),
                object: m.object.clone(),
                first_offset: m.first,
                last_offset: m.last,
            })
            .collect(),
        bad_claims: partition
            .bad_claims
            .iter()
            .map(|b| ProblemListing { key: archive.url(b.key.as_ref()), problem: b.error.to_string() })
            .collect(),
        unread_headers,
        object_list: with_objects.then_some(objects),
    }
}

fn object_listing(archive: &Archive, object: &CatalogObject) -> ObjectListing {
    let header = object.read_header();
    // Version 3 states the smallest and largest timestamp; version 2 only the first and the
    // last record's, which bound nothing when producers' clocks disagree.
    let (min_timestamp, max_timestamp, exact) = match header {
        Some(h) if h.version == mak::Version::V3 => (h.time_range.map(|r| r.0), h.time_range.map(|r| r.1), true),
        Some(h) => match (h.first_timestamp, h.last_timestamp) {
            (Some(first), Some(last)) => (Some(first.min(last)), Some(first.max(last)), false),
            (first, last) => (first.or(last), first.or(last), false),
        },
        None => (None, None, false),
    };
    ObjectListing {
        key: archive.url(object.key.as_ref()),
        first_offset: object.name.start,
        last_offset: object.name.end,
        bytes: object.size,
        codec: object.name.codec.name().to_string(),
        encrypted: object.name.encrypted,
        version: header.map(|h| version_name(h.version).to_string()),
        min_timestamp,
        max_timestamp,
        time_range_exact: exact,
        claim: object.claim.as_ref().map(|key| archive.url(key.as_ref())),
    }
}

fn version_name(version: mak::Version) -> &'static str {
    match version {
        mak::Version::V1 => "v1",
        mak::Version::V2 => "v2",
        mak::Version::V3 => "v3",
    }
}

#[cfg(test)]
mod tests;
