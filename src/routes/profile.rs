//! `GET /` and `GET /profile`: the signed-in person's profile page (avatar, name, traits with
//! where each came from, linked identities); `/login` for everyone else.
//! `POST /profile/sign-out-everywhere` (same-origin only): ends every session of the profile,
//! in every store and so on every replica.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tower_sessions::Session;

use crate::config::RESERVED_TRAIT_NAMES;
use crate::error::AppError;
use crate::routes::logout::check_same_origin;
use crate::routes::signed_in::{current_user, end_session};
use crate::state::AppState;
use crate::store::SessionsOf;
use crate::traits::{format_time, TraitSet};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(profile_page))
        .route("/profile", get(profile_page))
        .route("/profile/sign-out-everywhere", post(sign_out_everywhere))
}

/// One trait as the profile and the admin user page show it: its value and provenance.
pub(crate) struct TraitRow {
    pub name: String,
    pub value: String,
    pub source: String,
    pub verified: bool,
}

/// The profile's traits: the 25 in the specification's order, then the custom ones by name,
/// then notices about traits that have no value (an unresolved group overage), each with where
/// it came from.
pub(crate) fn trait_rows(profile: &crate::store::UserRecord) -> Vec<TraitRow> {
    let row = |name: &str, value: String| {
        let provenance = profile.provenance.get(name);
        TraitRow {
            name: name.to_owned(),
            value,
            source: provenance
                .and_then(|p| p.get("source"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            verified: provenance
                .and_then(|p| p.get("verified"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    };
    let empty = serde_json::Map::new();
    let traits = profile.traits.as_object().unwrap_or(&empty);
    // `email` and `name` head the page; they are fields of the identify call, not traits.
    let listed = |name: &&String| !RESERVED_TRAIT_NAMES.contains(&name.as_str());
    let custom = traits
        .keys()
        .filter(listed)
        .filter(|name| !TraitSet::is_known(name))
        .map(String::as_str);
    let notices = profile
        .provenance
        .as_object()
        .unwrap_or(&empty)
        .keys()
        .filter(listed)
        .filter(|name| !traits.contains_key(*name))
        .map(|name| row(name.as_str(), "unknown".into()));
    TraitSet::NAMES
        .iter()
        .copied()
        .chain(custom)
        .filter_map(|name| Some(row(name, display_value(traits.get(name)?))))
        .chain(notices)
        .collect()
}

struct IdentityRow {
    provider: String,
    email: String,
    email_verified: bool,
    first_seen: String,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    display_name: String,
    initials: String,
    email: Option<String>,
    avatar: Option<String>,
    user_id: String,
    created_at: String,
    created_at_source: String,
    first_sign_in: bool,
    traits: Vec<TraitRow>,
    identities: Vec<IdentityRow>,
}

async fn profile_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, AppError> {
    let Some(user) = current_user(&state, &session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(profile) = state.store.get_user(&user.user_id).await? else {
        end_session(&session).await?;
        return Ok(Redirect::to("/login").into_response());
    };
    let traits = trait_rows(&profile);
    let text = |name: &str| {
        profile
            .traits
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let display_name = text("enrichment_full_name")
        .or_else(|| user.name.clone())
        .unwrap_or_else(|| "Your profile".into());
    let initials: String = display_name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect();
    // Only https images: the CSP allows them, and a claim cannot point the page elsewhere.
    let avatar = text("enrichment_avatar").filter(|a| a.starts_with("https://"));
    let identities = profile
        .identities
        .iter()
        .map(|i| IdentityRow {
            provider: i.provider.clone(),
            email: i.email.clone().unwrap_or_default(),
            email_verified: i.email_verified,
            first_seen: format_time(i.first_seen_at),
            last_seen: format_time(i.last_seen_at),
        })
        .collect();
    let page = ProfilePage {
        display_name,
        initials,
        email: user.email.clone(),
        avatar,
        user_id: profile.user_id.clone(),
        created_at: format_time(profile.created_at),
        created_at_source: profile.created_at_source.clone(),
        first_sign_in: user.first_sign_in,
        traits,
        identities,
    };
    Ok(Html(page.render().map_err(|e| AppError::Internal(e.into()))?).into_response())
}

/// End every session of the signed-in profile (this one too), then go to the sign-in page.
async fn sign_out_everywhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
) -> Result<Response, AppError> {
    check_same_origin(&state.settings, &headers)?;
    if let Some(user) = current_user(&state, &session).await? {
        let ended = state
            .sessions
            .end(&state.store, SessionsOf::User(&user.user_id))
            .await?;
        tracing::info!(user_id = %user.user_id, ended, "signed out everywhere");
    }
    end_session(&session).await?;
    Ok(Redirect::to("/login").into_response())
}

/// A trait value as text: lists joined with commas.
fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(display_value)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}
