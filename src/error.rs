//! One error type, two audiences: a page from templates/ for browsers, the spec's error JSON
//! (`{"status":"error","message":…,"error_code":…}`) for programs. Handlers return
//! [`AppError`]; its response carries an [`ErrorInfo`] extension that the [`render_errors`]
//! middleware logs once (with the request id) and turns into the final body.

use askama::Template;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::providers::ProviderError;
use crate::return_to::ReturnToError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no such page")]
    NotFound,
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    #[error("return_to refused: {0}")]
    ReturnTo(#[from] ReturnToError),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("sign-in state missing, unknown or already used")]
    LoginStateInvalid,
    #[error("sign-in took longer than the allowed time")]
    LoginExpired,
    #[error("provider returned error {error:?}")]
    ProviderDenied {
        error: String,
        description: Option<String>,
        /// The provider's name when it answered `invalid_scope` to a request that asked for
        /// `offline_access` (an app without the Refresh Token grant): the page and the log say
        /// what to change.
        offline_access_refused_by: Option<String>,
    },
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("not signed in")]
    NotSignedIn,
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("no such user")]
    UserNotFound,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error(transparent)]
    AccessRefused(#[from] crate::access_policy::Refusal),
    #[error("session store failure: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound | AppError::UnknownProvider(_) | AppError::UserNotFound => {
                StatusCode::NOT_FOUND
            }
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::ReturnTo(_)
            | AppError::BadRequest(_)
            | AppError::LoginStateInvalid
            | AppError::LoginExpired => StatusCode::BAD_REQUEST,
            AppError::ProviderDenied { .. } | AppError::NotSignedIn => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::AccessRefused(_) => StatusCode::FORBIDDEN,
            AppError::Provider(e) => match e {
                ProviderError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
                ProviderError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                ProviderError::Unreachable(..)
                | ProviderError::Rejected(..)
                | ProviderError::InvalidResponse(..) => StatusCode::BAD_GATEWAY,
                ProviderError::InvalidIdToken(_) | ProviderError::SubjectMismatch => {
                    StatusCode::UNAUTHORIZED
                }
                ProviderError::Tenant(_) => StatusCode::FORBIDDEN,
            },
            AppError::Session(_) | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The spec's `error_code`.
    pub fn error_code(&self) -> &'static str {
        match self.status_code() {
            StatusCode::BAD_REQUEST => "INVALID_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => "UPSTREAM_ERROR",
            _ => "INTERNAL_ERROR",
        }
    }

    /// Title and plain message for a person. Never includes internals.
    fn public_text(&self) -> (&'static str, String) {
        match self {
            AppError::NotFound => ("Page not found", "There is nothing at this address.".into()),
            AppError::UnknownProvider(_) => (
                "Unknown sign-in provider",
                "This sign-in provider is not configured here. Go back and choose one from the list.".into(),
            ),
            AppError::ReturnTo(e) => (
                "This sign-in link is not allowed",
                format!("{}. The page that sent you here asked to return somewhere this service does not send people to.", capitalise(&e.to_string())),
            ),
            AppError::BadRequest(m) => ("Bad request", m.clone()),
            AppError::LoginStateInvalid => (
                "This sign-in link is no longer valid",
                "The sign-in was already completed, was started in another browser, or the link was changed. Start again from the sign-in page.".into(),
            ),
            AppError::LoginExpired => (
                "The sign-in took too long",
                "For your security a sign-in must be finished within a few minutes. Please start again.".into(),
            ),
            AppError::ProviderDenied {
                offline_access_refused_by: Some(_),
                ..
            } => (
                "Sign-in was not completed",
                format!("The identity provider refused the offline access (a refresh token) this service asks for to keep sessions checked, so you are not signed in. An administrator can enable the Refresh Token grant for this application at the provider, or set {REFRESH_TOKENS_OFF} for this provider in the service's configuration."),
            ),
            AppError::ProviderDenied { error, .. } => (
                "Sign-in was not completed",
                match error.as_str() {
                    "access_denied" => "The sign-in was cancelled or the provider refused it. You are not signed in.".into(),
                    "login_required" | "interaction_required" | "consent_required" => {
                        "The provider needs you to sign in or give consent again. Please start again.".into()
                    }
                    _ => "The identity provider reported an error, so you are not signed in. Please try again.".into(),
                },
            ),
            AppError::Provider(e) => match e {
                ProviderError::NotReady(_) => (
                    "Sign-in provider unavailable",
                    "This sign-in provider cannot be reached right now. Please try again in a minute.".into(),
                ),
                ProviderError::Timeout(_) => (
                    "The sign-in provider did not answer",
                    "The identity provider took too long to answer. Please try again.".into(),
                ),
                ProviderError::Unreachable(..) | ProviderError::Rejected(..) | ProviderError::InvalidResponse(..) => (
                    "The sign-in provider gave an error",
                    "The identity provider could not complete the sign-in. Please start again.".into(),
                ),
                ProviderError::InvalidIdToken(_) | ProviderError::SubjectMismatch => (
                    "Your sign-in could not be verified",
                    "The answer from the identity provider failed our security checks, so you are not signed in. Please start again.".into(),
                ),
                ProviderError::Tenant(_) => (
                    "Your organisation cannot sign in here",
                    "Accounts from your organisation are not allowed to sign in to this service.".into(),
                ),
            },
            AppError::NotSignedIn => ("Not signed in", "You are not signed in.".into()),
            AppError::Unauthorized(m) => ("Not authorised", m.clone()),
            AppError::UserNotFound => ("Unknown user", "No user has this user_id.".into()),
            AppError::Forbidden(m) => ("Not allowed", m.clone()),
            AppError::AccessRefused(r) => ("This account cannot sign in here", r.message.clone()),
            AppError::Store(e) if !e.is_unavailable() => (
                "Something went wrong",
                "An unexpected error happened on our side. Please try again.".into(),
            ),
            AppError::Session(_) | AppError::Unavailable(_) | AppError::Store(_) => (
                "Service temporarily unavailable",
                "Something this service depends on is not available right now. Please try again shortly.".into(),
            ),
            AppError::Internal(_) => (
                "Something went wrong",
                "An unexpected error happened on our side. Please try again.".into(),
            ),
        }
    }

    /// Bounded reason label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AppError::NotFound => "not_found",
            AppError::UnknownProvider(_) => "unknown_provider",
            AppError::ReturnTo(_) => "bad_return_to",
            AppError::BadRequest(_) => "bad_request",
            AppError::LoginStateInvalid => "state_invalid",
            AppError::LoginExpired => "login_expired",
            AppError::ProviderDenied { .. } => "provider_denied",
            AppError::Provider(e) => e.reason(),
            AppError::NotSignedIn => "not_signed_in",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::UserNotFound => "user_not_found",
            AppError::Forbidden(_) => "forbidden",
            AppError::AccessRefused(r) => r.rule.reason(),
            AppError::Session(_) => "session_store",
            AppError::Unavailable(_) => "unavailable",
            AppError::Store(_) => "database",
            AppError::Internal(_) => "internal",
        }
    }
}

/// The provider key that stops sign-ins asking for a refresh token.
const REFRESH_TOKENS_OFF: &str = "refresh_tokens = false";

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// What the error middleware needs to log and render an error.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: String,
    pub message: String,
    /// The operator's detail; logged, never shown.
    pub detail: String,
    pub reason: &'static str,
    /// Force JSON (`Some(true)`) or a page (`Some(false)`); `None` decides by path.
    pub json: Option<bool>,
    /// A link for the person to continue with.
    pub action: Option<(String, String)>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (title, message) = self.public_text();
        let action = match &self {
            AppError::LoginStateInvalid
            | AppError::LoginExpired
            | AppError::ProviderDenied { .. }
            | AppError::AccessRefused(_)
            | AppError::Provider(_) => Some(("/login".to_string(), "Start again".to_string())),
            _ => None,
        };
        let detail = match &self {
            AppError::ProviderDenied {
                error,
                description,
                offline_access_refused_by,
            } => {
                let mut detail = format!(
                    "provider error={error:?} description={:?}",
                    description.as_deref().unwrap_or("")
                );
                if let Some(provider) = offline_access_refused_by {
                    detail.push_str(&format!(
                        "; the request asked for offline_access (a refresh token, as session re-validation does): enable the Refresh Token grant for this client at the provider, or set {REFRESH_TOKENS_OFF} on provider {provider:?}"
                    ));
                }
                detail
            }
            other => other.to_string(),
        };
        ErrorInfo {
            status: self.status_code(),
            code: self.error_code(),
            title: title.to_string(),
            message,
            detail,
            reason: self.reason(),
            json: None,
            action,
        }
        .into_response()
    }
}

/// A 4xx/5xx response nobody shaped: plain text or no body at all.
fn needs_shaping(response: &Response) -> bool {
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return false;
    }
    match response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(ct) => ct.starts_with("text/plain"),
    }
}

impl ErrorInfo {
    /// Shape an unshaped error response by its status; a short client-error text is kept as
    /// the message (axum's rejections name the field at fault), server errors never show it.
    pub fn from_status(status: StatusCode, text: String) -> ErrorInfo {
        let (code, title, default) = match status {
            StatusCode::BAD_REQUEST => (
                "INVALID_REQUEST",
                "Bad request",
                "The request is not valid.",
            ),
            StatusCode::UNAUTHORIZED => (
                "UNAUTHORIZED",
                "Not authorised",
                "Authentication is required.",
            ),
            StatusCode::FORBIDDEN => ("FORBIDDEN", "Not allowed", "This is not allowed."),
            StatusCode::NOT_FOUND => (
                "NOT_FOUND",
                "Page not found",
                "There is nothing at this address.",
            ),
            StatusCode::METHOD_NOT_ALLOWED => (
                "METHOD_NOT_ALLOWED",
                "Method not allowed",
                "This method is not allowed here.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "PAYLOAD_TOO_LARGE",
                "Request too large",
                "The request body is too large.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "UNSUPPORTED_MEDIA_TYPE",
                "Unsupported media type",
                "Send Content-Type: application/json.",
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                "INVALID_REQUEST",
                "Headers too large",
                "The request headers are too large.",
            ),
            StatusCode::TOO_MANY_REQUESTS => (
                "RATE_LIMITED",
                "Too many requests",
                "Too many requests. Please wait a moment and try again.",
            ),
            s if s.is_server_error() => (
                "INTERNAL_ERROR",
                "Something went wrong",
                "An unexpected error happened on our side. Please try again.",
            ),
            _ => (
                "INVALID_REQUEST",
                "Request refused",
                "The request was refused.",
            ),
        };
        let message = if status.is_client_error()
            && !text.is_empty()
            && text.len() <= 300
            && status != StatusCode::NOT_FOUND
        {
            text.clone()
        } else {
            default.to_string()
        };
        ErrorInfo {
            status,
            code,
            title: title.to_string(),
            message,
            detail: text,
            reason: "rejected",
            json: None,
            action: None,
        }
    }
}

impl IntoResponse for ErrorInfo {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    status: u16,
    request_id: &'a str,
    action: Option<(String, String)>,
}

/// Whether errors for this path are for programs (JSON) rather than people (a page).
pub fn wants_json(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/api"
        || path == "/me"
        || path == "/auth"
        || path == "/readyz"
        || path == "/healthz"
}

/// Log each error once and render it for its audience.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut response = next.run(request).await;
    let info = match response.extensions_mut().remove::<ErrorInfo>() {
        Some(info) => info,
        None if needs_shaping(&response) => {
            // An error from a layer or extractor (axum rejections, body/header limits): give it
            // the same shape as ours.
            let status = response.status();
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 2048).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_string();
            response = Response::from_parts(parts, axum::body::Body::empty());
            ErrorInfo::from_status(status, text)
        }
        None => return response,
    };
    if info.status.is_server_error() {
        tracing::error!(%method, %path, status = info.status.as_u16(), reason = info.reason, detail = %info.detail, "request failed");
    } else if info.reason == "not_signed_in" {
        // Nobody signed in is an answer, not a fault: web apps ask `/me` on every page view.
        tracing::debug!(%method, %path, status = info.status.as_u16(), reason = info.reason, "not signed in");
    } else {
        tracing::warn!(%method, %path, status = info.status.as_u16(), reason = info.reason, detail = %info.detail, "request refused");
    }
    let json = info.json.unwrap_or_else(|| wants_json(&path));
    let mut rendered = if json {
        let body = json!({"status": "error", "message": info.message, "error_code": info.code});
        (info.status, axum::Json(body)).into_response()
    } else {
        let page = ErrorPage {
            title: &info.title,
            message: &info.message,
            status: info.status.as_u16(),
            request_id: &request_id,
            action: info.action.clone(),
        };
        match page.render() {
            Ok(html) => (info.status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                (info.status, info.message.clone()).into_response()
            }
        }
    };
    // Keep headers the handler set (Retry-After, WWW-Authenticate, …).
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rendered
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    rendered
}

/// The response for a panic caught by `CatchPanicLayer`: rendered like any internal error.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    AppError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
}

/// Fallback for unknown routes.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Okta app without the Refresh Token grant refuses `offline_access`: the page and the
    /// operator's log line say what to change; another `invalid_scope` says nothing of it.
    #[test]
    fn a_refused_offline_access_names_the_refresh_token_grant_and_the_key() {
        let denied = |refused_by: Option<&str>| AppError::ProviderDenied {
            error: "invalid_scope".into(),
            description: Some("The following scopes are not allowed: offline_access".into()),
            offline_access_refused_by: refused_by.map(str::to_string),
        };
        let info = |e: AppError| e.into_response().extensions().get::<ErrorInfo>().cloned();
        let told = info(denied(Some("okta"))).expect("error info");
        for text in [&told.message, &told.detail] {
            assert!(text.contains("Refresh Token grant"), "{text}");
            assert!(text.contains("refresh_tokens = false"), "{text}");
        }
        assert!(told.detail.contains("\"okta\""), "{}", told.detail);
        assert_eq!(told.status, StatusCode::UNAUTHORIZED);
        let other = info(denied(None)).expect("error info");
        assert!(
            !other.message.contains("refresh_tokens"),
            "{}",
            other.message
        );
        assert!(!other.detail.contains("refresh_tokens"), "{}", other.detail);
    }
}
