//! `[auth_request]`: the headers `GET /auth` answers a reverse proxy with (nginx
//! `auth_request`, Traefik `forwardAuth`): the user id and email by default; the name and any
//! traits (groups, plan, a department) when named here.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `[auth_request]` section. An empty header name leaves that header out.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthRequestSettings {
    /// The header carrying the bridge's `user_id`.
    pub user_id_header: String,
    /// The header carrying the signed-in email ("": none).
    pub email_header: String,
    /// The header carrying the signed-in name ("": none).
    pub name_header: String,
    /// Trait name (one of the 25 or a custom trait a provider maps, e.g. `groups`) → header
    /// name. Lists are sent comma-separated.
    pub trait_headers: BTreeMap<String, String>,
}

impl Default for AuthRequestSettings {
    fn default() -> Self {
        AuthRequestSettings {
            user_id_header: "X-Identify-User-Id".into(),
            email_header: "X-Identify-Email".into(),
            name_header: String::new(),
            trait_headers: BTreeMap::new(),
        }
    }
}

/// Headers a proxy or the connection owns: answering with them would change the response's
/// framing or its cookies, not pass on a value.
const FORBIDDEN_HEADERS: [&str; 12] = [
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "keep-alive",
    "location",
    "proxy-authenticate",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
];

impl AuthRequestSettings {
    /// The configured headers as (key, header name), empty names left out.
    pub fn headers(&self) -> impl Iterator<Item = (String, &str)> {
        [
            ("user_id_header".to_string(), self.user_id_header.as_str()),
            ("email_header".to_string(), self.email_header.as_str()),
            ("name_header".to_string(), self.name_header.as_str()),
        ]
        .into_iter()
        .chain(
            self.trait_headers
                .iter()
                .map(|(name, header)| (format!("trait_headers.{name}"), header.as_str())),
        )
        .filter(|(_, header)| !header.is_empty())
    }

    /// Check the section; the error names the key and what is wrong. `is_trait` says whether
    /// a name is a trait some provider can produce.
    pub fn validate(&self, is_trait: impl Fn(&str) -> bool) -> Result<(), (String, String)> {
        let mut seen: Vec<String> = Vec::new();
        for (key, header) in self.headers() {
            let key = format!("auth_request.{key}");
            let token = header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err((
                    key,
                    format!("{header:?} is not a header name (letters, digits and `-`)"),
                ));
            }
            let lower = header.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
                return Err((
                    key,
                    format!("{header:?} belongs to the connection or the response itself; choose an `X-…` name"),
                ));
            }
            if seen.contains(&lower) {
                return Err((key, format!("{header:?} is named twice in [auth_request]")));
            }
            seen.push(lower);
        }
        for name in self.trait_headers.keys() {
            if !is_trait(name) {
                return Err((
                    format!("auth_request.trait_headers.{name}"),
                    format!(
                        "{name:?} is neither one of the 25 enrichment traits nor a custom trait \
                         a provider maps in [providers.traits]"
                    ),
                ));
            }
        }
        Ok(())
    }
}
