//! The sink-neutral identify message kept in the outbox, and how a sign-in produces one per sink.
//! Each sink's copy already has that sink's exclusions and hashing applied, so the outbox
//! holds no more personal data than the sink will receive.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{Settings, SinkSettings};
use crate::signin::{ClientInfo, SignInFacts};
use crate::store::{NewOutboxMessage, SignInOutcome};
use crate::traits::format_time;

/// One identify call, before a sink format shapes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentifyMessage {
    pub message_id: Uuid,
    pub user_id: String,
    /// Enrichment traits that have a value, plus `email` and `name` (as the spec's sample).
    pub traits: Map<String, Value>,
    /// When the account was first created (RFC 3339, UTC, milliseconds).
    pub created_at: String,
    /// When the sign-in happened.
    pub event_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    pub context: Map<String, Value>,
}

/// One outbox row per configured sink for this sign-in.
pub fn messages_for_sign_in(
    settings: &Settings,
    facts: &SignInFacts,
    outcome: &SignInOutcome,
    client: &ClientInfo,
) -> Vec<NewOutboxMessage> {
    let provider = facts.provider.as_str();
    let mut all_traits = facts.traits.traits.to_map();
    if let Some(email) = facts.email.as_ref() {
        all_traits.insert("email".into(), Value::String(email.address.clone()));
    }
    if let Some(name) = &facts.name {
        all_traits.insert(
            "name".into(),
            Value::String(name.chars().take(256).collect()),
        );
    }
    let context = sign_in_context(provider, outcome.first_sign_in, client);
    settings
        .sinks
        .iter()
        .map(|sink| {
            let mut context = context.clone();
            // The client's address is personal data: only for a sink that asks for it.
            if let Some(ip) = client.ip.as_ref().filter(|_| sink.send_client_ip) {
                context.insert("ip".into(), Value::String(ip.clone()));
            }
            let message = IdentifyMessage {
                message_id: Uuid::new_v4(),
                user_id: outcome.user_id.clone(),
                traits: filter_traits(sink, &all_traits),
                created_at: format_time(outcome.created_at),
                event_at: format_time(facts.signed_in_at),
                anonymous_id: client.anonymous_id.clone(),
                context,
            };
            to_row(sink, message, facts.signed_in_at)
        })
        .collect()
}

/// The sink-neutral `context` of a sign-in's identify call (the client address is added per
/// sink): provider, first sign-in or not, user agent, locale, the landing `page` (with the
/// login link's `referrer`), the login link's `campaign`, and this library.
fn sign_in_context(provider: &str, first_sign_in: bool, client: &ClientInfo) -> Map<String, Value> {
    let mut context = Map::new();
    context.insert("provider".into(), Value::String(provider.to_string()));
    context.insert("first_sign_in".into(), Value::Bool(first_sign_in));
    if let Some(ua) = &client.user_agent {
        context.insert("user_agent".into(), Value::String(ua.clone()));
    }
    if let Some(locale) = &client.locale {
        context.insert("locale".into(), Value::String(locale.clone()));
    }
    if let Some(page) = &client.page {
        context.insert("page".into(), serde_json::json!(page));
    }
    if let Some(campaign) = &client.campaign {
        context.insert("campaign".into(), serde_json::json!(campaign));
    }
    context.insert(
        "library".into(),
        serde_json::json!({"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")}),
    );
    context
}

/// The outbox row for one sink's copy of a message.
pub fn to_row(
    sink: &SinkSettings,
    message: IdentifyMessage,
    at: DateTime<Utc>,
) -> NewOutboxMessage {
    NewOutboxMessage {
        message_id: message.message_id,
        sink: sink.name.clone(),
        user_id: message.user_id.clone(),
        payload: serde_json::to_value(&message).expect("identify messages serialize"),
        created_at: at,
    }
}

/// Apply a sink's `exclude_traits` and `hash_traits`.
pub fn filter_traits(sink: &SinkSettings, traits: &Map<String, Value>) -> Map<String, Value> {
    traits
        .iter()
        .filter(|(k, _)| !sink.exclude_traits.iter().any(|e| e == *k))
        .map(|(k, v)| {
            if sink.hash_traits.iter().any(|h| h == k) {
                (k.clone(), hash_value(v))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// Lowercase hex SHA-256 of a string value (each element of a list).
fn hash_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(hex::encode(Sha256::digest(s.as_bytes()))),
        Value::Array(items) => Value::Array(items.iter().map(hash_value).collect()),
        other => hash_value(&Value::String(other.to_string())),
    }
}
