//! `[providers.traits]` pointers: one or a list per trait ([`Pointers`]), each reading the
//! merged claims or a provider's own API ([`SourcedPointer`]).

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};

/// One JSON Pointer or a list of them (TOML `"/a"` or `["/a", "/b"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Pointers(pub Vec<String>);

impl<'de> Deserialize<'de> for Pointers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a JSON Pointer or a list of them")]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        Ok(Pointers(match Form::deserialize(deserializer)? {
            Form::One(one) => vec![one],
            Form::Many(many) => many,
        }))
    }
}

impl JsonSchema for Pointers {
    fn schema_name() -> Cow<'static, str> {
        "Pointers".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ],
            "description": "A JSON Pointer (RFC 6901) into the merged claims, or a list of them."
        })
    }
}

/// Where one `[providers.traits]` pointer reads: the merged claims, or the provider's own API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerSource {
    /// `/ptr` or `claims:/ptr`: the ID token merged with userinfo.
    Claims,
    /// `graph:/me/ptr`: Microsoft Graph's user object (`graph = true`).
    GraphMe,
    /// `graph:/organization/ptr`: the tenant (`graph = true`).
    GraphOrganization,
    /// `graph:/groups`: the group ids Graph lists for an Entra group overage (`graph = true`).
    GraphGroups,
    /// `users_api:/ptr`: Okta's `/api/v1/users/me` record (`users_api = true`).
    UsersApi,
}

/// One configured pointer, split into where it reads and the JSON Pointer there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcedPointer<'a> {
    pub source: PointerSource,
    /// A JSON Pointer (RFC 6901) into that source; empty for `graph:/groups`.
    pub pointer: &'a str,
}

impl<'a> SourcedPointer<'a> {
    /// Reads `/ptr`, `claims:/ptr`, `graph:/me/ptr`, `graph:/organization/ptr`,
    /// `graph:/groups` or `users_api:/ptr`. The pointer itself is checked by the caller.
    pub fn parse(text: &'a str) -> Result<SourcedPointer<'a>, String> {
        let at = |source, pointer| Ok(SourcedPointer { source, pointer });
        if let Some(rest) = text.strip_prefix("claims:") {
            return at(PointerSource::Claims, rest);
        }
        if let Some(rest) = text.strip_prefix("users_api:") {
            return at(PointerSource::UsersApi, rest);
        }
        if let Some(rest) = text.strip_prefix("graph:") {
            if rest == "/groups" {
                return at(PointerSource::GraphGroups, "");
            }
            if let Some(pointer) = rest.strip_prefix("/me").filter(|p| p.starts_with('/')) {
                return at(PointerSource::GraphMe, pointer);
            }
            if let Some(pointer) = rest
                .strip_prefix("/organization")
                .filter(|p| p.starts_with('/'))
            {
                return at(PointerSource::GraphOrganization, pointer);
            }
            return Err(format!(
                "`{text}`: a Graph source is `graph:/me/…`, `graph:/organization/…` or \
                 `graph:/groups`"
            ));
        }
        at(PointerSource::Claims, text)
    }
}
