//! The archive in S3 as the tests read it: through the catalog and the object reader, with every
//! check on, then compared with what was produced.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStore, ObjectStoreExt};

use super::{ByPartition, Produced, TestEnv};

pub fn store(env: &TestEnv, endpoint: &str) -> Arc<AmazonS3> {
    Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name(&env.bucket)
            .with_region("us-east-1")
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_access_key_id(&env.access_key)
            .with_secret_access_key(&env.secret_key)
            .build()
            .expect("s3 client"),
    )
}

/// Everything archived under `prefix`: records per partition in the order the objects hold
/// them (objects sorted by start offset), plus the object keys.
pub struct Archive {
    pub records: ByPartition,
    /// The archive's data objects, in (topic, partition, offset) order.
    pub keys: Vec<String>,
    /// The MAK version of each object, by key.
    pub versions: BTreeMap<String, mak::Version>,
    /// Data objects no claim names.
    pub unclaimed: Vec<String>,
}

impl Archive {
    pub fn total(&self) -> usize {
        self.records.values().map(Vec::len).sum()
    }
}

/// Reads the archive under `prefix` as every reader does, through the catalog (the objects the
/// claims name, and the original's objects) and the object reader; asserts that the catalog found
/// nothing wrong (no unsound claim, no missing object), that every object's header and name agree
/// and its end checks out. Data objects no claim names are not part of it (listed in `unclaimed`).
pub async fn read_archive(store: Arc<dyn ObjectStore>, prefix: &str) -> Archive {
    read_archive_with(store, prefix, None).await
}

/// [`read_archive`] of an archive whose objects may be age-encrypted.
pub async fn read_archive_with(
    store: Arc<dyn ObjectStore>,
    prefix: &str,
    decryption: Option<&mak::crypt::Decryption>,
) -> Archive {
    let archive = kafkatos3::archive::Archive::new(store.clone(), "s3://test", prefix);
    let catalog = archive
        .catalog(&kafkatos3::archive::Selection::default(), kafkatos3::archive::Headers::Skip)
        .await
        .expect("catalog of the archive");
    for (tp, partition) in &catalog.partitions {
        assert!(partition.bad_claims.is_empty(), "{tp}: unsound claims {:?}", partition.bad_claims);
        assert!(partition.missing.is_empty(), "{tp}: claims naming missing objects {:?}", partition.missing);
    }
    assert!(catalog.foreign.is_empty(), "unexpected objects {:?}", catalog.foreign);
    let mut records = ByPartition::new();
    let mut versions = BTreeMap::new();
    let mut keys = Vec::new();
    for object in catalog.objects() {
        let key = object.key.to_string();
        let bytes = store.get(&object.key).await.expect("get object").bytes().await.expect("object body");
        let mut reader = kafkatos3::archive::ObjectReader::open(&key, &bytes[..], decryption).expect("object opens");
        let header = reader.header().expect("header range");
        let name = &object.name;
        assert_eq!(
            (&header.tp, header.start, header.end),
            (&name.tp, name.start, name.end),
            "{key}: header agrees with the name"
        );
        versions.insert(key.clone(), header.version);
        let into = records.entry((name.tp.topic.clone(), name.tp.partition)).or_default();
        while let Some(record) = reader.next_record().expect("record decodes") {
            // Null as empty: the comparison the v1 files allow (see `Produced`).
            let (record_key, value) = (record.key.unwrap_or_default(), record.value.unwrap_or_default());
            into.push(Produced { offset: record.offset, key: record_key.to_vec(), value: value.to_vec() });
        }
        let summary = reader.finish_sealed().expect("the object's end checks out");
        assert_eq!(summary.last, Some(name.end), "{key}: the name's end offset is the last record");
        keys.push(key);
    }
    let unclaimed = catalog.unclaimed.iter().map(ToString::to_string).collect();
    Archive { records, keys, unclaimed, versions }
}

/// Waits until the archive holds at least `expected` records, then returns it.
pub async fn wait_for_archive(
    store: Arc<dyn ObjectStore>,
    prefix: &str,
    expected: usize,
    timeout: Duration,
) -> Archive {
    let deadline = Instant::now() + timeout;
    loop {
        let archive = read_archive(store.clone(), prefix).await;
        if archive.total() >= expected || Instant::now() >= deadline {
            return archive;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The property every test ends with: each produced record is archived exactly once, with its
/// key and value, in offset order per partition.
pub fn assert_exactly_once(produced: &ByPartition, archive: &Archive) {
    for ((topic, partition), expected) in produced {
        let got = archive.records.get(&(topic.clone(), *partition)).map(Vec::as_slice).unwrap_or_default();
        let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
        let mut sorted = offsets.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(offsets.len(), sorted.len(), "{topic}:{partition}: duplicated offsets in the archive");
        assert_eq!(offsets, sorted, "{topic}:{partition}: archive not in offset order");
        let expected_offsets: Vec<i64> = expected.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, expected_offsets, "{topic}:{partition}: archived offsets differ from produced");
        assert_eq!(got, expected.as_slice(), "{topic}:{partition}: archived keys/values differ from produced");
    }
    let extra: Vec<_> = archive.records.keys().filter(|k| !produced.contains_key(*k)).collect();
    assert!(extra.is_empty(), "archive holds partitions nothing was produced to: {extra:?}");
}
