//! Log setup: one structured line per event on stderr, as text (the default) or as one JSON
//! object per line (`log.format = json`) for log pipelines. `RUST_LOG` overrides `log.level`.
//!
//! Secrets never reach a log line in either format: the config keeps them in a type whose
//! `Debug` and `Display` print `<redacted>`, and no line logs a credential.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogLevel};

pub fn init(level: LogLevel, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level.as_filter_directive()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        // Fields at the top level next to `timestamp`, `level`, `target` and `message`, so a log
        // pipeline indexes `topic` and `partition` without knowing this program.
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init(),
    };
}
