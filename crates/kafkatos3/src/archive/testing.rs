//! Test fixtures for the archive without a server: object_store's in-memory store, a wrapper
//! that fails or delays chosen calls, and archived objects written as the daemon writes them.

use std::fmt;
use std::io::Write as _;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use super::{Archive, Claim};
use crate::names::{SealedName, TopicPartition};

/// An archive under `p` in a fresh in-memory store.
pub fn memory_archive() -> Archive {
    Archive::new(Arc::new(InMemory::new()), "memory://test", "p")
}

/// The kinds of request a [`FaultyStore`] can fail or delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Put,
    List,
    Delete,
}

/// A store that refuses (as an unreachable S3 would) or delays the requests of a kind whose key
/// contains a fragment, and passes everything else to the store it wraps.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    failing: Mutex<Vec<(Op, String)>>,
    delayed: Mutex<Vec<(Op, String, Duration)>>,
    /// Puts overwrite whatever their mode asks (as some S3-compatible servers do).
    overwrites: std::sync::atomic::AtomicBool,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(FaultyStore {
            inner,
            failing: Mutex::default(),
            delayed: Mutex::default(),
            overwrites: Default::default(),
        })
    }

    /// Every put overwrites from now on, `If-None-Match` or not.
    pub fn ignore_create_mode(&self) {
        self.overwrites.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Requests of kind `op` for keys containing `fragment` fail from now on.
    pub fn fail(&self, op: Op, fragment: &str) {
        self.failing.lock().unwrap().push((op, fragment.to_string()));
    }

    /// Requests of kind `op` for keys containing `fragment` take `delay` longer from now on.
    pub fn delay(&self, op: Op, fragment: &str, delay: Duration) {
        self.delayed.lock().unwrap().push((op, fragment.to_string(), delay));
    }

    /// Every request succeeds again.
    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
        self.delayed.lock().unwrap().clear();
    }

    fn injected(&self, op: Op, key: &str) -> object_store::Result<()> {
        let refused = self.failing.lock().unwrap().iter().any(|(o, f)| *o == op && key.contains(f.as_str()));
        if refused {
            return Err(object_store::Error::Generic {
                store: "faulty",
                source: format!("{op:?} {key}: injected failure").into(),
            });
        }
        Ok(())
    }

    async fn check(&self, op: Op, key: &str) -> object_store::Result<()> {
        let delay =
            self.delayed.lock().unwrap().iter().find(|(o, f, _)| *o == op && key.contains(f.as_str())).map(|d| d.2);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.injected(op, key)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(Op::Put, location.as_ref()).await?;
        let opts = if self.overwrites.load(std::sync::atomic::Ordering::SeqCst) { PutOptions::default() } else { opts };
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(Op::Put, location.as_ref()).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> object_store::Result<GetResult> {
        self.check(Op::Get, location.as_ref()).await?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &ObjectPath, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.check(Op::Get, location.as_ref()).await?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        let failing: Vec<String> =
            self.failing.lock().unwrap().iter().filter(|(o, _)| *o == Op::Delete).map(|(_, f)| f.clone()).collect();
        let checked = locations.map(move |location| {
            let location = location?;
            match failing.iter().find(|f| location.as_ref().contains(f.as_str())) {
                Some(_) => Err(object_store::Error::Generic {
                    store: "faulty",
                    source: format!("Delete {location}: injected failure").into(),
                }),
                None => Ok(location),
            }
        });
        self.inner.delete_stream(checked.boxed())
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let key = prefix.map(|p| p.to_string()).unwrap_or_default();
        if let Err(error) = self.injected(Op::List, &key) {
            return futures::stream::once(async move { Err(error) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> object_store::Result<ListResult> {
        self.check(Op::List, prefix.map(|p| p.as_ref()).unwrap_or_default()).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &ObjectPath, to: &ObjectPath, options: CopyOptions) -> object_store::Result<()> {
        self.check(Op::Put, to.as_ref()).await?;
        self.inner.copy_opts(from, to, options).await
    }
}

/// How a test object's records are made: its MAK version, and each record's timestamp from its
/// offset.
#[derive(Clone, Copy)]
pub struct Made {
    pub version: mak::Version,
    pub stamp: fn(i64) -> i64,
}

impl Default for Made {
    /// Version 3; record `o` stamped `1_000 * o` ms.
    fn default() -> Self {
        Made { version: mak::Version::V3, stamp: |offset| 1_000 * offset }
    }
}

/// The bytes of a sealed MAK file (version 3, the default) of `tp` holding `start..=end`, gzipped; record `o` is
/// stamped `1_000 * o` ms.
pub fn object_bytes(tp: &TopicPartition, start: i64, end: i64) -> Vec<u8> {
    object_bytes_made(tp, start, end, Made::default())
}

/// [`object_bytes`] made otherwise.
pub fn object_bytes_made(tp: &TopicPartition, start: i64, end: i64, made: Made) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.mak");
    sealed_mak(&path, tp, start, end, made);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&path).unwrap()).unwrap();
    gz.finish().unwrap()
}

/// Writes a sealed MAK file of `tp` holding `start..=end` at `path` (version 1 keeps no
/// timestamps).
pub fn sealed_mak(path: &Path, tp: &TopicPartition, start: i64, end: i64, made: Made) {
    let created = mak::FileStart {
        topic: &tp.topic,
        partition: tp.partition,
        start_offset: start,
        created_secs: 1,
        writer: None,
    };
    let mut writer = mak::AnyWriter::create(path, made.version, &created).unwrap();
    for offset in start..=end {
        let value = format!("value {offset}");
        let record = mak::v2::RecordRef {
            offset,
            timestamp: (made.stamp)(offset),
            timestamp_type: mak::v2::TimestampType::CreateTime,
            key: Some(b"k"),
            value: Some(value.as_bytes()),
            headers: mak::v2::NO_HEADERS,
        };
        writer.append(&record).unwrap();
    }
    writer.seal().unwrap();
}

/// Archives `start..=end` of `tp` as the uploader does: the gzipped object, then its claim.
/// Returns the object's key.
pub async fn put_claimed(archive: &Archive, tp: &TopicPartition, start: i64, end: i64) -> ObjectPath {
    put_claimed_made(archive, tp, start, end, Made::default()).await
}

/// [`put_claimed`] made otherwise.
pub async fn put_claimed_made(archive: &Archive, tp: &TopicPartition, start: i64, end: i64, made: Made) -> ObjectPath {
    let key = put_unclaimed(archive, tp, start, end, made).await;
    put_claim(archive, tp, start, end).await;
    key
}

/// The data object alone, as an upload leaves it before its claim is written.
pub async fn put_unclaimed(archive: &Archive, tp: &TopicPartition, start: i64, end: i64, made: Made) -> ObjectPath {
    let name = SealedName { tp: tp.clone(), start, end, date: "261206".into() };
    let key = archive.location().object_key(&name, ".mak.gz");
    archive.store().put(&key, object_bytes_made(tp, start, end, made).into()).await.unwrap();
    key
}

/// The claim of the object [`put_unclaimed`] writes.
pub async fn put_claim(archive: &Archive, tp: &TopicPartition, start: i64, end: i64) {
    let name = SealedName { tp: tp.clone(), start, end, date: "261206".into() };
    let claim = Claim::new(&name, ".mak.gz");
    archive.store().put(&archive.location().claim_key(tp, start), claim.to_bytes().into()).await.unwrap();
}
