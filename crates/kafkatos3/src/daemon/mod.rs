//! Wires the stages back to front (uploader, compressors, consumers), runs them until a signal
//! or a fatal error, and shuts down within the configured time.

pub mod recover;

use std::sync::Arc;
use std::time::Duration;

use crate::archive::Location;
use crate::config::{Config, ConsumerClass};
use crate::local::layout::WorkDir;
use crate::pipeline::{Pipeline, S3Access};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Lock(#[from] crate::local::lock::LockError),
    #[error("recovering the working directory: {0}")]
    Recover(#[from] crate::daemon::recover::RecoverError),
    #[error("configuring S3 bucket {bucket}: {source}")]
    S3 { bucket: String, source: object_store::Error },
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("stopped after a fatal error (see the log above)")]
    Failed,
}

/// Runs the daemon until `stop` resolves (a signal in production, anything in tests).
pub fn run(config: Config, stop: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), DaemonError> {
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
    let recovery = crate::daemon::recover::recover(&work)?;
    tracing::info!(
        backlog_bytes = recovery.backlog.bytes(),
        removed_partial_files = recovery.removed_partial,
        "working directory recovered"
    );
    let store = crate::archive::store::build_store(&config.s3)
        .map_err(|source| DaemonError::S3 { bucket: config.s3.s3_bucket_name.clone(), source })?;
    let grace = config.main.shutdown_timeout;
    let consumers = config.consumer.consumer_processes;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("uploader")
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let s3 = S3Access::new(store.clone(), Location::new(&config.s3.s3_key_prefix), runtime.handle().clone());
    let pipeline = Arc::new(Pipeline::new(config, work, recovery.legacy, recovery.backlog, s3));
    let uploader = runtime.spawn(crate::pipeline::upload::run(store, pipeline.clone()));
    {
        let pipeline = pipeline.clone();
        runtime.spawn(async move {
            stop.await;
            tracing::info!(grace_s = grace.as_secs(), "shutdown requested: stop fetching, seal, upload, commit");
            pipeline.shutdown.request(grace);
        });
    }
    let compressors = crate::pipeline::compress::spawn(pipeline.clone());
    let leftovers = crate::pipeline::leftovers::spawn(pipeline.clone());
    let consumer_threads: Vec<_> =
        (0..consumers).map(|id| crate::pipeline::consume::spawn(pipeline.clone(), id)).collect();

    for handle in consumer_threads {
        if handle.join().is_err() {
            tracing::error!("a consumer thread panicked");
            pipeline.shutdown.fail();
        }
    }
    // Consumers only return once stopping; whatever the later stages have not finished by now
    // stays on disk for the next start.
    pipeline.stop_stages();
    for handle in compressors {
        let _ = handle.join();
    }
    let _ = leftovers.join();
    let _ = runtime.block_on(uploader);
    runtime.shutdown_timeout(Duration::from_secs(1));
    if pipeline.shutdown.has_failed() {
        return Err(DaemonError::Failed);
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once (everything on disk is
/// already in a recoverable state).
pub async fn signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tokio::spawn(async move {
        // A signal sent to the whole process group (timeout(1), a terminal) can arrive twice at
        // once; only a later, deliberate second signal means "exit now".
        let first = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if first.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        tracing::warn!("second signal: exiting immediately");
        std::process::exit(130);
    });
}
