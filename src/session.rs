//! Typed values kept in the server-side session, under fixed keys.

use std::fmt;

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

/// Key of the list of sign-ins started in this browser and not yet finished.
pub const PENDING_LOGINS: &str = "pending_logins";
/// Key of the signed-in user.
pub const SIGNED_IN_USER: &str = "signed_in_user";
/// At most this many sign-ins may be pending per browser (several tabs); the oldest drops out.
pub const MAX_PENDING_LOGINS: usize = 5;

/// A sign-in between `/login/{provider}` and `/callback/{provider}`. Holds secrets: its
/// `Debug` shows only the provider and age.
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
    /// RFC 3339.
    pub signed_in_at: String,
    /// Whether this sign-in created the profile.
    #[serde(default)]
    pub first_sign_in: bool,
}

/// Add a pending login, dropping the oldest beyond [`MAX_PENDING_LOGINS`].
pub async fn push_pending_login(
    session: &Session,
    login: PendingLogin,
) -> Result<(), tower_sessions::session::Error> {
    let mut pending: Vec<PendingLogin> = session.get(PENDING_LOGINS).await?.unwrap_or_default();
    pending.push(login);
    if pending.len() > MAX_PENDING_LOGINS {
        let excess = pending.len() - MAX_PENDING_LOGINS;
        pending.drain(..excess);
    }
    session.insert(PENDING_LOGINS, pending).await
}

/// Take the pending login with this `state` out of the session: it can be used once only.
pub async fn take_pending_login(
    session: &Session,
    state: &str,
) -> Result<Option<PendingLogin>, tower_sessions::session::Error> {
    let mut pending: Vec<PendingLogin> = session.get(PENDING_LOGINS).await?.unwrap_or_default();
    let Some(index) = pending
        .iter()
        .position(|p| subtle::ConstantTimeEq::ct_eq(p.state.as_bytes(), state.as_bytes()).into())
    else {
        return Ok(None);
    };
    let login = pending.remove(index);
    if pending.is_empty() {
        session.remove_value(PENDING_LOGINS).await?;
    } else {
        session.insert(PENDING_LOGINS, pending).await?;
    }
    // Delete the stored record now, so a replay racing this request cannot find it again;
    // the session goes on under a fresh id (no fixation), stored when the response is sent.
    session.cycle_id().await?;
    Ok(Some(login))
}

/// The signed-in user's id in a stored session record, if any (the session stores use it to
/// link a new signed-in session to its user, so erasure can end it).
pub fn record_user_id(record: &tower_sessions::session::Record) -> Option<&str> {
    record.data.get(SIGNED_IN_USER)?.get("user_id")?.as_str()
}

pub async fn signed_in_user(
    session: &Session,
) -> Result<Option<SignedInUser>, tower_sessions::session::Error> {
    session.get(SIGNED_IN_USER).await
}
