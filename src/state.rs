//! Shared application state; handlers extract only the part they use.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::config::Settings;
use crate::identify_api::IdentifyApi;
use crate::pending_login::PendingCookies;
use crate::providers::Providers;
use crate::session_store::AnySessionStore;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub providers: Providers,
    pub store: Store,
    pub identify_api: IdentifyApi,
    pub pending_logins: PendingCookies,
    pub sessions: AnySessionStore,
}

impl FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Self {
        state.store.clone()
    }
}

impl FromRef<AppState> for Arc<Settings> {
    fn from_ref(state: &AppState) -> Self {
        state.settings.clone()
    }
}

impl FromRef<AppState> for Providers {
    fn from_ref(state: &AppState) -> Self {
        state.providers.clone()
    }
}

impl FromRef<AppState> for IdentifyApi {
    fn from_ref(state: &AppState) -> Self {
        state.identify_api.clone()
    }
}

impl FromRef<AppState> for PendingCookies {
    fn from_ref(state: &AppState) -> Self {
        state.pending_logins.clone()
    }
}

impl FromRef<AppState> for AnySessionStore {
    fn from_ref(state: &AppState) -> Self {
        state.sessions.clone()
    }
}

/// The session keys (sealed pending logins and tokens).
impl FromRef<AppState> for crate::sealed::Keys {
    fn from_ref(state: &AppState) -> Self {
        state.pending_logins.keys.clone()
    }
}
