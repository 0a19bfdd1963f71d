//! The node's HTTPS server: TLS 1.3 with the node's identity certificate ([`lit_api::tls`]),
//! client certificates asked for (peers present theirs), HTTP/1.1 inside.
//!
//! Each request carries the client's address (axum's `ConnectInfo<SocketAddr>`) and the
//! [`TlsConnection`] it came over, so the peer endpoint can check that an envelope's sender is
//! the node whose certificate the connection presented.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::TokioIo;
use tracing::debug;

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight have to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS connection a request came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsConnection {
    /// The Ed25519 key of the client certificate, if the client presented one (a peer does).
    pub client_key: Option<[u8; 32]>,
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish (for up to 10 s).
pub async fn serve(
    app: Router,
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of file descriptors and the like: back off instead of spinning
                    debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    debug!(%addr, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    debug!(%addr, "TLS handshake timed out");
                    return;
                }
            };
            let connection = TlsConnection {
                client_key: tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|cert| lit_api::tls::ed25519_key_of(cert).ok()),
            };
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(addr));
                    req.extensions_mut().insert(connection);
                    tower::ServiceExt::oneshot(app.clone(), req)
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                debug!(%addr, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
    Ok(())
}

/// An HTTP client to nodes: TLS 1.3 whose server certificate `verifier` checks, no client
/// certificate (plain `http://` URLs of benchmark networks work too).
pub fn node_client(
    verifier: Arc<lit_api::tls::NodeKeyVerifier>,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let tls = lit_api::tls::client_config(verifier, None).map_err(|e| format!("TLS: {e}"))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// [`node_client`] accepting any node's certificate, for what needs no pinned connection:
/// health probes, and answers whose content is checked by other means (votes among members).
pub fn any_node_client(timeout: Duration) -> Result<reqwest::Client, String> {
    node_client(lit_api::tls::NodeKeyVerifier::any_node(), timeout)
}

/// An error and its sources on one line (a TLS refusal is a few sources down a request error).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
