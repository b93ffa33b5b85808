//! One listing of (part of) an archive, every key taken apart by its name: data objects, claims,
//! and keys that are neither. Nothing is read but the listing itself.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::ObjectMeta;

use super::keys::{ArchiveKey, ObjectName};
use super::{Archive, ArchiveError};
use crate::names::TopicPartition;

#[derive(Debug, Default)]
pub struct Listing {
    /// Data objects by key.
    pub(super) objects: BTreeMap<String, (ObjectMeta, ObjectName)>,
    /// Claim keys with the partition and first offset their names state.
    pub(super) claims: Vec<(ObjectPath, TopicPartition, i64)>,
    /// Keys that are not archive names (left alone, reported).
    pub(super) foreign: Vec<String>,
}

impl Listing {
    /// Lists everything below `under` (the whole archive when None).
    pub async fn list(archive: &Archive, under: Option<&ObjectPath>) -> Result<Listing, ArchiveError> {
        let under = under.cloned().or_else(|| archive.location().root());
        let listed: Vec<ObjectMeta> = archive.store().list(under.as_ref()).try_collect().await.map_err(|source| {
            // A folder, as the user would write it: with its trailing slash.
            let folder = under.as_ref().map_or(String::new(), |p| format!("{p}/"));
            ArchiveError::List { url: archive.url(&folder), source }
        })?;
        let mut listing = Listing::default();
        for meta in listed {
            listing.add(archive, meta);
        }
        Ok(listing)
    }

    /// Lists each of `dirs` (folders of topics or partitions) into one listing.
    pub async fn list_each(archive: &Archive, dirs: &[ObjectPath]) -> Result<Listing, ArchiveError> {
        let mut all = Listing::default();
        for dir in dirs {
            let part = Listing::list(archive, Some(dir)).await?;
            all.objects.extend(part.objects);
            all.claims.extend(part.claims);
            all.foreign.extend(part.foreign);
        }
        Ok(all)
    }

    fn add(&mut self, archive: &Archive, meta: ObjectMeta) {
        let key = meta.location.to_string();
        if archive.location().is_meta_key(&key) {
            return; // The archive's own (group snapshots): neither data nor foreign.
        }
        match archive.location().parse_key(&key) {
            Some(ArchiveKey::Object(name)) => {
                self.objects.insert(key, (meta, name));
            }
            Some(ArchiveKey::Claim { tp, start }) => self.claims.push((meta.location, tp, start)),
            None => self.foreign.push(key),
        }
    }

    pub fn objects(&self) -> impl Iterator<Item = (&ObjectMeta, &ObjectName)> {
        self.objects.values().map(|(meta, name)| (meta, name))
    }

    /// The partition and first offset of every claim listed.
    pub fn claims(&self) -> impl Iterator<Item = (&TopicPartition, i64)> {
        self.claims.iter().map(|(_, tp, start)| (tp, *start))
    }
}
