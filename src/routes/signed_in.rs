//! Who is signed in, checked: every route that acts for a signed-in person (`/me`, `/auth`, the
//! profile page, sign out everywhere) asks [`current_user`]. A session past
//! `session.max_lifetime_secs`, or that its provider no longer stands behind
//! ([`crate::revalidate`], every `session.revalidate_secs`) is ended here and the request
//! treated as anonymous: pages go to sign-in, JSON and `/auth` answer 401. (Whether the
//! profile still exists is each route's check: `/me` and the profile page read it anyway,
//! `/auth` asks [`crate::store::Store::profile_exists`].)

use tower_sessions::session::Id;
use tower_sessions::{Session, SessionStore};

use serde_json::{Map, Value};

use crate::error::AppError;
use crate::outbox;
use crate::providers::{Provider, ProviderData};
use crate::revalidate::{self, Verdict};
use crate::session::{self, SignedInUser};
use crate::signin::{self, ClientInfo};
use crate::state::AppState;
use crate::store::SignInOutcome;

/// After an unreachable provider, the next check waits at least this long (seconds).
const RETRY_UNREACHABLE_SECS: i64 = 60;

/// The signed-in user of this request, if the session is still good.
pub async fn current_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<SignedInUser>, AppError> {
    let Some(mut user) = session::signed_in_user(session).await? else {
        return Ok(None);
    };
    let settings = &state.settings.session;
    let now = chrono::Utc::now().timestamp();
    let age = now - user.signed_in_unix();
    if age < 0 || age as u64 > settings.max_lifetime_secs {
        tracing::info!(user_id = %user.user_id, "session past its lifetime ended");
        end_session(session).await?;
        return Ok(None);
    }
    let every = settings.revalidate_secs as i64;
    if every > 0
        && now - user.validated_at >= every
        && !revalidated(state, session, &mut user, now).await?
    {
        end_session(session).await?;
        return Ok(None);
    }
    Ok(Some(user))
}

/// Check the session with its provider; `false` when it must end. The session is saved with
/// the time of the check (and refreshed tokens).
async fn revalidated(
    state: &AppState,
    session: &Session,
    user: &mut SignedInUser,
    now: i64,
) -> Result<bool, AppError> {
    let Some(provider) = state.providers.get(&user.provider) else {
        // A provider removed from the configuration cannot vouch for anyone.
        tracing::info!(user_id = %user.user_id, provider = %user.provider, "session of a removed provider ended");
        return Ok(false);
    };
    let keys = &state.pending_logins.keys;
    let tokens = user.open_tokens(keys).unwrap_or_default();
    match revalidate::check(&provider, &tokens, now).await {
        Verdict::Valid { tokens, claims } => {
            crate::metrics::revalidation(provider.name(), "valid");
            if let Some(tokens) = tokens {
                user.seal_tokens(keys, &tokens);
            }
            user.validated_at = now;
            if let Some(claims) = claims {
                update_traits(state, &provider, user, &claims).await;
            }
        }
        Verdict::Ended(reason) => {
            // Two requests of one browser may refresh at once; a rotated refresh token then
            // fails for the slower one. The stored session shows whether the other succeeded.
            if checked_elsewhere(state, session, user).await {
                return Ok(true);
            }
            crate::metrics::revalidation(provider.name(), "ended");
            tracing::info!(user_id = %user.user_id, %reason, "session ended by its provider");
            return Ok(false);
        }
        Verdict::Unreachable(reason) => {
            crate::metrics::revalidation(provider.name(), "unreachable");
            tracing::warn!(user_id = %user.user_id, %reason, "session re-validation failed; the session goes on");
            user.validated_at =
                now - state.settings.session.revalidate_secs as i64 + RETRY_UNREACHABLE_SECS;
        }
    }
    session
        .insert(session::SIGNED_IN_USER, user.clone())
        .await?;
    Ok(true)
}

/// Traits that changed since the sign-in, from the provider's fresh claims: mapped as the
/// sign-in maps them, written to the profile and sent to the sinks as an identify call through
/// the outbox, in one transaction; nothing when nothing changed. A failure is logged and the
/// session goes on.
async fn update_traits(
    state: &AppState,
    provider: &Provider,
    user: &SignedInUser,
    claims: &Map<String, Value>,
) {
    // Userinfo speaks for the signed-in account only (OpenID Connect Core §5.3.2).
    if claims.get("sub").and_then(Value::as_str) != Some(user.subject.as_str()) {
        tracing::warn!(user_id = %user.user_id, "userinfo named another subject; its claims are ignored");
        return;
    }
    let settings = &state.settings;
    let at = chrono::Utc::now();
    let facts = signin::facts_from(
        &provider.settings,
        provider.quirks(),
        signin::Verified {
            issuer: &user.issuer,
            subject: &user.subject,
            claims,
        },
        &ProviderData::default(),
        &settings.server.public_url,
        at,
    );
    let (traits, provenance) = match (
        serde_json::to_value(&facts.traits.traits),
        serde_json::to_value(&facts.traits.provenance),
    ) {
        (Ok(t), Ok(p)) => (t, p),
        _ => return,
    };
    let client = ClientInfo::default();
    let messages =
        |outcome: &SignInOutcome| outbox::messages_for_sign_in(settings, &facts, outcome, &client);
    match state
        .store
        .record_revalidated_traits(&user.user_id, &traits, &provenance, at, &messages)
        .await
    {
        Ok(Some(_)) => {
            crate::outbox::worker::wake();
            tracing::info!(user_id = %user.user_id, "traits changed at re-validation");
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(user_id = %user.user_id, error = %e, "traits from re-validation not recorded");
        }
    }
}

/// Whether the stored session was re-validated by another request since this one read it.
async fn checked_elsewhere(state: &AppState, session: &Session, user: &SignedInUser) -> bool {
    let Some(id): Option<Id> = session.id() else {
        return false;
    };
    let Ok(Some(record)) = state.sessions.load(&id).await else {
        return false;
    };
    record
        .data
        .get(session::SIGNED_IN_USER)
        .and_then(|v| serde_json::from_value::<SignedInUser>(v.clone()).ok())
        .is_some_and(|stored| stored.validated_at > user.validated_at)
}

/// End this request's session: the stored record goes, and the cookie with the response.
pub async fn end_session(session: &Session) -> Result<(), AppError> {
    session.flush().await?;
    Ok(())
}
