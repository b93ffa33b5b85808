//! The command line of `kafkatos3 export`: its arguments, turned into [`Options`] and a
//! destination, and one run until done (or, with `--follow`, until SIGINT/SIGTERM).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::metrics::ExportMetrics;
use super::parquet::ValueFormat;
use super::{Destination, ExportError, Options, Report};
use crate::archive::store::S3Access;
use crate::tools::selection::SelectionArgs;
use crate::tools::source::{ArchiveArgs, Source, SourceError};

/// The formats an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Parquet,
}

/// `kafkatos3 export`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: ArchiveArgs,
    #[command(flatten)]
    pub select: SelectionArgs,
    /// Where to write the dataset: s3://BUCKET[/PREFIX], file:///PATH, az://CONTAINER[/PREFIX] or
    /// gs://BUCKET[/PREFIX] (reached with the archive's endpoint, region and credentials)
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// File format
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: Format,
    /// raw: values as bytes; json: also value_text, the value as UTF-8 text (null where it is
    /// not), for engines' JSON functions
    #[arg(long, value_enum, default_value = "raw")]
    pub value_format: ValueFormat,
    /// Keep exporting: list the archive again every --interval seconds and export what is new,
    /// until SIGINT or SIGTERM
    #[arg(long)]
    pub follow: bool,
    /// Seconds between the passes of --follow
    #[arg(long, default_value_t = 60, requires = "follow", value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Partitions exported at once (default: the number of cores)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// Serve /metrics (Prometheus), /healthz and /readyz (the last pass exported every
    /// partition) on this address, e.g. 0.0.0.0:9465 (for --follow)
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Print the report as one JSON document
    #[arg(long)]
    pub json: bool,
    /// Seconds between progress lines on stderr when it is not a terminal (a bar when it is)
    #[arg(long, default_value_t = 10)]
    pub progress: u64,
}

/// Why `kafkatos3 export` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Export(#[from] ExportError),
}

impl CliError {
    /// A mistake in the flags or the config (exit status 2).
    pub fn is_usage(&self) -> bool {
        match self {
            CliError::Source(error) => error.is_usage(),
            CliError::Export(ExportError::Usage(_)) => true,
            CliError::Export(_) => false,
        }
    }
}

/// Runs the export the arguments describe. When `signals` resolves (the binary's first SIGINT or
/// SIGTERM) it stops before the next archive object: what is written stays, and the same
/// command continues from there.
pub fn run(
    args: &ExportArgs,
    signals: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Report, CliError> {
    let select = args.select.select().map_err(ExportError::Usage)?;
    let Source { config, archive, decryption } = args.source.open()?;
    let access = S3Access::from_flags(
        config.as_ref().map(|c| &c.s3),
        args.source.endpoint.as_deref(),
        args.source.region.as_deref(),
    );
    let destination = Destination::open(&args.to, access)?;
    let listener = args
        .metrics_listen
        .map(|addr| crate::observe::serve::bind_as("--metrics-listen", addr))
        .transpose()
        .map_err(|e| ExportError::Usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ExportError::Runtime)?;
    let metrics = Arc::new(ExportMetrics::new());
    if let Some(listener) = listener {
        if let Ok(addr) = listener.local_addr() {
            eprintln!("kafkatos3 export: serving /metrics, /healthz and /readyz on {addr}");
        }
        let answers = metrics.clone();
        runtime.spawn(crate::observe::serve::serve_with(listener, Arc::new(move |path: &str| answers.answer(path))));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    runtime.spawn(async move {
        signals.await;
        stopping.store(true, Ordering::Relaxed);
    });
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let options = Options {
        select,
        values: args.value_format,
        decryption: decryption.as_ref(),
        parallel: args.parallel.map_or(cores, usize::from),
        follow: args.follow.then(|| Duration::from_secs(args.interval)),
        progress_every: Some(Duration::from_secs(args.progress.max(1))),
        metrics: args.metrics_listen.is_some().then_some(metrics.as_ref()),
    };
    Ok(super::export(&archive, &destination, &options, &runtime, &stop)?)
}
