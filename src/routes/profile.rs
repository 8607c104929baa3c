//! `GET /` and `GET /profile`: the signed-in person's profile page (avatar, name, traits with
//! where each came from, linked identities); `/login` for everyone else.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tower_sessions::Session;

use crate::error::AppError;
use crate::session;
use crate::state::AppState;
use crate::store::Store;
use crate::traits::{format_time, TraitSet};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(profile_page))
        .route("/profile", get(profile_page))
}

struct TraitRow {
    name: &'static str,
    value: String,
    source: String,
    verified: bool,
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

async fn profile_page(State(store): State<Store>, session: Session) -> Result<Response, AppError> {
    let Some(user) = session::signed_in_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(profile) = store.get_user(&user.user_id).await? else {
        session.flush().await?;
        return Ok(Redirect::to("/login").into_response());
    };
    let traits = TraitSet::NAMES
        .iter()
        .filter_map(|name| {
            let value = profile.traits.get(*name)?;
            let provenance = profile.provenance.get(*name);
            Some(TraitRow {
                name,
                value: display_value(value),
                source: provenance
                    .and_then(|p| p.get("source"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                verified: provenance
                    .and_then(|p| p.get("verified"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
        })
        .collect();
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
