//! The compress stage: `tocompress/*.mak` -> `tos3/*.mak<codec suffix>[.age]`, in-process with the
//! configured codec ([`mak::codec`]: each readable by its own command-line tool) and, when
//! configured, age encryption ([`mak::crypt`]), streaming, `compressor_workers` files at a time.
//!
//! A dispatcher rescans `tocompress/` when the spool seals a file and every
//! `compression_check_interval`; the directory itself is the queue, so nothing is lost between
//! stages and files dropped in by `kafkatos3_rotate` or left by a crash are picked up alike.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mak::codec::Compression;
use mak::crypt::Encryption;
use tokio::sync::Notify;

use crate::config::Config;
use crate::local::backlog::Backlog;
use crate::local::durable::{self, FsError};
use crate::local::layout::{SealedFile, Stage, WorkDir};
use crate::local::locks::PartitionLocks;
use crate::names::TopicPartition;
use crate::pipeline::resync::ResyncRequests;
use crate::pipeline::stop::StageStop;
use crate::pipeline::wake::Wake;

/// Read and write buffers: large enough that the codec, not syscalls, sets the pace.
const IO_BUFFER: usize = 256 * 1024;

/// How files are compressed: `[compression]`, and `[encryption]` when set.
#[derive(Debug, Clone)]
pub struct CompressSettings {
    pub compression: Compression,
    pub encryption: Option<Arc<Encryption>>,
    pub workers: usize,
    pub nice_level: i32,
    /// Period of the fallback rescan of `tocompress/`.
    pub check_interval: Duration,
}

impl CompressSettings {
    pub fn from_config(config: &Config) -> Self {
        let section = &config.compression;
        CompressSettings {
            compression: section.compression,
            encryption: config.encryption.as_ref().map(|e| e.keys.clone()),
            workers: section.compressor_workers,
            nice_level: section.compression_nice_level,
            check_interval: section.compression_check_interval,
        }
    }

    /// Where `file` goes once compressed (and encrypted, if configured).
    fn target_path(&self, work: &WorkDir, file: &SealedFile) -> PathBuf {
        let suffix = mak::layers::suffix(self.compression.codec(), self.encryption.is_some());
        work.tos3_path(&file.name, &suffix)
    }
}

/// What the compressors work with.
#[derive(Debug)]
pub struct Compressor {
    pub settings: CompressSettings,
    pub work: WorkDir,
    /// Each file's bytes change with its compression.
    pub backlog: Arc<Backlog>,
    /// A partition being adopted is not compressed meanwhile (its files are being judged).
    pub locks: Arc<PartitionLocks>,
    /// Notified by the spool when it seals a file, and by a compressor that finished one.
    pub wake: Arc<Wake>,
    /// Notified when a file is ready to upload.
    pub upload_wake: Arc<Notify>,
    /// A full disk: the partition's later local data goes, to be read again.
    pub resyncs: ResyncRequests,
    pub stop: Arc<StageStop>,
}

/// Compresses one sealed file into the `tos3/` stage durably, then removes the source.
/// Returns the compressed file and its size.
pub fn compress_file(
    settings: &CompressSettings,
    work: &WorkDir,
    file: &SealedFile,
) -> Result<(PathBuf, u64), FsError> {
    let target = settings.target_path(work, file);
    let dir = target.parent().expect("sealed path has a directory");
    durable::create_dir_all_durable(dir)?;
    let tmp = durable::tmp_path(&target);
    let source = File::open(&file.path).map_err(|e| FsError::new("open", &file.path, e))?;
    let out = File::create(&tmp).map_err(|e| FsError::new("create", &tmp, e))?;
    let encryption = settings.encryption.as_deref();
    let mut encoder =
        mak::layers::archive_writer(BufWriter::with_capacity(IO_BUFFER, out), &settings.compression, encryption)
            .map_err(|e| FsError::new("start compressing", &file.path, std::io::Error::other(e)))?;
    io::copy(&mut BufReader::with_capacity(IO_BUFFER, source), &mut encoder)
        .map_err(|e| FsError::new("compress", &file.path, e))?;
    let mut writer = encoder.finish().map_err(|e| FsError::new("write", &tmp, e))?;
    writer.flush().map_err(|e| FsError::new("write", &tmp, e))?;
    let out = writer.into_inner().map_err(|e| FsError::new("write", &tmp, e.into_error()))?;
    out.sync_all().map_err(|e| FsError::new("fsync", &tmp, e))?;
    let compressed = out.metadata().map_err(|e| FsError::new("stat", &tmp, e))?.len();
    fs::rename(&tmp, &target).map_err(|e| FsError::new("rename", &tmp, e))?;
    durable::fsync_dir(dir)?;
    durable::remove_durable(&file.path)?;
    Ok((target, compressed))
}

/// Starts the dispatcher and the worker threads. They stop once the stages are stopped and the
/// file at hand is done.
pub fn spawn(stage: Arc<Compressor>) -> Vec<thread::JoinHandle<()>> {
    // Unbounded, but never longer than one file per partition: the dispatcher sends a
    // partition's oldest file only, and not again while it is in flight.
    let (job_tx, job_rx) = mpsc::channel::<SealedFile>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let in_flight: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    let mut handles = Vec::new();
    for worker in 0..stage.settings.workers {
        let (stage, job_rx, in_flight) = (stage.clone(), job_rx.clone(), in_flight.clone());
        let handle = thread::Builder::new()
            .name(format!("compressor-{worker}"))
            .spawn(move || {
                crate::pipeline::nice::set_current_thread(stage.settings.nice_level);
                let _alive = crate::observe::metrics::global().health.thread(format!("compressor-{worker}"));
                loop {
                    let job = job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv_timeout(Duration::from_millis(200));
                    match job {
                        Ok(file) => {
                            // Once stopping, queued files wait for the next start; a partition
                            // being adopted is skipped and comes back with the next wake-up.
                            let mut attempted = false;
                            if !stage.stop.is_stopped() {
                                if let Some(_moving) = stage.locks.try_lock(&file.name.tp) {
                                    if file.path.exists() {
                                        stage.compress_one(&file);
                                        attempted = true;
                                    }
                                }
                            }
                            in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&file.path);
                            if attempted {
                                // The partition's next file, held back while this one was being
                                // compressed, goes now rather than at the next periodic rescan.
                                stage.wake.notify();
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) if stage.stop.is_stopped() => return,
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .expect("spawn compressor thread");
        handles.push(handle);
    }
    let dispatcher = thread::Builder::new()
        .name("compress-dispatch".into())
        .spawn(move || {
            let _alive = crate::observe::metrics::global().health.thread("compress-dispatch");
            dispatch(&stage, &job_tx, &in_flight)
        })
        .expect("spawn compress dispatcher");
    handles.push(dispatcher);
    handles
}

/// Hands each partition's oldest file to the workers, at every wake-up and rescan.
fn dispatch(stage: &Compressor, job_tx: &mpsc::Sender<SealedFile>, in_flight: &Mutex<HashSet<PathBuf>>) {
    loop {
        if stage.stop.is_stopped() {
            return;
        }
        match stage.work.list_sealed(Stage::ToCompress) {
            Ok(files) => {
                for file in oldest_per_partition(files) {
                    if in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(file.path.clone())
                        && job_tx.send(file).is_err()
                    {
                        return;
                    }
                }
            }
            Err(error) => tracing::error!(%error, "scanning tocompress"),
        }
        // Bounded so a stop request is noticed; the configured interval is the rescan period.
        stage.wake.wait_timeout(stage.settings.check_interval);
    }
}

/// A partition's files are compressed in offset order, one at a time (across partitions in
/// parallel): its uploads go oldest first, and a later file compressed early would only hold
/// disk space the oldest may need.
fn oldest_per_partition(files: Vec<SealedFile>) -> Vec<SealedFile> {
    let mut oldest: HashMap<TopicPartition, SealedFile> = HashMap::new();
    for file in files {
        match oldest.get(&file.name.tp) {
            Some(kept) if kept.name.start <= file.name.start => {}
            _ => {
                oldest.insert(file.name.tp.clone(), file);
            }
        }
    }
    oldest.into_values().collect()
}

impl Compressor {
    fn compress_one(&self, file: &SealedFile) {
        let before = fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
        let started = std::time::Instant::now();
        match compress_file(&self.settings, &self.work, file) {
            Ok((_, after)) => {
                self.backlog.resize(&file.name.tp, before, after);
                crate::observe::metrics::global().compressed(self.settings.compression.codec().name(), before, after);
                tracing::info!(topic = %file.name.tp.topic, partition = file.name.tp.partition, file = %file.name.stem(), bytes_in = before, bytes_out = after, ms = started.elapsed().as_millis() as u64, "compressed");
                self.upload_wake.notify_one();
            }
            Err(error) => {
                // Left in tocompress: the next scan retries it. The partial output goes now, so a
                // full disk gets its space back for the uploads that resolve it.
                let _ = fs::remove_file(durable::tmp_path(&self.settings.target_path(&self.work, file)));
                if error.is_out_of_space() && self.resyncs.free_space_after(&file.name) {
                    tracing::warn!(topic = %file.name.tp.topic, partition = file.name.tp.partition, file = %file.name.stem(), resume_at = file.name.end + 1, "disk full: dropping the partition's later local data to compress its oldest file");
                }
                tracing::error!(%error, topic = %file.name.tp.topic, partition = file.name.tp.partition, file = %file.name.stem(), "compression failed; will retry");
                thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::SealedName;

    #[test]
    fn a_partitions_files_are_compressed_one_after_another_without_waiting_for_the_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let (wake, upload_wake) = (Arc::new(Wake::default()), Arc::new(Notify::new()));
        let ledger = Arc::new(crate::local::ledger::Ledger::new(work.clone()));
        let stage = Arc::new(Compressor {
            settings: CompressSettings {
                compression: Compression::new(mak::codec::Codec::Gzip, None).unwrap(),
                encryption: None,
                workers: 2,
                nice_level: 0,
                check_interval: Duration::from_secs(600),
            },
            work: work.clone(),
            backlog: Arc::default(),
            locks: Arc::default(),
            wake: wake.clone(),
            upload_wake: upload_wake.clone(),
            resyncs: crate::pipeline::resync::channel(ledger).0,
            stop: Arc::new(StageStop::new(wake, upload_wake)),
        });
        let tp = TopicPartition::new("t", 0);
        for start in [0, 10, 20] {
            let name = SealedName { tp: tp.clone(), start, end: start + 9, date: "261130".into() };
            let path = work.tocompress_path(&name);
            let header = mak::Header { topic: "t".into(), partition: 0, start_offset: start, start_time: 1.0 };
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut writer = mak::MakWriter::create(&path, &header).unwrap();
            for offset in start..start + 10 {
                writer.append(offset, None, Some(b"v")).unwrap();
            }
            writer.close().unwrap();
        }
        let handles = spawn(stage.clone());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while work.list_sealed(Stage::ToS3).unwrap().len() < 3 && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        let compressed = work.list_sealed(Stage::ToS3).unwrap().len();
        stage.stop.stop();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(compressed, 3, "all three files compressed well before the 600 s rescan");
        assert!(work.list_sealed(Stage::ToCompress).unwrap().is_empty());
    }
}
