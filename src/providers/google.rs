//! Google: one fixed issuer; the `hd` claim (Workspace) is read by the trait mapping.

use crate::config::GoogleSettings;

/// Google's issuer, as its discovery document and ID tokens state it.
pub const ISSUER: &str = "https://accounts.google.com";

/// Google's issuer, or the configured override.
pub fn issuer(settings: &GoogleSettings) -> String {
    match &settings.issuer {
        Some(issuer) => issuer.as_str().trim_end_matches('/').to_string(),
        None => ISSUER.to_string(),
    }
}
