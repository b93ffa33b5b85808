//! The HTTP endpoints of `[metrics] listen`: `/metrics` (Prometheus text format), `/healthz` and
//! `/readyz` (see [`crate::observe::health`]). HTTP/1 by hyper on the daemon's runtime; what
//! reads the disk (the stage counts) runs on a blocking thread. [`serve_with`] serves another
//! process's answers the same way (`kafkatos3 export --metrics-listen`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::observe::metrics::global;

/// Prometheus' text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An answer: status, content type, body.
pub type Answer = (StatusCode, &'static str, String);

/// What answers a path (on a blocking thread).
pub type Responder = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("{setting} {addr}: {source}")]
pub struct ListenError {
    /// The setting that named the address: `[metrics] listen =`, `--metrics-listen`.
    setting: &'static str,
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds the address now, so a port in use stops the start with a clear error.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ListenError> {
    bind_as("[metrics] listen =", addr)
}

/// [`bind`], the error naming `setting`.
pub fn bind_as(setting: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, ListenError> {
    let error = |source| ListenError { setting, addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(error)?;
    listener.set_nonblocking(true).map_err(error)?;
    Ok(listener)
}

/// Serves the daemon's metrics and health until the runtime is shut down.
pub async fn serve(listener: std::net::TcpListener) {
    serve_with(listener, Arc::new(daemon_answer)).await;
}

/// Serves `responder`'s answers until the runtime is shut down.
pub async fn serve_with(listener: std::net::TcpListener, responder: Responder) {
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
        let responder = responder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| respond(request, responder.clone()));
            if let Err(error) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                tracing::debug!(%error, "metrics connection");
            }
        });
    }
}

/// The daemon's endpoints.
fn daemon_answer(path: &str) -> Answer {
    match path {
        "/metrics" => metrics_answer(global().encode()),
        "/healthz" => verdict(global().health.liveness()),
        "/readyz" => verdict(global().health.readiness(global().uploads_waiting())),
        _ => not_found(),
    }
}

/// A page of metrics in Prometheus' text format.
pub fn metrics_answer(text: String) -> Answer {
    (StatusCode::OK, METRICS_CONTENT_TYPE, text)
}

pub fn not_found() -> Answer {
    (StatusCode::NOT_FOUND, "text/plain", "not found: try /metrics, /healthz or /readyz\n".to_string())
}

async fn respond(request: Request<Incoming>, responder: Responder) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    let answer = tokio::task::spawn_blocking(move || responder(&path)).await;
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

/// A health verdict: 200 or 503, and why.
pub fn verdict(verdict: crate::observe::health::Verdict) -> Answer {
    let status = if verdict.ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, "text/plain; charset=utf-8", verdict.body)
}
