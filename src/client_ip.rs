//! The client's IP address: the socket peer, or — only when `server.trusted_proxy_header` is
//! set — the address a trusted proxy put in that header (the right-most entry of
//! `X-Forwarded-For`, which is the one our own proxy appended).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The resolved client address, as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Middleware: put [`ClientIp`] into the request's extensions.
pub async fn resolve(header: Option<String>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let from_header = header.as_deref().and_then(|name| {
        let value = request.headers().get(name)?.to_str().ok()?;
        value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
    });
    if let Some(ip) = from_header.or(peer) {
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}
