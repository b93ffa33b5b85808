//! The catalog: what an archive holds, per topic and partition, from one listing and its claims.
//!
//! "The archive" is the set of objects the claims name, plus the Python original's objects (which
//! have no claims). The catalog lists the prefix (or the folders of the selected topics or
//! partitions) once, reads every claim (a few bytes each, 16 at a time), and gives per partition
//! the objects in offset order with their offsets, codec, encryption and size - and, when asked,
//! what each object's header states (its last offset and its first and last record's
//! timestamps, from one ranged GET). It reports what does not add up: gaps and overlaps between
//! objects, claims naming a missing object, claims that are unreadable or do not match their key,
//! data objects no claim names, and keys that are not archive names.
//!
//! Objects tile a partition's offsets: each file starts where the previous one ended, so a hole
//! between two objects is offsets nobody archived, and an overlap is offsets archived twice.
//! Offsets Kafka itself skips (compaction, transaction markers) fall inside files, never between.

use std::collections::BTreeMap;

use futures::StreamExt;
use object_store::path::Path as ObjectPath;

use super::keys::ObjectName;
use super::listing::Listing;
use super::object::{ObjectError, ObjectHeader, ObjectReader};
use super::{Archive, ArchiveError, Claim};
use crate::names::TopicPartition;

/// First and last offset, inclusive.
pub type OffsetRange = (i64, i64);

/// Claims and headers read at once.
const CONCURRENT_READS: usize = 16;

/// Which part of an archive to catalog. Empty lists and `None` bounds select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Topic names.
    pub topics: Vec<String>,
    /// Partition numbers (of every selected topic).
    pub partitions: Vec<i32>,
    /// Offsets, inclusive: an object is kept when it holds any offset in the range.
    pub from_offset: Option<i64>,
    pub to_offset: Option<i64>,
    /// Record times in ms, as Kafka's ListOffsets cuts a partition: from the first record whose
    /// timestamp is at or after `from_ms`, to the last record before the first one at or after
    /// `to_ms`. Objects are only dropped where their headers prove it: from the first object whose
    /// first record is at or after `to_ms` on (the cut ends before it), and the leading objects
    /// whose largest timestamp is before `from_ms` (version 3 objects state it; first and last
    /// timestamps, which are all version 2 keeps, are not a minimum and a maximum).
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Per partition, an offset below which the caller already knows the archive (an export that
    /// follows it): objects wholly below it are left out and their claims not read, so that
    /// listing a large archive again costs its LIST pages, not a GET per claim. (An object that
    /// starts below it and ends at or after it is kept, and its claim read.)
    pub known_below: BTreeMap<TopicPartition, i64>,
}

impl Selection {
    fn takes(&self, tp: &TopicPartition) -> bool {
        (self.topics.is_empty() || self.topics.contains(&tp.topic))
            && (self.partitions.is_empty() || self.partitions.contains(&tp.partition))
    }

    /// Whether offsets from `first` to `last` are below what the caller knows.
    fn known(&self, tp: &TopicPartition, first: i64, last: i64) -> bool {
        self.known_below.get(tp).is_some_and(|&below| first < below && last < below)
    }

    fn takes_offsets(&self, first: i64, last: i64) -> bool {
        self.from_offset.is_none_or(|from| last >= from) && self.to_offset.is_none_or(|to| first <= to)
    }
}

/// Whether [`Archive::catalog`] reads each selected object's header.
#[derive(Clone, Copy, Default)]
pub enum Headers<'a> {
    #[default]
    Skip,
    /// One ranged GET per object; encrypted objects only with a key.
    Read { decryption: Option<&'a mak::crypt::Decryption> },
}

/// Told how far [`Archive::catalog_telling`] is (a tool's progress); `()` tells nobody.
pub trait CatalogProgress: Sync {
    /// Listed, claims read: `objects` of `bytes` in all are selected.
    fn listed(&self, _objects: u64, _bytes: u64) {}
    /// One more selected object's header is read.
    fn header_read(&self, _object: &CatalogObject) {}
}

impl CatalogProgress for () {}

/// What an object's header said, if it was read.
#[derive(Debug, Default)]
pub enum HeaderState {
    #[default]
    NotRead,
    Read(ObjectHeader),
    /// Encrypted, and no key was given.
    NeedsKey,
    Unreadable(ArchiveError),
    Damaged(ObjectError),
}

/// One object of the archive.
#[derive(Debug)]
pub struct CatalogObject {
    pub key: ObjectPath,
    /// Partition, offsets, codec and encryption, as its key names them (and its claim, if any).
    pub name: ObjectName,
    pub size: u64,
    /// The claim that makes it part of the archive; None for the original's objects.
    pub claim: Option<ObjectPath>,
    pub header: HeaderState,
}

impl CatalogObject {
    /// What its header said, when it was read and made sense.
    pub fn read_header(&self) -> Option<&ObjectHeader> {
        match &self.header {
            HeaderState::Read(header) => Some(header),
            _ => None,
        }
    }
}

/// A claim naming an object that is not in the listing: its offsets are a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingObject {
    pub claim: ObjectPath,
    pub object: String,
    pub first: i64,
    pub last: i64,
}

/// A claim that could not be read, or does not claim what its key names.
#[derive(Debug)]
pub struct BadClaim {
    pub key: ObjectPath,
    /// The first offset its key names.
    pub start: i64,
    pub error: ArchiveError,
}

/// One partition of the archive.
#[derive(Debug, Default)]
pub struct PartitionCatalog {
    /// The selected objects, by first then last offset.
    pub objects: Vec<CatalogObject>,
    /// Offsets between the partition's objects that none holds (of all its objects, not only the
    /// selected ones).
    pub gaps: Vec<OffsetRange>,
    /// Offsets more than one object holds.
    pub overlaps: Vec<OffsetRange>,
    pub missing: Vec<MissingObject>,
    pub bad_claims: Vec<BadClaim>,
    /// The offsets of this partition's data objects that no claim names (also in
    /// [`Catalog::unclaimed`]): an upload between its data and its claim, or a lost race.
    pub unclaimed: Vec<OffsetRange>,
}

impl PartitionCatalog {
    pub fn is_sound(&self) -> bool {
        self.gaps.is_empty() && self.overlaps.is_empty() && self.missing.is_empty() && self.bad_claims.is_empty()
    }
}

/// An archive, per topic and partition.
#[derive(Debug, Default)]
pub struct Catalog {
    pub partitions: BTreeMap<TopicPartition, PartitionCatalog>,
    /// Keys under the prefix that are not archive names (left alone).
    pub foreign: Vec<String>,
    /// Data objects no claim names: a crash between writing an object and claiming it, or an
    /// instance that lost the claim and could not delete its object. Not part of the archive.
    pub unclaimed: Vec<ObjectPath>,
}

impl Archive {
    /// Lists the selected part of the archive once, reads its claims, and (with
    /// [`Headers::Read`]) the headers of the selected objects.
    pub async fn catalog(&self, selection: &Selection, headers: Headers<'_>) -> Result<Catalog, ArchiveError> {
        self.catalog_telling(selection, headers, &()).await
    }

    /// [`Archive::catalog`], telling `progress` how far it is.
    pub async fn catalog_telling(
        &self,
        selection: &Selection,
        headers: Headers<'_>,
        progress: &dyn CatalogProgress,
    ) -> Result<Catalog, ArchiveError> {
        let listing = self.list_selected(selection).await?;
        let mut objects = listing.objects;
        objects.retain(|_, (_, name)| selection.takes(&name.tp) && !selection.known(&name.tp, name.start, name.end));
        // A claim's key says where its object starts, not where it ends: those starting below
        // what is known are read only when a listed object of theirs reaches past it.
        let reaching: std::collections::BTreeSet<(&TopicPartition, i64)> =
            objects.values().map(|(_, name)| (&name.tp, name.start)).collect();
        let claims: Vec<_> = listing
            .claims
            .into_iter()
            .filter(|(_, tp, start)| {
                selection.takes(tp) && (!selection.known(tp, *start, *start) || reaching.contains(&(tp, *start)))
            })
            .collect();
        let mut catalog = Catalog { foreign: listing.foreign, ..Catalog::default() };
        let read: Vec<_> = futures::stream::iter(claims)
            .map(|(key, tp, start)| async move { (self.read_claim(&key).await, key, tp, start) })
            .buffer_unordered(CONCURRENT_READS)
            .collect()
            .await;
        for (claim, key, tp, start) in read {
            let partition = catalog.partitions.entry(tp.clone()).or_default();
            let claimed = match claim {
                Ok(Some(claim)) => self.claimed(claim, &key, &tp, start),
                Ok(None) => Err(self.claim_error(&key, super::ClaimProblem::Vanished)),
                Err(error) => Err(error),
            };
            match claimed {
                Ok((claim, name)) => {
                    let object_key = self.location().key_in(&tp, &claim.object);
                    match objects.remove(object_key.as_ref()) {
                        Some((meta, _)) => partition.objects.push(CatalogObject {
                            key: object_key,
                            name,
                            size: meta.size,
                            claim: Some(key),
                            header: HeaderState::NotRead,
                        }),
                        None => partition.missing.push(MissingObject {
                            claim: key,
                            object: claim.object,
                            first: claim.first,
                            last: claim.last,
                        }),
                    }
                }
                Err(error) => partition.bad_claims.push(BadClaim { key, start, error }),
            }
        }
        for (key, (meta, name)) in objects {
            if name.original {
                let partition = catalog.partitions.entry(name.tp.clone()).or_default();
                let object = CatalogObject {
                    key: meta.location,
                    name,
                    size: meta.size,
                    claim: None,
                    header: HeaderState::NotRead,
                };
                partition.objects.push(object);
            } else {
                catalog.partitions.entry(name.tp.clone()).or_default().unclaimed.push((name.start, name.end));
                catalog.unclaimed.push(ObjectPath::from(key));
            }
        }
        for partition in catalog.partitions.values_mut() {
            partition.objects.sort_by_key(|o| (o.name.start, o.name.end));
            partition.missing.sort_by_key(|m| m.first);
            partition.bad_claims.sort_by_key(|b| b.start);
            // A claim naming a missing object leaves its offsets in no object: a gap.
            let (gaps, overlaps) = coverage(partition.objects.iter().map(|o| (o.name.start, o.name.end)));
            partition.gaps = gaps;
            partition.overlaps = overlaps;
            partition.objects.retain(|o| selection.takes_offsets(o.name.start, o.name.end));
        }
        progress.listed(catalog.objects().count() as u64, catalog.objects().map(|o| o.size).sum());
        if let Headers::Read { decryption } = headers {
            catalog.read_headers_telling(self, decryption, &|object| progress.header_read(object)).await;
            catalog.cut_at_time(selection);
        }
        Ok(catalog)
    }

    /// One listing of what the selection can hold: the partitions' folders when both topics and
    /// partitions are named, the topics' folders when topics are, else the whole prefix.
    async fn list_selected(&self, selection: &Selection) -> Result<Listing, ArchiveError> {
        let at = self.location();
        match (selection.topics.is_empty(), selection.partitions.is_empty()) {
            (true, _) => Listing::list(self, None).await,
            (false, true) => {
                let dirs: Vec<ObjectPath> = selection.topics.iter().map(|t| at.topic_dir(t)).collect();
                Listing::list_each(self, &dirs).await
            }
            (false, false) => {
                let dirs: Vec<ObjectPath> = selection
                    .topics
                    .iter()
                    .flat_map(|t| {
                        selection.partitions.iter().map(move |&p| at.partition_dir(&TopicPartition::new(t, p)))
                    })
                    .collect();
                Listing::list_each(self, &dirs).await
            }
        }
    }

    /// A claim read at `key` that names a well-named object of its own key's offsets.
    fn claimed(
        &self,
        claim: Claim,
        key: &ObjectPath,
        tp: &TopicPartition,
        start: i64,
    ) -> Result<(Claim, ObjectName), ArchiveError> {
        claim.check_key(tp, start).map_err(|problem| self.claim_error(key, problem))?;
        let name = claim.object_name().map_err(|problem| self.claim_error(key, problem))?;
        Ok((claim, name))
    }
}

impl Catalog {
    /// Reads the header of every object (one ranged GET each), calling `read` with each object
    /// once its header is read (a tool's progress).
    async fn read_headers_telling(
        &mut self,
        archive: &Archive,
        decryption: Option<&mak::crypt::Decryption>,
        read: &(dyn Fn(&CatalogObject) + Sync),
    ) {
        let objects = self.partitions.values_mut().flat_map(|p| p.objects.iter_mut());
        futures::stream::iter(objects)
            .for_each_concurrent(CONCURRENT_READS, |object| async move {
                object.header = header_of(archive, object, decryption).await;
                read(object);
            })
            .await;
    }

    /// Drops, per partition, the objects outside a time cut (see [`Selection::from_ms`]): the
    /// leading objects whose largest timestamp is before `from_ms` (the cut has not begun by
    /// their end; only version 3 states a largest timestamp), and every object from the first
    /// one whose first record is at or after `to_ms` (the cut has ended before it). An object
    /// whose header was not read, or does not say, is kept.
    ///
    /// Partitions the caller knows part of ([`Selection::known_below`]) keep their leading
    /// objects: what opened the window may be among the known ones, after which every record is
    /// in the cut.
    fn cut_at_time(&mut self, selection: &Selection) {
        let (from_ms, to_ms) = (selection.from_ms, selection.to_ms);
        for (tp, partition) in &mut self.partitions {
            if let Some(to_ms) = to_ms {
                let past = partition
                    .objects
                    .iter()
                    .position(|o| o.read_header().and_then(|h| h.first_timestamp).is_some_and(|first| first >= to_ms));
                if let Some(past) = past {
                    partition.objects.truncate(past);
                }
            }
            if let Some(from_ms) = from_ms.filter(|_| !selection.known_below.contains_key(tp)) {
                let before = partition
                    .objects
                    .iter()
                    .take_while(|o| o.read_header().and_then(|h| h.time_range).is_some_and(|(_, max)| max < from_ms))
                    .count();
                partition.objects.drain(..before);
            }
        }
    }

    /// Every selected object, partition by partition, in offset order.
    pub fn objects(&self) -> impl Iterator<Item = &CatalogObject> {
        self.partitions.values().flat_map(|p| p.objects.iter())
    }
}

async fn header_of(
    archive: &Archive,
    object: &CatalogObject,
    decryption: Option<&mak::crypt::Decryption>,
) -> HeaderState {
    if object.name.encrypted && decryption.is_none() {
        return HeaderState::NeedsKey;
    }
    let bytes = match archive.head_bytes(&object.key, object.size, object.name.encrypted).await {
        Ok(bytes) => bytes,
        Err(error) => return HeaderState::Unreadable(error),
    };
    match ObjectReader::open(archive.url(object.key.as_ref()), &bytes[..], decryption).and_then(|r| r.header()) {
        Ok(header) => HeaderState::Read(header),
        // Encrypted by its content but not by its name (the keyless case returned above): the
        // name lies about the object, which is damage, not a missing key.
        Err(error) => HeaderState::Damaged(error),
    }
}

/// Gaps and overlaps between inclusive ranges sorted by start.
pub fn coverage(ranges: impl Iterator<Item = OffsetRange>) -> (Vec<OffsetRange>, Vec<OffsetRange>) {
    let (mut gaps, mut overlaps) = (Vec::new(), Vec::new());
    let mut covered_to: Option<i64> = None;
    for (start, end) in ranges {
        if let Some(to) = covered_to {
            if start > to + 1 {
                gaps.push((to + 1, start - 1));
            } else if start <= to {
                overlaps.push((start, end.min(to)));
            }
        }
        covered_to = Some(covered_to.map_or(end, |to| to.max(end)));
    }
    (gaps, overlaps)
}

#[cfg(test)]
mod tests;
