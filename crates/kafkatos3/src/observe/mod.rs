//! What the daemon tells its operators: structured logs ([`logging`]) and the rate limit that
//! keeps a repeated error (an unreachable broker reports every few milliseconds) to one line per
//! interval with a count ([`rate_limit`]); its metrics ([`metrics`]) and health ([`health`]),
//! served over HTTP ([`serve`]); and the one-shot commands' progress ([`progress`]).

pub mod health;
pub mod logging;
pub mod metrics;
pub mod progress;
pub mod rate_limit;
pub mod serve;
