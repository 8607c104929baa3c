//! The development notice on every page `dev` serves (sign-in, profile, dashboard, error pages):
//! a middleware puts it where `templates/base.html` marks the spot, so no page and no handler
//! has to remember it, and `serve` never shows it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

/// Where base.html wants the notice.
const MARKER: &str = "<!-- dev-notice -->";
const NOTICE: &str = "<div class=\"dev-notice\" role=\"note\"><strong>Development mode</strong> \
    (<code>identify-bridge dev</code>): the development provider signs in anyone, and the \
    dashboard is open. Not for production.</div>";
/// Pages are small; anything larger is passed through untouched.
const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// Add the notice to the HTML pages of `router`.
pub fn add_notice<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(axum::middleware::from_fn(notice))
}

async fn notice(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_PAGE_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "page body unreadable for the development notice");
            return Response::from_parts(parts, Body::empty());
        }
    };
    let page = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains(MARKER) => text.replacen(MARKER, NOTICE, 1),
        _ => return Response::from_parts(parts, Body::from(bytes)),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(page))
}
