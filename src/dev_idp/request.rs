//! The authorization request: its parameters as sent, and the request once every check passed
//! (read by the sign-in form's view and by the code issuer).

use serde::Deserialize;
use url::Url;

use super::Client;

/// The authorization request, from the query string or the form's hidden fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthParams {
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub nonce: String,
    #[serde(default)]
    pub code_challenge: String,
    #[serde(default)]
    pub code_challenge_method: String,
}

impl AuthParams {
    /// Name/value pairs for the hidden fields.
    pub fn hidden_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("response_type", self.response_type.clone()),
            ("scope", self.scope.clone()),
            ("state", self.state.clone()),
            ("nonce", self.nonce.clone()),
            ("code_challenge", self.code_challenge.clone()),
            ("code_challenge_method", self.code_challenge_method.clone()),
        ]
    }
}

/// A request that passed every check.
pub struct ValidRequest {
    pub client: Client,
    pub redirect_uri: Url,
    /// Requested scopes this provider knows, space-separated.
    pub scope: String,
    pub params: AuthParams,
}
