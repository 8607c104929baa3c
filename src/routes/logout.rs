//! `GET /logout` (a page with a sign-out button) and `POST /logout` (same-origin only: ends
//! the session, then sends the browser to the provider's `end_session_endpoint` if it has one,
//! with `id_token_hint` (the ID token kept sealed with the session) and
//! `post_logout_redirect_uri`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tower_sessions::Session;

use crate::config::Settings;
use crate::error::AppError;
use crate::providers::Providers;
use crate::routes::login::allowed_origins;
use crate::sealed::Keys;
use crate::state::AppState;
use crate::{return_to, session};

pub fn router() -> Router<AppState> {
    Router::new().route("/logout", get(logout_page).post(logout))
}

#[derive(Debug, Deserialize, Default)]
pub struct LogoutForm {
    return_to: Option<String>,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    return_to: String,
}

async fn logout_page(Query(form): Query<LogoutForm>) -> Result<Html<String>, AppError> {
    let page = LogoutPage {
        return_to: form.return_to.unwrap_or_else(|| "/login".into()),
    };
    Ok(Html(
        page.render().map_err(|e| AppError::Internal(e.into()))?,
    ))
}

async fn logout(
    State(settings): State<Arc<Settings>>,
    State(providers): State<Providers>,
    State(keys): State<Keys>,
    headers: HeaderMap,
    session: Session,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    check_same_origin(&settings, &headers)?;
    // Any body shape is accepted: a form post, or nothing at all.
    let form = LogoutForm {
        return_to: url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "return_to")
            .map(|(_, v)| v.into_owned()),
    };
    let target = return_to::validate(
        form.return_to.as_deref().or(Some("/login")),
        &settings.server.public_url,
        &allowed_origins(&settings),
    )?;
    let user = session::signed_in_user(&session).await?;
    session.flush().await?;
    let end_session = user.as_ref().and_then(|u| {
        let p = providers.get(&u.provider)?;
        let d = p.discovered().ok()?;
        let mut url = d
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut query = url.query_pairs_mut();
        // The ID token goes back to the provider it came from only; it is never logged.
        if let Some(id_token) = u.open_tokens(&keys).and_then(|t| t.id_token) {
            query.append_pair("id_token_hint", &id_token);
        }
        query
            .append_pair("client_id", &p.settings.client_id)
            .append_pair("post_logout_redirect_uri", target.as_str());
        drop(query);
        Some(url)
    });
    tracing::info!(
        signed_in = user.is_some(),
        provider_logout = end_session.is_some(),
        "signed out"
    );
    Ok(Redirect::to(end_session.as_ref().unwrap_or(&target).as_str()).into_response())
}

/// Cross-site request protection: the browser's `Origin` (or, lacking it, `Referer`) must be
/// ours or an allowed return origin; `Sec-Fetch-Site: same-origin` also passes.
pub(crate) fn check_same_origin(settings: &Settings, headers: &HeaderMap) -> Result<(), AppError> {
    let own = settings.server.public_url.origin().ascii_serialization();
    let allowed = allowed_origins(settings);
    let ok_origin = |origin: &str| origin == own || allowed.iter().any(|a| a == origin);
    if let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) {
        if origin != "null" {
            return if ok_origin(origin) {
                Ok(())
            } else {
                Err(forbidden())
            };
        }
    }
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("same-origin") {
        return Ok(());
    }
    if let Some(referer) = headers.get("referer").and_then(|v| v.to_str().ok()) {
        if let Ok(url) = url::Url::parse(referer) {
            if ok_origin(&url.origin().ascii_serialization()) {
                return Ok(());
            }
        }
    }
    Err(forbidden())
}

fn forbidden() -> AppError {
    AppError::Forbidden(
        "Sign-out must be requested from this site. Use the sign-out button.".into(),
    )
}
