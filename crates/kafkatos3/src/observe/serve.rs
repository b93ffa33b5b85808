//! The HTTP endpoints of `[metrics] listen`: `/metrics` (Prometheus text format), `/healthz` and
//! `/readyz` (see [`crate::observe::health`]). HTTP/1 by hyper on the daemon's runtime; what
//! reads the disk (the stage counts) runs on a blocking thread.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::observe::metrics::global;

/// Prometheus' text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, thiserror::Error)]
#[error("[metrics] listen = {addr}: {source}")]
pub struct ListenError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds the address now, so a port in use stops the start with a clear error.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ListenError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| ListenError { addr, source })?;
    listener.set_nonblocking(true).map_err(|source| ListenError { addr, source })?;
    Ok(listener)
}

/// Serves until the runtime is shut down.
pub async fn serve(listener: std::net::TcpListener) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "serving the metrics failed");
            return;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, most likely: the next accept may work.
                tracing::warn!(%error, "accepting a metrics connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(respond);
            if let Err(error) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                tracing::debug!(%error, "metrics connection");
            }
        });
    }
}

async fn respond(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    let answer = tokio::task::spawn_blocking(move || match path.as_str() {
        "/metrics" => (StatusCode::OK, METRICS_CONTENT_TYPE, global().encode()),
        "/healthz" => verdict(global().health.liveness()),
        "/readyz" => verdict(global().health.readiness(global().uploads_waiting())),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found: try /metrics, /healthz or /readyz\n".to_string()),
    })
    .await;
    let (status, content_type, body) = answer.unwrap_or_else(|error| {
        (StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("answering the request failed: {error}\n"))
    });
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    Ok(response)
}

fn verdict(verdict: crate::observe::health::Verdict) -> (StatusCode, &'static str, String) {
    let status = if verdict.ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, "text/plain; charset=utf-8", verdict.body)
}
