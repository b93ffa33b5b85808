//! The archive in the object store, shared by the daemon and every tool. It never touches Kafka
//! or the working directory.
//!
//! - [`keys`]: where a partition's objects and claims live and what they are called.
//! - [`claim`]: the claim that makes an object part of the archive, and the fence between
//!   instances that it is; [`fence`] stores a local file as a claimed object.
//! - [`chain`]: how far the archive holds a partition (the end of its chain of claims): the
//!   daemon's resume point on assignment and after giving way.
//! - [`catalog`]: what the archive holds per topic and partition, with its gaps and overlaps,
//!   from one listing ([`listing`]) and its claims: `verify`, and the tools that read the archive.
//! - [`object`]: reading one object (or a local MAK file): layers and version by content, records
//!   in a stream, the end checked.
//! - [`groups`]: consumer-group snapshots kept beside the data, for a restore to carry over.
//! - [`store`]: the S3 client.

pub mod catalog;
pub mod chain;
pub mod claim;
pub mod fence;
pub mod groups;
pub mod keys;
pub mod listing;
pub mod object;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

pub use catalog::{Catalog, CatalogObject, HeaderState, Headers, PartitionCatalog, Selection};
pub use claim::{Claim, ClaimProblem};
pub use groups::{GroupOffsets, GroupSnapshot, SnapshotError};
pub use keys::{ArchiveKey, Location, ObjectName};
pub use object::{ObjectError, ObjectHeader, ObjectProblem, ObjectReader};

/// What went wrong reading the archive. Every variant names the object or prefix as a URL
/// (`s3://bucket/key`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("{url}: {source}")]
    Store { url: String, source: object_store::Error },
    #[error("listing {url}: {source}")]
    List { url: String, source: object_store::Error },
    /// Something at a claim key that is not a sound claim.
    #[error("{url}: {problem}")]
    Claim { url: String, problem: ClaimProblem },
}

/// An archive: the store it is in, its key prefix, and the store's name in messages.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    at: Location,
    /// `s3://bucket`: what keys are appended to in messages.
    root: String,
    /// Storage class and tags of the data objects written ([`Archive::with_object_options`]).
    data_attributes: object_store::Attributes,
    data_tags: object_store::TagSet,
}

impl Archive {
    /// The archive under `prefix` in `store`, called `root` (`s3://bucket`) in messages.
    pub fn new(store: Arc<dyn ObjectStore>, root: impl Into<String>, prefix: &str) -> Self {
        let root = root.into().trim_end_matches('/').to_string();
        let (data_attributes, data_tags) = Default::default();
        Archive { store, at: Location::new(prefix), root, data_attributes, data_tags }
    }

    /// Data objects are written with `options`' storage class and tags. Claims are not: they are
    /// small and read at every start, which an infrequent-access class would bill per read.
    pub fn with_object_options(mut self, options: &crate::config::ObjectOptions) -> Self {
        if let Some(class) = &options.storage_class {
            self.data_attributes.insert(object_store::Attribute::StorageClass, class.clone().into());
        }
        for (key, value) in &options.tags {
            self.data_tags.push(key, value);
        }
        self
    }

    /// What a data object's single or multipart upload is written with.
    pub fn data_put_options(&self) -> (object_store::Attributes, object_store::TagSet) {
        (self.data_attributes.clone(), self.data_tags.clone())
    }

    pub fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }

    pub fn store_arc(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub fn location(&self) -> &Location {
        &self.at
    }

    /// `key` as a URL: `s3://bucket/key`.
    pub fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.root)
    }

    fn store_error(&self, key: &ObjectPath, source: object_store::Error) -> ArchiveError {
        ArchiveError::Store { url: self.url(key.as_ref()), source }
    }

    fn claim_error(&self, key: &ObjectPath, problem: ClaimProblem) -> ArchiveError {
        ArchiveError::Claim { url: self.url(key.as_ref()), problem }
    }
}
