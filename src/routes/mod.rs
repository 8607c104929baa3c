//! HTTP routes, one file per area.

pub mod assets;
pub mod auth;
pub mod callback;
pub mod health;
pub mod identify;
pub mod login;
pub mod logout;
pub mod me;

use axum::Router;

use crate::state::AppState;

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(login::router())
        .merge(callback::router())
        .merge(me::router())
        .merge(logout::router())
        .merge(auth::router())
        .merge(health::router())
        .merge(identify::router())
        .merge(assets::router())
}
