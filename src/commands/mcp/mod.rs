//! `hephaestus mcp SPEC`: the job's incidents and fixes for any agent that speaks the Model
//! Context Protocol, over stdio (what agents launch) or streamable HTTP at `http://ADDR/mcp`.
//!
//! In: a job spec (where it writes incidents; its `[model.repository]` and `[deploy]` sections
//! find the fixes), or `--incidents FILE` for a file written by `hephaestus run --output`. Out:
//! an MCP server until stdin closes (stdio), or until the stop signal (HTTP). State: the
//! `Catalog`; stdout carries only the protocol, messages go to stderr.

pub mod catalog;
pub mod propose;
pub mod server;
pub mod tools;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use catalog::Catalog;
use server::Server;

use crate::core::shutdown::Shutdown;
use crate::spec::{Overrides, Plan, Sink};

/// How often the HTTP server looks at the stop signal between connections.
const POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// What `hephaestus mcp` was asked to do.
#[derive(Clone, Debug)]
pub struct McpArgs {
    pub spec: PathBuf,
    pub incidents: Option<PathBuf>,
    pub http: Option<SocketAddr>,
    pub allow_writes: bool,
    /// Where to serve `/metrics`, if anywhere.
    pub metrics: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("{0}")]
    Spec(String),
    #[error(
        "the spec writes incidents to {0}, which the server cannot read back: pass --incidents FILE (a file written by `hephaestus run --output FILE`)"
    )]
    NoIncidentsFile(&'static str),
    #[error("mcp over {transport}: {why}")]
    Serve {
        transport: &'static str,
        why: String,
    },
}

/// The catalog and server of a spec.
pub fn open(args: &McpArgs) -> Result<Server, McpError> {
    let plan =
        Plan::load(&args.spec, Overrides::default()).map_err(|e| McpError::Spec(e.to_string()))?;
    let incidents = match (&args.incidents, &plan.incidents) {
        (Some(file), _) => file.clone(),
        (None, Sink::File(path)) => path.clone(),
        (None, Sink::Stdout) => return Err(McpError::NoIncidentsFile("stdout")),
        (None, Sink::Stderr) => return Err(McpError::NoIncidentsFile("stderr")),
        (None, Sink::None) => return Err(McpError::NoIncidentsFile("nowhere (`none`)")),
    };
    let (manager, notifier, project) = match super::deploy::manager(&args.spec) {
        Ok((m, n, p)) => (Ok(m), n, Some(p)),
        Err(e) => (
            Err(e.to_string()),
            crate::model::deploy::notify::Notifier::new(&Default::default())
                .map_err(McpError::Spec)?,
            None,
        ),
    };
    Ok(Server {
        catalog: Arc::new(Catalog::new(incidents, manager, project)),
        notifier: Arc::new(notifier),
        allow_writes: args.allow_writes,
    })
}

/// Serves until the client goes (stdio) or `stop` fires (HTTP).
pub async fn serve(args: &McpArgs, stop: Shutdown) -> Result<(), McpError> {
    let server = open(args)?;
    let _metrics = match args.metrics {
        Some(addr) => {
            let m = crate::metrics::serve(addr).map_err(|e| McpError::Spec(e.to_string()))?;
            eprintln!("hephaestus: metrics on http://{}/metrics", m.addr);
            Some(m)
        }
        None => None,
    };
    eprintln!(
        "hephaestus: mcp: incidents from {}, {} tools{}",
        server.catalog.incidents_path().display(),
        tools::offered(args.allow_writes).count(),
        if args.allow_writes {
            " (writes allowed)"
        } else {
            ""
        }
    );
    match args.http {
        None => stdio(server).await,
        Some(addr) => http(server, addr, stop).await,
    }
}

async fn stdio(server: Server) -> Result<(), McpError> {
    use rmcp::ServiceExt;
    let err = |why: String| McpError::Serve {
        transport: "stdio",
        why,
    };
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| err(e.to_string()))?;
    running.waiting().await.map_err(|e| err(e.to_string()))?;
    Ok(())
}

async fn http(server: Server, addr: SocketAddr, stop: Shutdown) -> Result<(), McpError> {
    use http_body_util::BodyExt;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    let err = |why: String| McpError::Serve {
        transport: "http",
        why,
    };
    let config = StreamableHttpServerConfig::default();
    let cancel = config.cancellation_token.clone();
    let service: StreamableHttpService<Server, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(server.clone()), Default::default(), config);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| err(format!("bind {addr}: {e}")))?;
    let local = listener.local_addr().map_err(|e| err(e.to_string()))?;
    eprintln!("hephaestus: mcp: serving http://{local}/mcp");
    loop {
        if stop.is_triggered() {
            break;
        }
        let accepted = tokio::time::timeout(POLL, listener.accept()).await;
        let (stream, _) = match accepted {
            Err(_elapsed) => continue,
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                eprintln!("hephaestus: mcp: accept: {e}");
                continue;
            }
        };
        let service = service.clone();
        let handler =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let service = service.clone();
                async move {
                    if req.uri().path() != "/mcp" {
                        let body = http_body_util::Full::new(bytes::Bytes::from_static(
                            b"not found: the MCP endpoint is /mcp\n",
                        ))
                        .map_err(|never| match never {})
                        .boxed();
                        let mut resp = hyper::Response::new(body);
                        *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
                        return Ok::<_, std::convert::Infallible>(resp);
                    }
                    Ok(service.handle(req).await)
                }
            });
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, handler)
                .await
            {
                eprintln!("hephaestus: mcp: connection: {e}");
            }
        });
    }
    cancel.cancel();
    Ok(())
}
