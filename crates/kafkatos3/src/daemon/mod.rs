//! The daemon: takes the working directory's lock, recovers it ([`recover`]), wires the stages
//! back to front (uploader, compressors, leftovers sweep, consumers), each handed only what it
//! uses, runs them until a signal ([`signals()`]) or a fatal error, and shuts down within the
//! configured time.

pub mod recover;
pub mod signals;
pub mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::archive::store::S3Access;
use crate::config::{Config, ConsumerClass};
use crate::local::layout::WorkDir;
use crate::local::ledger::Ledger;
use crate::local::locks::PartitionLocks;
use crate::pipeline::compress::{CompressSettings, Compressor};
use crate::pipeline::consume::snapshot::SnapshotPlan;
use crate::pipeline::consume::Consumers;
use crate::pipeline::leftovers::Leftovers;
use crate::pipeline::stop::{Shutdown, StageStop};
use crate::pipeline::upload::{put_limits, UploadSettings, Uploader};
use crate::pipeline::wake::Wake;
use crate::pipeline::{resync, ArchiveAccess};

pub use signals::signals;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    #[error(transparent)]
    Lock(#[from] crate::local::lock::LockError),
    #[error("recovering the working directory: {0}")]
    Recover(#[from] recover::RecoverError),
    #[error("configuring the archive's store {location}: {source}")]
    Store { location: String, source: object_store::Error },
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Metrics(#[from] crate::observe::serve::ListenError),
    #[error("stopped after a fatal error (see the log above)")]
    Failed,
}

/// Runs the daemon until `stop` resolves (a signal in production, anything in tests).
pub fn run(config: Config, stop: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), DaemonError> {
    run_stages(config, None, stop)
}

/// The stages of the daemon, consuming in the group, or the snapshot's partitions up to their
/// ends (then returning once they are all in the archive).
fn run_stages(
    config: Config,
    snapshot: Option<Arc<SnapshotPlan>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let work = WorkDir::new(&config.main.working_directory);
    let _lock = crate::local::lock::lock_working_directory(&work)?;
    match config.consumer.consumer_class {
        ConsumerClass::KafkaPythonConsumer | ConsumerClass::KafkaConfluentConsumer => {
            tracing::info!(consumer_class = ?config.consumer.consumer_class, "consumer_class accepted for compatibility; every consumer uses librdkafka");
        }
    }
    let memory = &config.memory;
    tracing::info!(
        limit_bytes = memory.limit,
        queued_max_messages_kbytes = memory.queued_max_messages_kbytes(),
        write_buffers_bytes = memory.write_buffers,
        compression_bytes = memory.compression,
        single_put_max_bytes = memory.single_put_max(config.s3.multipart_threshold_bytes),
        part_bytes = memory.part_bytes(),
        "memory budget"
    );
    let shown = |limit: Option<u64>| limit.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    let share = |files: usize| (files != usize::MAX).then_some(files as u64);
    // Busy partitions hold a file open each; idle ones are closed at the next flush, and a
    // consumer past its share closes its least recently written files.
    let consumers = config.consumer.consumer_processes;
    match crate::local::open_files::raise_soft_limit() {
        Ok(limit) => tracing::info!(
            before = %shown(limit.before),
            now = %shown(limit.now),
            open_partition_files_per_consumer = %shown(share(crate::local::open_files::share_per_consumer(consumers))),
            "open files limit{}",
            if limit.before != limit.now { " raised to the hard limit" } else { "" }
        ),
        Err(error) => {
            tracing::warn!(%error, "raising the open files limit to the hard limit failed; keeping the current one")
        }
    }
    // Bound before anything else starts: a port in use stops the start.
    let metrics_listener = config.metrics.as_ref().map(|m| crate::observe::serve::bind(m.listen)).transpose()?;
    let stages = work.clone();
    crate::observe::metrics::global().configure(
        &config.memory,
        Box::new(move || match stages.area_usage() {
            Ok(usage) => Some(usage),
            Err(error) => {
                tracing::warn!(%error, "counting the working directory's files for the metrics");
                None
            }
        }),
    );
    let recovery = recover::recover(&work)?;
    tracing::info!(
        backlog_bytes = recovery.backlog.bytes(),
        removed_partial_files = recovery.removed_partial,
        "working directory recovered"
    );
    let store = &config.store;
    let archive = crate::archive::store::open(&store.location, S3Access::from_config(&config.s3), &store.prefix)
        .map_err(|source| DaemonError::Store { location: store.location.to_string(), source })?
        .with_object_options(&store.objects);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("uploader")
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;

    if let Some(listener) = metrics_listener {
        runtime.spawn(crate::observe::serve::serve(listener));
    }

    // What more than one stage holds; each is handed to the stages that use it below.
    let config = Arc::new(config);
    let ledger = Arc::new(Ledger::new(work.clone()));
    let legacy = Arc::new(recovery.legacy);
    let backlog = Arc::new(recovery.backlog);
    let locks = Arc::new(PartitionLocks::default());
    let (compress_wake, upload_wake) = (Arc::new(Wake::default()), Arc::new(Notify::new()));
    let stages_stop = Arc::new(StageStop::new(compress_wake.clone(), upload_wake.clone()));
    let shutdown = Arc::new(Shutdown::default());
    let (resync_requests, resync_inbox) = resync::channel(ledger.clone());
    let access = ArchiveAccess::new(archive.clone(), runtime.handle().clone());

    // Back to front: each stage runs before anything can hand it work.
    let uploader = runtime.spawn(crate::pipeline::upload::run(Arc::new(Uploader {
        settings: UploadSettings::from_config(&config),
        work: work.clone(),
        archive,
        ledger: ledger.clone(),
        legacy: legacy.clone(),
        backlog: backlog.clone(),
        resyncs: resync_requests.clone(),
        wake: upload_wake.clone(),
        stop: stages_stop.clone(),
        shutdown: shutdown.clone(),
    })));
    let compressors = crate::pipeline::compress::spawn(Arc::new(Compressor {
        settings: CompressSettings::from_config(&config),
        work: work.clone(),
        backlog: backlog.clone(),
        locks: locks.clone(),
        wake: compress_wake.clone(),
        upload_wake,
        resyncs: resync_requests,
        stop: stages_stop.clone(),
    }));
    let leftovers = crate::pipeline::leftovers::spawn(Leftovers {
        timeout: config.consumer.leftover_timeout,
        compress: CompressSettings::from_config(&config),
        limits: put_limits(&config),
        work: work.clone(),
        archive: access.clone(),
        ledger: ledger.clone(),
        legacy: legacy.clone(),
        backlog: backlog.clone(),
        locks: locks.clone(),
        stop: stages_stop.clone(),
    });
    let group_keeper = config.groups.clone().map(|settings| {
        tracing::info!(
            archive_groups = settings.archive_groups.as_str(),
            interval_s = settings.interval.as_secs_f64(),
            "consumer-group offsets are snapshotted into the archive"
        );
        crate::pipeline::groups::spawn(crate::pipeline::groups::GroupKeeper::from_config(
            &config,
            settings,
            access.clone(),
            stages_stop.clone(),
        ))
    });
    let grace = config.main.shutdown_timeout;
    {
        let shutdown = shutdown.clone();
        runtime.spawn(async move {
            stop.await;
            tracing::info!(grace_s = grace.as_secs(), "shutdown requested: stop fetching, seal, upload, commit");
            shutdown.request(grace);
        });
    }
    let consumers = Arc::new(Consumers {
        config: config.clone(),
        work,
        ledger,
        legacy,
        backlog,
        locks,
        compress_wake,
        resyncs: resync_inbox,
        archive: access,
        shutdown: shutdown.clone(),
        snapshot,
    });
    let consumer_threads: Vec<_> = (0..config.consumer.consumer_processes)
        .map(|id| crate::pipeline::consume::spawn(consumers.clone(), id))
        .collect();

    for handle in consumer_threads {
        if handle.join().is_err() {
            tracing::error!("a consumer thread panicked");
            shutdown.fail();
        }
    }
    crate::observe::metrics::global().health.stopping();
    // Consumers only return once stopping; whatever the later stages have not finished by now
    // stays on disk for the next start.
    stages_stop.stop();
    for handle in compressors {
        let _ = handle.join();
    }
    let _ = leftovers.join();
    if let Some(keeper) = group_keeper {
        let _ = keeper.join();
    }
    let _ = runtime.block_on(uploader);
    runtime.shutdown_timeout(Duration::from_secs(1));
    if shutdown.has_failed() {
        return Err(DaemonError::Failed);
    }
    tracing::info!("stopped cleanly");
    Ok(())
}
