//! `[metrics]`: where `/metrics`, `/healthz` and `/readyz` are served.

use std::net::{SocketAddr, ToSocketAddrs};

use super::super::{ConfigError, MetricsConfig};
use super::View;

pub(super) const METRICS_KEYS: &[&str] = &["listen"];

/// None unless `listen` is set.
pub(super) fn metrics(view: &View) -> Result<Option<MetricsConfig>, ConfigError> {
    Ok(view.optional("listen", listen_address)?.map(|listen| MetricsConfig { listen }))
}

/// `HOST:PORT`: an address (`0.0.0.0:9464`, `[::]:9464`) or a name that resolves (`localhost:9464`).
fn listen_address(value: &str) -> Result<SocketAddr, String> {
    const EXPECTED: &str = "HOST:PORT to serve the metrics on, e.g. 0.0.0.0:9464";
    if let Ok(addr) = value.parse() {
        return Ok(addr);
    }
    match value.to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("{EXPECTED} ({value} resolves to no address)")),
        Err(error) => Err(format!("{EXPECTED} ({error})")),
    }
}
