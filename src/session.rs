//! Typed values kept in the server-side session, under fixed keys, and the signed-in session
//! the callback prepares for the sign-in transaction to write.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use tower_sessions::session::{Id, Record};
use tower_sessions::Session;

use crate::login_context::LoginContext;
use crate::sealed::Keys;
use crate::store::SessionRow;
pub use crate::store::{record_user_id, SIGNED_IN_USER};

/// Key by which the callback tells the session store that the sign-in transaction already
/// wrote this session, under the id it holds: the store adopts the id instead of writing again.
/// Never stored (the store takes it out).
const WRITTEN_AS: &str = "written_as";

/// A sign-in between `/login/{provider}` and `/callback/{provider}`, kept in its own sealed
/// cookie ([`crate::pending_login`]). Holds secrets: its `Debug` shows only provider and age.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    /// Unix seconds.
    pub started_at: i64,
    #[serde(default)]
    pub anonymous_id: Option<String>,
    /// The `prompt` sent to the provider.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The login link's campaign and referrer, for the identify call's `context`.
    #[serde(default, skip_serializing_if = "LoginContext::is_empty")]
    pub context: LoginContext,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider", &self.provider)
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

/// Who is signed in, as `/me` and `/auth` report it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedInUser {
    pub user_id: String,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// RFC 3339. The session ends `session.max_lifetime_secs` after it.
    pub signed_in_at: String,
    /// Whether this sign-in created the profile.
    #[serde(default)]
    pub first_sign_in: bool,
    /// Unix seconds of the last check with the provider (sign-in or re-validation).
    #[serde(default)]
    pub validated_at: i64,
    /// The ID token's `sid` (back-channel logout may name it).
    #[serde(default)]
    pub sid: Option<String>,
    /// The provider's tokens, sealed ([`SessionTokens`]); erased with the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<String>,
}

impl SignedInUser {
    /// Unix seconds of the sign-in (0 when unreadable: such a session is past any lifetime).
    pub fn signed_in_unix(&self) -> i64 {
        chrono::DateTime::parse_from_rfc3339(&self.signed_in_at)
            .map(|t| t.timestamp())
            .unwrap_or(0)
    }

    /// What the tokens are sealed for: this user's session at this issuer.
    fn tokens_purpose(&self) -> Vec<u8> {
        format!(
            "session tokens\0{}\0{}\0{}",
            self.user_id, self.issuer, self.subject
        )
        .into_bytes()
    }

    pub fn seal_tokens(&mut self, keys: &Keys, tokens: &SessionTokens) {
        let plain = serde_json::to_vec(tokens).expect("tokens serialize");
        self.tokens = Some(keys.seal(&self.tokens_purpose(), &plain));
    }

    pub fn open_tokens(&self, keys: &Keys) -> Option<SessionTokens> {
        let plain = keys.open(&self.tokens_purpose(), self.tokens.as_deref()?)?;
        serde_json::from_slice(&plain).ok()
    }
}

/// The provider's tokens kept with a session, sealed: the ID token (logout's `id_token_hint`),
/// and the refresh or access token re-validation uses. Secrets: no `Debug`.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct SessionTokens {
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    pub access_token_expires_at: Option<i64>,
}

impl fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionTokens")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("access_token_expires_at", &self.access_token_expires_at)
            .finish_non_exhaustive()
    }
}

/// A signed-in session made at the callback, before the sign-in transaction writes it.
pub struct NewSignedIn {
    pub id: Id,
    pub user: SignedInUser,
}

impl NewSignedIn {
    pub fn new(user: SignedInUser) -> NewSignedIn {
        NewSignedIn {
            id: Id::default(),
            user,
        }
    }

    /// The record for the database's session table, as the session layer would write it.
    pub fn row(&self, idle_timeout_secs: u64) -> SessionRow {
        let expiry_date =
            time::OffsetDateTime::now_utc() + time::Duration::seconds(idle_timeout_secs as i64);
        let record = Record {
            id: self.id,
            data: HashMap::from([(SIGNED_IN_USER.to_string(), user_value(&self.user))]),
            expiry_date,
        };
        SessionRow {
            data: crate::store::encode_record(&record).expect("a session record encodes"),
            expiry_date,
        }
    }

    /// Put the session in the request's session on a fresh id (a session this browser had is
    /// deleted: no fixation): the layer sets the cookie, and the store adopts [`Self::id`].
    pub async fn adopt(self, session: &Session) -> Result<(), tower_sessions::session::Error> {
        if session.id().is_some() {
            session.cycle_id().await?;
        }
        session.insert(SIGNED_IN_USER, self.user).await?;
        session.insert(WRITTEN_AS, self.id.to_string()).await
    }
}

fn user_value(user: &SignedInUser) -> serde_json::Value {
    serde_json::to_value(user).expect("a signed-in user serializes")
}

/// The id a session record was already written under, taken out of a record being created.
pub fn take_written_id(record: &mut Record) -> Option<Id> {
    let value = record.data.remove(WRITTEN_AS)?;
    value.as_str()?.parse().ok()
}

/// The signed-in user in this session, as stored (no lifetime or provider checks: use
/// `routes::signed_in::current_user` for those).
pub async fn signed_in_user(
    session: &Session,
) -> Result<Option<SignedInUser>, tower_sessions::session::Error> {
    session.get(SIGNED_IN_USER).await
}
