//! Logging.

pub mod logging;
pub mod rate_limit;
