//! The compress stage: `tocompress/*.mak` -> `tos3/*.mak<codec suffix>[.age]`, in-process with the
//! configured codec ([`mak::codec`]: each readable by its own command-line tool) and, when
//! configured, age encryption ([`mak::crypt`]), streaming, `compressor_workers` files at a time.
//!
//! A dispatcher rescans `tocompress/` when the spool seals a file and every
//! `compression_check_interval`; the directory itself is the queue, so nothing is lost between
//! stages and files dropped in by `kafkatos3_rotate` or left by a crash are picked up alike.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::local::durable::{self, FsError};
use crate::local::layout::{SealedFile, Stage};
use crate::pipeline::resync::Resync;
use crate::pipeline::Pipeline;

/// Read and write buffers: large enough that the codec, not syscalls, sets the pace.
const IO_BUFFER: usize = 256 * 1024;

/// Where `file` goes once compressed with the configured codec (and encrypted, if configured).
fn target_path(pipeline: &Pipeline, file: &SealedFile) -> PathBuf {
    let codec = pipeline.config.compression.compression.codec();
    let suffix = mak::layers::suffix(codec, pipeline.config.encryption.is_some());
    pipeline.work.tos3_path(&file.name, &suffix)
}

/// Compresses one sealed file into the `tos3/` stage durably, then removes the source.
/// Returns the compressed file and its size.
pub fn compress_file(pipeline: &Pipeline, file: &SealedFile) -> Result<(PathBuf, u64), FsError> {
    let target = target_path(pipeline, file);
    let dir = target.parent().expect("sealed path has a directory");
    durable::create_dir_all_durable(dir)?;
    let tmp = durable::tmp_path(&target);
    let source = File::open(&file.path).map_err(|e| FsError::new("open", &file.path, e))?;
    let out = File::create(&tmp).map_err(|e| FsError::new("create", &tmp, e))?;
    let compression = &pipeline.config.compression.compression;
    let encryption = pipeline.config.encryption.as_ref().map(|e| e.keys.as_ref());
    let mut encoder = mak::layers::archive_writer(BufWriter::with_capacity(IO_BUFFER, out), compression, encryption)
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

/// Starts the dispatcher and the worker threads. They stop once shutdown is requested and the
/// file at hand is done.
pub fn spawn(pipeline: Arc<Pipeline>) -> Vec<thread::JoinHandle<()>> {
    let (job_tx, job_rx) = mpsc::channel::<SealedFile>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let in_flight: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    let mut handles = Vec::new();
    for worker in 0..pipeline.config.compression.compressor_workers {
        let (pipeline, job_rx, in_flight) = (pipeline.clone(), job_rx.clone(), in_flight.clone());
        let handle = thread::Builder::new()
            .name(format!("compressor-{worker}"))
            .spawn(move || {
                crate::pipeline::nice::set_current_thread(pipeline.config.compression.compression_nice_level);
                loop {
                    let job = job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv_timeout(Duration::from_millis(200));
                    match job {
                        Ok(file) => {
                            // Once stopping, queued files wait for the next start; a partition
                            // being adopted is skipped and comes back with the next wake-up.
                            let mut attempted = false;
                            if !pipeline.stages_stopped() {
                                if let Some(_moving) = pipeline.partition_locks.try_lock(&file.name.tp) {
                                    if file.path.exists() {
                                        compress_one(&pipeline, &file);
                                        attempted = true;
                                    }
                                }
                            }
                            in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&file.path);
                            if attempted {
                                // The partition's next file, held back while this one was being
                                // compressed, goes now rather than at the next periodic rescan.
                                pipeline.compress_wake.notify();
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) if pipeline.stages_stopped() => return,
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
        .spawn(move || loop {
            if pipeline.stages_stopped() {
                return;
            }
            match pipeline.work.list_sealed(Stage::ToCompress) {
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
            pipeline.compress_wake.wait_timeout(pipeline.config.compression.compression_check_interval);
        })
        .expect("spawn compress dispatcher");
    handles.push(dispatcher);
    handles
}

/// A partition's files are compressed in offset order, one at a time (across partitions in
/// parallel): its uploads go oldest first, and a later file compressed early would only hold
/// disk space the oldest may need.
fn oldest_per_partition(files: Vec<SealedFile>) -> Vec<SealedFile> {
    let mut oldest: std::collections::HashMap<crate::names::TopicPartition, SealedFile> = Default::default();
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

fn compress_one(pipeline: &Pipeline, file: &SealedFile) {
    let before = fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
    let started = std::time::Instant::now();
    match compress_file(pipeline, file) {
        Ok((_, after)) => {
            pipeline.backlog.resize(&file.name.tp, before, after);
            tracing::info!(file = %file.name.stem(), bytes_in = before, bytes_out = after, ms = started.elapsed().as_millis() as u64, "compressed");
            pipeline.upload_wake.notify_one();
        }
        Err(error) => {
            // Left in tocompress: the next scan retries it. The partial output goes now, so a
            // full disk gets its space back for the uploads that resolve it.
            let _ = fs::remove_file(durable::tmp_path(&target_path(pipeline, file)));
            let tp = &file.name.tp;
            if error.is_out_of_space() && pipeline.ledger.oldest_unconfirmed(tp) == Some(file.name.start) {
                // The partition's oldest file is the one to upload next and nothing of the
                // partition can move until it is: free the space its later data holds (sealed
                // files and the open file) and read that data again once this file is gone.
                let after = file.name.end + 1;
                tracing::warn!(file = %file.name.stem(), resume_at = after, "disk full: dropping the partition's later local data to compress its oldest file");
                pipeline.resyncs.request(tp, Resync { drop_from: after, resume_at: Some(after) });
            }
            tracing::error!(%error, file = %file.name.stem(), "compression failed; will retry");
            thread::sleep(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::layout::WorkDir;
    use crate::names::{SealedName, TopicPartition};

    #[test]
    fn a_partitions_files_are_compressed_one_after_another_without_waiting_for_the_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[main]\nworking_directory = {}\n[consumer]\nkafka_bootstrap = k:9092\nkafka_consumer_group = g\n\
             topic_whitelist = t\n[compression]\ncompression_check_interval = 600\n[s3]\ns3_bucket_name = bucket\n",
            dir.path().display()
        );
        let config = crate::config::parse(&text, std::path::Path::new("test.cfg")).unwrap();
        let work = WorkDir::new(dir.path());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = Arc::new(object_store::memory::InMemory::new());
        let s3 = crate::pipeline::S3Access::new(store, crate::archive::Location::new("p"), runtime.handle().clone());
        let legacy = crate::local::legacy::Legacy::load(&work).unwrap();
        let pipeline = Arc::new(Pipeline::new(config, work.clone(), legacy, Default::default(), s3));
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
        let handles = spawn(pipeline.clone());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while pipeline.work.list_sealed(Stage::ToS3).unwrap().len() < 3 && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        let compressed = pipeline.work.list_sealed(Stage::ToS3).unwrap().len();
        pipeline.stop_stages();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(compressed, 3, "all three files compressed well before the 600 s rescan");
        assert!(pipeline.work.list_sealed(Stage::ToCompress).unwrap().is_empty());
    }
}
