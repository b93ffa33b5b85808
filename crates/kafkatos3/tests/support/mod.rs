//! Shared fixtures for the end-to-end tests: the real `kafkatos3` binary against the real
//! broker and S3 server that `scripts/test.sh` starts (their addresses come from
//! `KAFKATOS3_TEST_*` environment variables).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStore, ObjectStoreExt};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[derive(Clone, Debug)]
pub struct TestEnv {
    pub bootstrap: String,
    pub s3_endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts the broker and S3 server")
    })
}

pub fn env() -> TestEnv {
    TestEnv {
        bootstrap: required("KAFKATOS3_TEST_BOOTSTRAP"),
        s3_endpoint: required("KAFKATOS3_TEST_S3_ENDPOINT"),
        access_key: required("KAFKATOS3_TEST_S3_ACCESS_KEY"),
        secret_key: required("KAFKATOS3_TEST_S3_SECRET_KEY"),
        bucket: required("KAFKATOS3_TEST_S3_BUCKET"),
    }
}

/// A name no other test (or earlier run) uses: the test broker keeps groups and topics.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

pub async fn create_topic(env: &TestEnv, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &env.bootstrap).create().expect("admin client");
    let results = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create topics request");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("creating topic {name}: {code}"));
    }
}

/// One produced record as Kafka stored it. MAK v1 writes a null key or value as empty, so the
/// comparison uses `Option::unwrap_or_default`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Produced {
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

pub type ByPartition = BTreeMap<(String, i32), Vec<Produced>>;

/// Distinct keys and values, with empty values, binary values and null keys mixed in.
fn record_for(seq: u64) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let key = if seq % 13 == 5 { None } else { Some(format!("key-{seq}").into_bytes()) };
    let value = match seq % 7 {
        3 => Some(Vec::new()),
        4 => Some(vec![0x00, 0xff, 0x0a, (seq % 251) as u8, 0x80, b'"', b'\\']),
        _ => Some(format!("value-{seq}-{}", "x".repeat((seq % 50) as usize)).into_bytes()),
    };
    (key, value)
}

/// Produces `count` records numbered from `first_seq`, spread over the partitions, and records
/// where each landed.
pub async fn produce(env: &TestEnv, topic: &str, partitions: i32, first_seq: u64, count: u64, into: &mut ByPartition) {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &env.bootstrap).set("linger.ms", "5").create().expect("producer");
    let mut pending = Vec::new();
    for seq in first_seq..first_seq + count {
        let (key, value) = record_for(seq);
        let partition = (seq % partitions as u64) as i32;
        let producer = producer.clone();
        let topic = topic.to_string();
        pending.push(async move {
            let mut record = FutureRecord::<Vec<u8>, Vec<u8>>::to(&topic).partition(partition);
            if let Some(k) = key.as_ref() {
                record = record.key(k);
            }
            if let Some(v) = value.as_ref() {
                record = record.payload(v);
            }
            let delivery = producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("delivery");
            (
                topic.clone(),
                delivery.partition,
                Produced { offset: delivery.offset, key: key.unwrap_or_default(), value: value.unwrap_or_default() },
            )
        });
    }
    for (topic, partition, produced) in futures::future::join_all(pending).await {
        into.entry((topic, partition)).or_default().push(produced);
    }
    for records in into.values_mut() {
        records.sort_by_key(|r| r.offset);
    }
}

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

/// Reads the archive under `prefix` as a reader must: the objects the claims name, and the
/// original's objects (no claims). Data objects no claim names are not part of it (listed in
/// `unclaimed`). Checks every claim against its object and every object's header and records.
pub async fn read_archive(store: &dyn ObjectStore, prefix: &str) -> Archive {
    read_archive_with(store, prefix, None).await
}

/// [`read_archive`] of an archive whose objects may be age-encrypted.
pub async fn read_archive_with(
    store: &dyn ObjectStore,
    prefix: &str,
    decryption: Option<&mak::crypt::Decryption>,
) -> Archive {
    use kafkatos3::archive::{ArchiveKey, Location};
    let at = Location::new(prefix);
    let listed: Vec<_> = store.list(Some(&prefix.into())).try_collect().await.expect("list archive");
    let mut data: BTreeMap<String, kafkatos3::archive::ObjectName> = BTreeMap::new();
    let mut claims = Vec::new();
    for meta in &listed {
        let key = meta.location.to_string();
        match at.parse_key(&key).unwrap_or_else(|| panic!("unexpected object {key}")) {
            ArchiveKey::Object(name) => {
                data.insert(key, name);
            }
            ArchiveKey::Claim { tp, start } => claims.push((key, tp, start)),
        }
    }
    let mut objects: Vec<(String, i32, i64, i64, String)> = Vec::new();
    for (key, tp, start) in claims {
        let claim = kafkatos3::archive::read_claim(store, &key.as_str().into())
            .await
            .expect("read claim")
            .unwrap_or_else(|| panic!("claim {key} listed but gone"));
        assert_eq!((claim.tp(), claim.first), (tp.clone(), start), "{key}: claim body agrees with its key");
        let object_key = format!("{}/{}", key.rsplit_once('/').unwrap().0, claim.object);
        let name = data.remove(&object_key).unwrap_or_else(|| panic!("{key} names {object_key}, not in the bucket"));
        assert_eq!((name.start, name.end), (claim.first, claim.last), "{object_key}: name agrees with its claim");
        objects.push((tp.topic, tp.partition, start, claim.last, object_key));
    }
    let mut unclaimed = Vec::new();
    for (key, name) in data {
        if name.original {
            objects.push((name.tp.topic, name.tp.partition, name.start, name.end, key));
        } else {
            unclaimed.push(key);
        }
    }
    objects.sort();
    let mut records = ByPartition::new();
    let mut versions = BTreeMap::new();
    for (topic, partition, start, end, key) in &objects {
        let bytes = store.get(&key.as_str().into()).await.expect("get object").bytes().await.expect("object body");
        let mut decoded = Vec::new();
        mak::layers::archive_reader(&bytes[..], decryption)
            .expect("object's layers open")
            .read_to_end(&mut decoded)
            .expect("object decrypts and decompresses");
        let mut reader =
            mak::AnyReader::with_size_limit(&decoded[..], decoded.len() as u64).expect("object is a MAK file");
        versions.insert(key.clone(), reader.version());
        assert_eq!(reader.topic(), topic, "{key}: header topic");
        assert_eq!(reader.partition(), *partition, "{key}: header partition");
        assert_eq!(reader.start_offset(), *start, "{key}: header start offset");
        // What verify and the frontier read from the object's first bytes, before any record.
        let header_end = kafkatos3::archive::header_from(&reader).expect("header range").end;
        let into = records.entry((topic.clone(), *partition)).or_default();
        let mut last = None;
        while let Some(record) = reader.next_record().expect("record decodes") {
            assert!(record.offset >= *start, "{key}: offset {} before the file's start", record.offset);
            last = Some(record.offset);
            // Null as empty: the comparison the v1 files allow (see `Produced`).
            let (record_key, value) = (record.key.unwrap_or_default(), record.value.unwrap_or_default());
            into.push(Produced { offset: record.offset, key: record_key.to_vec(), value: value.to_vec() });
        }
        assert_eq!(last, Some(header_end), "{key}: the header's last offset is the last record");
        assert_eq!(last, Some(*end), "{key}: the name's end offset is the last record");
    }
    Archive { records, keys: objects.into_iter().map(|o| o.4).collect(), unclaimed, versions }
}

/// Waits until the archive holds at least `expected` records, then returns it.
pub async fn wait_for_archive(store: &dyn ObjectStore, prefix: &str, expected: usize, timeout: Duration) -> Archive {
    let deadline = Instant::now() + timeout;
    loop {
        let archive = read_archive(store, prefix).await;
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

/// Offsets the group has committed, per partition.
pub fn committed(env: &TestEnv, group: &str, partitions: &[(String, i32)]) -> BTreeMap<(String, i32), Option<i64>> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &env.bootstrap).set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in partitions {
        tpl.add_partition(topic, *partition);
    }
    let result = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    let offsets = result
        .elements()
        .iter()
        .map(|e| {
            (
                (e.topic().to_string(), e.partition()),
                match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                },
            )
        })
        .collect();
    // A list from committed() alive when its consumer drops hangs the drop (librdkafka).
    drop(result);
    offsets
}

/// Commits offsets for a group as another client would (the original, or a lost commit's
/// predecessor).
pub fn commit_offsets(env: &TestEnv, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    use rdkafka::consumer::CommitMode;
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &env.bootstrap).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for &(partition, offset) in offsets {
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit offsets");
}

/// Settings of one daemon under test.
pub struct DaemonConfig {
    pub workdir: PathBuf,
    pub group: String,
    pub topics: Vec<String>,
    pub prefix: String,
    pub endpoint: String,
    pub consumer_processes: usize,
    pub max_age_seconds: u64,
    pub extra_main: String,
    pub extra_consumer: String,
    pub extra_compression: String,
    pub extra_s3: String,
}

impl DaemonConfig {
    pub fn new(env: &TestEnv, workdir: &Path, group: &str, topics: &[&str], prefix: &str) -> Self {
        DaemonConfig {
            workdir: workdir.to_path_buf(),
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            prefix: prefix.to_string(),
            endpoint: env.s3_endpoint.clone(),
            consumer_processes: 1,
            max_age_seconds: 2,
            extra_main: String::new(),
            extra_consumer: String::new(),
            extra_compression: String::new(),
            extra_s3: String::new(),
        }
    }

    /// The original's four sections plus the new keys; session.timeout.ms is low because the
    /// test broker makes every join wait half of it.
    pub fn write(&self, env: &TestEnv, path: &Path) {
        let topics = self.topics.join(",");
        let text = format!(
            "[main]\nlog.level = INFO\nworking_directory = {workdir}\nshutdown_timeout_seconds = 30\n{extra_main}\n\
             [consumer]\nconsumer_processes = {processes}\nkafka_bootstrap = {bootstrap}\nkafka_consumer_group = {group}\n\
             kafka_auto_offset_reset = earliest\nconsumer_nice_level = 5\ntopic_whitelist = {topics}\nmax_age_seconds = {max_age}\n\
             consumer_class = KafkaConfluentConsumer\nrebalance_timeout_seconds = 20\nflush_interval_ms = 200\n{extra_consumer}\n\n\
             [compression]\ncompression_check_interval = 2\ncompressor_workers = 2\ncompression_nice_level = 10\n{extra_compression}\n\n\
             [s3]\ns3upload_check_interval = 2\ns3uploader_workers = 2\ns3_bucket_name = {bucket}\ns3_access_key = {ak}\n\
             s3_secret_key = {sk}\ntopic_whitelist = {topics}\ns3_endpoint = {endpoint}\ns3_region = us-east-1\ns3_key_prefix = {prefix}\n{extra_s3}\n\n\
             [kafka]\nsession.timeout.ms = 6000\nheartbeat.interval.ms = 500\n",
            workdir = self.workdir.display(),
            extra_main = self.extra_main,
            extra_consumer = self.extra_consumer,
            extra_compression = self.extra_compression,
            processes = self.consumer_processes,
            bootstrap = env.bootstrap,
            group = self.group,
            max_age = self.max_age_seconds,
            bucket = env.bucket,
            ak = env.access_key,
            sk = env.secret_key,
            endpoint = self.endpoint,
            prefix = self.prefix,
            extra_s3 = self.extra_s3,
        );
        std::fs::write(path, text).expect("write config");
    }
}

/// A running `kafkatos3` process; killed with SIGKILL if the test drops it still running.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, log: &Path) -> Daemon {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
            .arg(config)
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start kafkatos3");
        Daemon { child: Some(child), log: log.to_path_buf() }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().expect("wait").is_none())
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("pid");
        rustix::process::kill_process(pid, signal).expect("signal the daemon");
    }

    /// SIGTERM, then wait for the exit; the status and how long it took.
    pub fn terminate(mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        self.signal(rustix::process::Signal::TERM);
        let mut child = self.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                panic!("daemon did not exit within {timeout:?} of SIGTERM; log: {}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// kill -9: no chance to flush, seal or commit.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Partitions of the given topics, for committed-offset checks.
pub fn partitions_of(topics: &[&str], partitions: i32) -> Vec<(String, i32)> {
    topics.iter().flat_map(|t| (0..partitions).map(move |p| (t.to_string(), p))).collect()
}

/// The offset each partition must have committed once everything produced is archived.
pub fn expected_commits(produced: &ByPartition) -> BTreeMap<(String, i32), Option<i64>> {
    produced.iter().map(|(tp, records)| (tp.clone(), records.last().map(|r| r.offset + 1))).collect()
}

/// Waits until the group's committed offsets equal `expected`.
pub async fn wait_for_commits(
    env: &TestEnv,
    group: &str,
    expected: &BTreeMap<(String, i32), Option<i64>>,
    timeout: Duration,
) -> BTreeMap<(String, i32), Option<i64>> {
    let partitions: Vec<(String, i32)> = expected.keys().cloned().collect();
    let deadline = Instant::now() + timeout;
    loop {
        let got = {
            let env = env.clone();
            let group = group.to_string();
            let partitions = partitions.clone();
            tokio::task::spawn_blocking(move || committed(&env, &group, &partitions)).await.unwrap()
        };
        if &got == expected || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A private s3s-fs server, for tests that take S3 away: stopping the shared one would break the
/// tests running beside them. The port and data survive a stop/start.
pub struct PrivateS3 {
    child: Option<Child>,
    pub port: u16,
    pub data: PathBuf,
    env: TestEnv,
}

fn s3s_fs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KAFKATOS3_TEST_S3S_FS") {
        return PathBuf::from(path);
    }
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("s3s-fs")).collect::<Vec<_>>())
        .unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"));
    candidates
        .into_iter()
        .chain(home)
        .find(|p| p.is_file())
        .expect("s3s-fs not found: run scripts/install-deps.sh (or set KAFKATOS3_TEST_S3S_FS)")
}

impl PrivateS3 {
    pub fn start(env: &TestEnv, data: &Path) -> PrivateS3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // s3s-fs keeps a bucket as a directory of its root.
        std::fs::create_dir_all(data.join(&env.bucket)).unwrap();
        let mut s3 = PrivateS3 { child: None, port, data: data.to_path_buf(), env: env.clone() };
        s3.up();
        s3
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn up(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(s3s_fs_binary())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                &self.env.access_key,
                "--secret-key",
                &self.env.secret_key,
            ])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateS3 {
    fn drop(&mut self) {
        self.down();
    }
}

/// Files below a directory, recursively.
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Waits for a line in the daemon's log.
pub async fn wait_for_log(log: &Path, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read_to_string(log).unwrap_or_default().contains(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Produces `count` records of `size` incompressible bytes (xorshift noise) to one partition.
pub async fn produce_noise(
    env: &TestEnv,
    topic: &str,
    partition: i32,
    count: u64,
    size: usize,
    into: &mut ByPartition,
) {
    produce_noisy(env, topic, partition, count, size, 1.0, into).await
}

/// Like [`produce_noise`], with only `noise` (0..=1) of each value random and the rest zeros,
/// so gzip shrinks the files to about that fraction.
pub async fn produce_noisy(
    env: &TestEnv,
    topic: &str,
    partition: i32,
    count: u64,
    size: usize,
    noise: f64,
    into: &mut ByPartition,
) {
    let noisy_len = (size as f64 * noise) as usize;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("message.max.bytes", "2000000")
        .create()
        .expect("producer");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ count;
    for seq in 0..count {
        let mut value = Vec::with_capacity(size);
        while value.len() < noisy_len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            value.extend_from_slice(&state.to_le_bytes());
        }
        value.truncate(noisy_len);
        value.resize(size, 0);
        let key = format!("noise-{seq}").into_bytes();
        let record = FutureRecord::to(topic).partition(partition).key(&key).payload(&value);
        let delivery = producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("delivery");
        into.entry((topic.to_string(), partition)).or_default().push(Produced { offset: delivery.offset, key, value });
    }
}

/// A daemon whose uploads S3 refuses (a wrong secret), so that what it consumes stays local.
pub struct RefusedUploads {
    pub dir: tempfile::TempDir,
    pub group: String,
    pub prefix: String,
    pub config: DaemonConfig,
}

impl RefusedUploads {
    pub fn start(env: &TestEnv, topic: &str, tune: impl FnOnce(&mut DaemonConfig)) -> (RefusedUploads, Daemon) {
        let dir = tempfile::tempdir().unwrap();
        let (group, prefix) = (unique("g"), unique("archive"));
        let mut config = DaemonConfig::new(env, &dir.path().join("work"), &group, &[topic], &prefix);
        config.max_age_seconds = 1;
        tune(&mut config);
        let wrong = TestEnv { secret_key: "not-the-secret".into(), ..env.clone() };
        config.write(&wrong, &dir.path().join("kafkatos3.cfg"));
        let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));
        (RefusedUploads { dir, group, prefix, config }, daemon)
    }

    /// Restarts on the same working directory with the right secret: every record produced is
    /// archived once and committed.
    pub async fn fix_and_check_all_archived(self, env: &TestEnv, produced: &ByPartition, records: usize) {
        let config_path = self.dir.path().join("kafkatos3.cfg");
        self.config.write(env, &config_path);
        let daemon = Daemon::start(&config_path, &self.dir.path().join("daemon.log"));
        let s3 = store(env, &env.s3_endpoint);
        let archive = wait_for_archive(s3.as_ref(), &self.prefix, records, Duration::from_secs(90)).await;
        assert_exactly_once(produced, &archive);
        let commits = wait_for_commits(env, &self.group, &expected_commits(produced), Duration::from_secs(20)).await;
        assert_eq!(commits, expected_commits(produced), "log:\n{}", daemon.log_tail());
        let (status, _) = daemon.terminate(Duration::from_secs(40));
        assert!(status.success());
    }
}
