//! The `/metrics` endpoint.
//!
//! In: the global recorder's counters and gauges (metrics-exporter-prometheus, rendered on
//! demand), the job's histograms (`histogram.rs`) and the process' own figures (`process.rs`).
//! Out: Prometheus' text format over HTTP on the spec's address, from a thread of its own; any
//! other path is a 404. State: the listener and the recorder handle; serving stops when the
//! `Server` is dropped.

use std::net::SocketAddr;
use std::time::Duration;

use metrics::gauge;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{histogram, names, process};

pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Exporter(String),
}

/// The whole scrape.
fn render(handle: &PrometheusHandle) -> String {
    let mut out = handle.render();
    process::render(&mut out);
    histogram::render(&mut out);
    out
}

/// Answers one HTTP request.
async fn respond(
    mut stream: tokio::net::TcpStream,
    handle: PrometheusHandle,
) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        ("200 OK", render(&handle))
    } else {
        ("404 Not Found", "not found: try /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Installs the global recorder and serves `/metrics` on `addr`.
pub fn serve(addr: SocketAddr) -> Result<Server, MetricsError> {
    // Bind here so that a taken port is a clear error, and port 0 resolves to a real one.
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| MetricsError::Exporter(e.to_string()))?;
    histogram::enable();
    gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    gauge!(names::START_TIME).set(crate::core::time::now_ms() as f64 / 1000.0);
    // The model and deployment stages' metrics are exported from the start (at zero), so
    // dashboards and alerts find them before those stages have done anything.
    for name in [
        names::MODEL_REQUESTS,
        names::MODEL_TOKENS,
        names::FIX_ATTEMPTS,
        names::DEPLOYS,
        names::ROLLBACKS,
    ] {
        metrics::counter!(name).absolute(0);
    }
    histogram::Histogram::new(names::MODEL_GENERATION, &[]);
    histogram::add_float(names::MODEL_COST, &[], 0.0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MetricsError::Exporter(e.to_string()))?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let mut upkeep = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(respond(stream, handle.clone()));
                            }
                        }
                        _ = upkeep.tick() => handle.run_upkeep(),
                        _ = &mut stopped => break,
                    }
                }
            });
        })
        .map_err(|e| MetricsError::Exporter(e.to_string()))?;
    Ok(Server {
        addr: bound,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
