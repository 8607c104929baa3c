//! `GET /login` (the page with a button per provider) and `GET /login/{provider}` (begin a
//! sign-in: state, nonce and PKCE verifier go into a sealed cookie of their own, nothing into a
//! store; then a redirect to the provider).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{REFERER, SET_COOKIE};
use axum::http::HeaderMap;
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::config::Settings;
use crate::error::AppError;
use crate::login_context::{self, Campaign, LoginContext};
use crate::pending_login::PendingCookies;
use crate::providers::oidc::AuthOptions;
use crate::providers::Providers;
use crate::return_to;
use crate::session::PendingLogin;
use crate::state::AppState;

/// Longest `login_hint` / `anonymous_id` passed on.
const MAX_HINT_LEN: usize = 256;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page))
        .route("/login/{provider}", get(begin_login))
}

#[derive(Debug, Deserialize)]
pub struct LoginParams {
    return_to: Option<String>,
    login_hint: Option<String>,
    anonymous_id: Option<String>,
    /// OpenID Connect `prompt`, passed on: `login`, `consent`, `select_account` (space
    /// separated), e.g. for a "use another account" link.
    prompt: Option<String>,
    /// The page that linked here (a page may pass `document.referrer`); else `Referer`.
    referrer: Option<String>,
    utm_campaign: Option<String>,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_term: Option<String>,
    utm_content: Option<String>,
}

impl LoginParams {
    /// The login link's `utm_*` parameters that are set.
    fn utm(&self) -> impl Iterator<Item = (&str, &str)> {
        [
            ("utm_campaign", &self.utm_campaign),
            ("utm_source", &self.utm_source),
            ("utm_medium", &self.utm_medium),
            ("utm_term", &self.utm_term),
            ("utm_content", &self.utm_content),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
    }

    /// The login link's context (the landing page's own `utm_*` are read at the callback).
    fn context(&self, headers: &HeaderMap, settings: &Settings) -> LoginContext {
        let own_origin = settings.server.public_url.origin().ascii_serialization();
        let referer = headers.get(REFERER).and_then(|v| v.to_str().ok());
        LoginContext {
            campaign: Campaign::from_pairs(self.utm()),
            referrer: login_context::referrer(self.referrer.as_deref(), referer, &own_origin),
        }
    }
}

struct ProviderButton {
    label: String,
    kind: &'static str,
    href: String,
    ready: bool,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    providers: Vec<ProviderButton>,
}

async fn login_page(
    State(settings): State<Arc<Settings>>,
    State(providers): State<Providers>,
    Query(params): Query<LoginParams>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let target = return_to::validate(
        params.return_to.as_deref(),
        &settings.server.public_url,
        &allowed_origins(&settings),
    )?;
    // The buttons carry on what the link to this page said: landing page, campaign, referrer.
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    if params.return_to.is_some() {
        pairs.append_pair("return_to", target.as_str());
    }
    if let Some(referrer) = &params.context(&headers, &settings).referrer {
        pairs.append_pair("referrer", referrer);
    }
    pairs.extend_pairs(params.utm());
    let query = match pairs.finish() {
        q if q.is_empty() => String::new(),
        q => format!("?{q}"),
    };
    let buttons = providers
        .iter()
        .map(|p| ProviderButton {
            label: crate::providers::label(&p.settings),
            kind: p.settings.kind_name(),
            href: format!("/login/{}{}", p.name(), query),
            ready: p.is_ready(),
        })
        .collect();
    let html = LoginPage { providers: buttons }
        .render()
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Html(html).into_response())
}

/// Start a sign-in with `provider`.
#[tracing::instrument(skip_all, fields(provider = %name))]
async fn begin_login(
    State(settings): State<Arc<Settings>>,
    State(providers): State<Providers>,
    State(pending): State<PendingCookies>,
    Path(name): Path<String>,
    Query(params): Query<LoginParams>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let provider = providers
        .get(&name)
        .ok_or_else(|| AppError::UnknownProvider(name.clone()))?;
    let target = return_to::validate(
        params.return_to.as_deref(),
        &settings.server.public_url,
        &allowed_origins(&settings),
    )?;
    let context = params.context(&headers, &settings);
    let login_hint = checked_text("login_hint", params.login_hint)?;
    // Segment's analytics.js keeps the visitor's anonymous id in this cookie.
    let anonymous_id = checked_text(
        "anonymous_id",
        params
            .anonymous_id
            .or_else(|| cookie(&headers, "ajs_anonymous_id")),
    )?;
    let prompt = checked_prompt(params.prompt)?;
    let request = provider.authorization_request(&AuthOptions {
        login_hint: login_hint.as_deref(),
        prompt: prompt.as_deref(),
        // A refresh token is what re-validation uses first: ask for one when sessions are
        // re-validated, unless the provider's `refresh_tokens = false`.
        offline: provider.asks_refresh_token(settings.session.revalidate_secs > 0),
    })?;
    let cookie = pending.set_cookie(&PendingLogin {
        provider: name,
        state: request.state,
        nonce: request.nonce,
        pkce_verifier: request.pkce_verifier,
        return_to: target.to_string(),
        started_at: chrono::Utc::now().timestamp(),
        anonymous_id,
        prompt,
        context,
    });
    tracing::info!("sign-in started");
    Ok((
        AppendHeaders([(SET_COOKIE, cookie)]),
        Redirect::to(request.url.as_str()),
    )
        .into_response())
}

/// Optional short text from the query: bounded, no control characters.
fn checked_text(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.len() > MAX_HINT_LEN || v.chars().any(char::is_control) => {
            Err(AppError::BadRequest(format!(
                "The {field} parameter must be at most {MAX_HINT_LEN} characters of plain text."
            )))
        }
        Some(v) => Ok(Some(v)),
    }
}

/// `prompt` values a person can ask for. `none` is left out: it asks for a silent answer,
/// which a redirect sign-in cannot use.
const PROMPTS: [&str; 3] = ["login", "consent", "select_account"];

fn checked_prompt(value: Option<String>) -> Result<Option<String>, AppError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let mut values: Vec<&str> = value.split(' ').filter(|v| !v.is_empty()).collect();
    if values.iter().any(|v| !PROMPTS.contains(v)) {
        return Err(AppError::BadRequest(format!(
            "The prompt parameter takes {} (space separated).",
            PROMPTS.join(", ")
        )));
    }
    values.dedup();
    Ok(Some(values.join(" ")))
}

/// A cookie's value (quotes that analytics.js adds around JSON strings removed).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| {
            let decoded = percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned();
            decoded.trim_matches('"').to_string()
        })
}

pub(crate) fn allowed_origins(settings: &Settings) -> Vec<String> {
    settings.server.return_origins()
}
