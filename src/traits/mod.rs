//! Claims → the 25 enrichment traits of the Identify API (spec §1.3, providers.md §5), and the
//! custom traits a provider's `[providers.traits]` names (groups, plan, an org id).
//!
//! [`map_traits`] is a pure function: provider defaults ([`defaults`]), then the operator's
//! configured JSON-Pointer mapping ([`mapping`]), then normalisation and derivations
//! ([`derive`]). It never does I/O and never panics on any claim set. Each concern has its own
//! file: [`geo`], [`phone`], [`email`], [`role`], [`social`], [`sanitize`].
//!
//! Provenance sources look like `claims:/address/locality` (a JSON Pointer into the merged
//! claims), `graph:/me/jobTitle` and `graph:/organization/displayName` (Microsoft Graph),
//! `users_api:/profile/title` (the Okta Users API's `/api/v1/users/me`),
//! `mapping:/custom/ptr` (the configured mapping; a mapped API pointer keeps its own source, e.g.
//! `graph:/groups`), `derived:country_code→country` (a derivation
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

/// Which kind-specific default rules apply (providers.md §5). The provider's kind says
/// (`Quirks::trait_rules`); the traits never name a kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindRules {
    /// The `hd` claim is a Google Workspace domain: the employment domain, and the email
    /// provider "Google Workspace".
    pub workspace_hd: bool,
    /// Microsoft Entra: `tid`, `xms_edov` and Graph's `verifiedDomains` tell a Microsoft 365
    /// (work or school) address, and Graph's `usageLocation` leads the country.
    pub entra: bool,
}

/// Everything [`map_traits`] reads.
#[derive(Debug, Clone, Copy)]
pub struct MappingInput<'a> {
    /// The provider kind's default rules.
    pub rules: KindRules,
    /// ID-token claims merged with userinfo.
    pub claims: &'a Map<String, Value>,
    /// What the provider's own API returned, when it was read.
    pub api: ApiData<'a>,
    /// The provider's configured `[providers.traits]` mapping (may be empty).
    pub mapping: &'a TraitMapping,
    /// The time of this sign-in; becomes `enrichment_active_at`.
    pub signed_in_at: DateTime<Utc>,
}

/// Records a provider's own API returned, as plain JSON objects named by the provenance source
/// they become (the traits never see a provider's types).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiData<'a> {
    /// `graph:/me/…`: Microsoft Graph's user object.
    pub graph_me: Option<&'a Map<String, Value>>,
    /// `graph:/organization/…`: the tenant (`displayName`, `verifiedDomains`).
    pub graph_organization: Option<&'a Map<String, Value>>,
    /// `users_api:/…`: Okta's `/api/v1/users/me` user object.
    pub users_api: Option<&'a Map<String, Value>>,
    /// `graph:/groups`: the group ids Graph listed for an Entra group overage.
    pub graph_groups: Option<&'a [String]>,
}

/// The Microsoft tenant id of personal (MSA) accounts.
pub const MSA_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Maps a claim set onto the traits. Pure: no I/O, never panics.
#[tracing::instrument(level = "debug", skip_all)]
pub fn map_traits(input: &MappingInput) -> MappedTraits {
    let mut raw = defaults::gather(input);
    mapping::apply_overrides(&mut raw, input);
    derive::finish(raw, input)
}

/// RFC 3339 in UTC with milliseconds, as traits carry times (`2026-01-01T00:00:00.000Z`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A time given as text, as traits carry it ([`format_time`]): an RFC 3339 timestamp, or a date
/// (`2026-01-31`, midnight UTC); `None` for anything else.
fn trait_time(text: &str) -> Option<String> {
    let text = text.trim();
    let t = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(0, 0, 0)
                .map(|d| d.and_utc())
        })?;
    Some(format_time(t))
}
