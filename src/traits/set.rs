//! `TraitSet`: the 25 `enrichment_*` traits of the Identify API (spec §1.3), in spec order, and
//! the custom traits a provider's mapping names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The enrichment traits of one user. Absent values are omitted from JSON, never sent as "".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraitSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_avatar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_email_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_phone: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_state_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_employment_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_employment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_employment_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_employment_seniority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_employment_sub_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_employment_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_facebook_handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_github_handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_linkedin_handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_twitter_handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_inactive_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment_active_at: Option<String>,
    /// Custom traits (names outside the 25, from `[providers.traits]`): each a string, number,
    /// boolean or list of strings, as the Identify API accepts them.
    #[serde(flatten)]
    pub custom: BTreeMap<String, Value>,
}

/// Generates `get`, `set_string` and `is_empty` from one field list so they cannot drift.
macro_rules! trait_fields {
    ($($field:ident),* $(,)?) => {
        impl TraitSet {
            /// The value of one trait as plain JSON (a string, or a list of strings for the phone).
            /// `None` when the trait is absent or the name is unknown.
            pub fn get(&self, name: &str) -> Option<Value> {
                match name {
                    "enrichment_phone" => self
                        .enrichment_phone
                        .as_ref()
                        .map(|v| Value::Array(v.iter().cloned().map(Value::String).collect())),
                    $(stringify!($field) => self.$field.clone().map(Value::String),)*
                    _ => self.custom.get(name).cloned(),
                }
            }

            /// Sets a string-valued trait. Returns false for an unknown name or `enrichment_phone`.
            pub fn set_string(&mut self, name: &str, value: Option<String>) -> bool {
                match name {
                    $(stringify!($field) => { self.$field = value; true })*
                    _ => false,
                }
            }

            /// True when no trait is set.
            pub fn is_empty(&self) -> bool {
                self.enrichment_phone.is_none() && self.custom.is_empty() $(&& self.$field.is_none())*
            }
        }
    };
}

trait_fields!(
    enrichment_first_name,
    enrichment_last_name,
    enrichment_full_name,
    enrichment_avatar,
    enrichment_email_provider,
    enrichment_city,
    enrichment_state,
    enrichment_state_code,
    enrichment_time_zone,
    enrichment_location,
    enrichment_country,
    enrichment_country_code,
    enrichment_employment_domain,
    enrichment_employment_name,
    enrichment_employment_role,
    enrichment_employment_seniority,
    enrichment_employment_sub_role,
    enrichment_employment_title,
    enrichment_facebook_handle,
    enrichment_github_handle,
    enrichment_linkedin_handle,
    enrichment_twitter_handle,
    enrichment_inactive_at,
    enrichment_active_at,
);

impl TraitSet {
    /// The 25 trait names, in the spec's order (§1.3).
    pub const NAMES: [&'static str; 25] = crate::config::TRAIT_NAMES;

    /// True when `name` is one of the 25 trait names.
    pub fn is_known(name: &str) -> bool {
        Self::NAMES.contains(&name)
    }

    /// The traits as a JSON object of plain values, keyed by name, absent ones omitted; the
    /// custom traits after the 25.
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        Self::NAMES
            .iter()
            .filter_map(|n| self.get(n).map(|v| ((*n).to_owned(), v)))
            .chain(self.custom.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect()
    }
}
