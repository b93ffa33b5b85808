//! What the daemon tells its operators: structured logs ([`logging`]) and the rate limit that
//! keeps a repeated error (an unreachable broker reports every few milliseconds) to one line per
//! interval with a count ([`rate_limit`]); and the one-shot commands' progress ([`progress`]).

pub mod logging;
pub mod progress;
pub mod rate_limit;
