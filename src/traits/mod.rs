//! Claims → the 25 enrichment traits of the Identify API (spec §1.3, providers.md §5).
//!
//! [`map_traits`] is a pure function: provider defaults ([`defaults`]), then the operator's
//! configured JSON-Pointer mapping ([`mapping`]), then normalisation and derivations
//! ([`derive`]). It never does I/O and never panics on any claim set. Each concern has its own
//! file: [`geo`], [`phone`], [`email`], [`role`], [`social`], [`sanitize`].
//!
//! Provenance sources look like `claims:/address/locality` (a JSON Pointer into the merged
//! claims), `graph:/me/jobTitle` and `graph:/organization/displayName` (Microsoft Graph),
//! `users_api:/profile/title` (the Okta Users API's `/api/v1/users/me`),
//! `mapping:/custom/ptr` (the configured mapping), `derived:country_code→country` (a derivation
//! rule) and `bridge:sign_in_time` (observed by the bridge).

mod defaults;
mod derive;
pub mod email;
pub mod geo;
mod mapping;
pub mod phone;
mod pointer;
pub mod role;
pub mod sanitize;
mod set;
pub mod social;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::ProviderKind;
use crate::providers::graph::GraphProfile;

pub use mapping::TraitMapping;
pub use set::TraitSet;

/// Where one trait's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraitSource {
    /// `claims:/ptr`, `graph:/me/field`, `users_api:/ptr`, `mapping:/ptr`, `derived:rule` or
    /// `bridge:sign_in_time`.
    pub source: String,
    /// True when the provider (or the bridge itself) gave the value; false when it was inferred.
    pub verified: bool,
}

/// The traits of one claim set, with the provenance of each trait that is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MappedTraits {
    pub traits: TraitSet,
    pub provenance: BTreeMap<String, TraitSource>,
}

/// Everything [`map_traits`] reads.
#[derive(Debug, Clone, Copy)]
pub struct MappingInput<'a> {
    pub kind: ProviderKind,
    /// ID-token claims merged with userinfo.
    pub claims: &'a Map<String, Value>,
    /// Microsoft Graph data, when enabled and fetched.
    pub graph: Option<&'a GraphProfile>,
    /// Okta: the Users API's user object (`/api/v1/users/me`), when enabled and fetched.
    pub okta_user: Option<&'a Map<String, Value>>,
    /// The provider's configured `[providers.traits]` mapping (may be empty).
    pub mapping: &'a TraitMapping,
    /// The time of this sign-in; becomes `enrichment_active_at`.
    pub signed_in_at: DateTime<Utc>,
}

/// The Microsoft tenant id of personal (MSA) accounts.
pub const MSA_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Maps a claim set onto the traits. Pure: no I/O, never panics.
#[tracing::instrument(level = "debug", skip_all, fields(kind = ?input.kind))]
pub fn map_traits(input: &MappingInput) -> MappedTraits {
    let mut raw = defaults::gather(input);
    mapping::apply_overrides(&mut raw, input.claims, input.mapping);
    derive::finish(raw, input)
}

/// When the account was created, as the provider says: Microsoft Graph `createdDateTime`, Okta's
/// `created` (Users API, or a `created` claim an admin added). Never `iat`, `auth_time` or
/// `updated_at`, which are not creation times.
pub fn account_created_at(
    kind: ProviderKind,
    claims: &Map<String, Value>,
    graph: Option<&GraphProfile>,
    okta_user: Option<&Map<String, Value>>,
) -> Option<DateTime<Utc>> {
    let value = match kind {
        ProviderKind::Microsoft => graph?.me.get("createdDateTime")?,
        ProviderKind::Okta => okta_user
            .and_then(|u| u.get("created"))
            .or_else(|| claims.get("created"))?,
        ProviderKind::Google | ProviderKind::Oidc => return None,
    };
    let text = value.as_str()?;
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// RFC 3339 in UTC with milliseconds, as traits carry times (`2026-01-01T00:00:00.000Z`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
