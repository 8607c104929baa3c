//! `GET /admin/users/{user_id}`: one user for an operator: profile, identities, traits with
//! provenance, the identify calls the built-in API received, and the deliveries to each sink.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;

use super::view::{counted, Ago};
use crate::config::Settings;
use crate::error::AppError;
use crate::routes::profile::{trait_rows, TraitRow};
use crate::store::{OutboxStatus, Store};

struct IdentityRow {
    provider: String,
    issuer: String,
    subject: String,
    email: String,
    email_verified: bool,
    first_seen: Ago,
    last_seen: Ago,
}

struct CallRow {
    when: Ago,
    traits: String,
}

struct DeliveryRow {
    sink: String,
    status: &'static str,
    attempts: i32,
    created: Ago,
    last_error: String,
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    user_id: String,
    name: String,
    created_at: Ago,
    created_at_source: String,
    last_sign_in: Option<Ago>,
    identities: Vec<IdentityRow>,
    traits: Vec<TraitRow>,
    calls: Vec<CallRow>,
    deliveries: Vec<DeliveryRow>,
}

pub(super) async fn user_page(
    State(settings): State<Arc<Settings>>,
    State(store): State<Store>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(prompt) = super::key_prompt(&settings, &headers) {
        return Ok(prompt);
    }
    let Some(profile) = store.get_user(&user_id).await? else {
        return Err(AppError::UserNotFound);
    };
    let now = Utc::now();
    let calls = store
        .identify_calls_for_user(&user_id, 20)
        .await?
        .into_iter()
        .map(|c| CallRow {
            when: Ago::new(c.received_at, now),
            traits: counted(
                c.traits.0.as_object().map_or(0, |t| t.len()) as i64,
                "trait",
                "traits",
            ),
        })
        .collect();
    let mut messages = store.messages_for_user(&user_id).await?;
    messages.sort_by_key(|m| std::cmp::Reverse(m.created_at));
    let deliveries = messages
        .into_iter()
        .take(50)
        .map(|m| DeliveryRow {
            sink: m.sink,
            status: match m.status {
                OutboxStatus::Pending => "pending",
                OutboxStatus::Delivered => "delivered",
                OutboxStatus::Dead => "dead",
            },
            attempts: m.attempts,
            created: Ago::new(m.created_at, now),
            last_error: m.last_error.unwrap_or_default(),
        })
        .collect();
    let name = profile
        .traits
        .get("enrichment_full_name")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_string();
    let page = UserPage {
        user_id: profile.user_id.clone(),
        name,
        created_at: Ago::new(profile.created_at, now),
        created_at_source: profile.created_at_source.clone(),
        last_sign_in: profile.last_sign_in_at.map(|at| Ago::new(at, now)),
        identities: profile
            .identities
            .iter()
            .map(|i| IdentityRow {
                provider: i.provider.clone(),
                issuer: i.issuer.clone(),
                subject: i.subject.clone(),
                email: i.email.clone().unwrap_or_default(),
                email_verified: i.email_verified,
                first_seen: Ago::new(i.first_seen_at, now),
                last_seen: Ago::new(i.last_seen_at, now),
            })
            .collect(),
        traits: trait_rows(&profile),
        calls,
        deliveries,
    };
    let html = page.render().map_err(|e| AppError::Internal(e.into()))?;
    Ok(super::page(html))
}
