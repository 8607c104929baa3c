//! The 25 `enrichment_*` trait names of the Identify API (spec §1.3), in the spec's order: the
//! vocabulary `[providers.traits]`, `exclude_traits` and `hash_traits` may name. `traits::TraitSet`
//! has one field per name (a test there holds the two together).

pub const TRAIT_NAMES: [&str; 25] = [
    "enrichment_first_name",
    "enrichment_last_name",
    "enrichment_full_name",
    "enrichment_avatar",
    "enrichment_email_provider",
    "enrichment_phone",
    "enrichment_city",
    "enrichment_state",
    "enrichment_state_code",
    "enrichment_time_zone",
    "enrichment_location",
    "enrichment_country",
    "enrichment_country_code",
    "enrichment_employment_domain",
    "enrichment_employment_name",
    "enrichment_employment_role",
    "enrichment_employment_seniority",
    "enrichment_employment_sub_role",
    "enrichment_employment_title",
    "enrichment_facebook_handle",
    "enrichment_github_handle",
    "enrichment_linkedin_handle",
    "enrichment_twitter_handle",
    "enrichment_inactive_at",
    "enrichment_active_at",
];

/// Whether `name` is one of the 25 trait names.
pub fn is_trait_name(name: &str) -> bool {
    TRAIT_NAMES.contains(&name)
}

/// The nearest trait name to a misspelt one, when one is near enough to be meant.
pub fn nearest_trait_name(name: &str) -> Option<&'static str> {
    super::suggest::nearest(name, TRAIT_NAMES.iter().copied())
}

/// Names the identify message sets itself (`email`, `name` beside the traits; the formats'
/// creation time), so no mapping may produce them.
pub const RESERVED_TRAIT_NAMES: [&str; 5] = ["email", "name", "created_at", "createdAt", "user_id"];

/// The longest custom trait name: the Identify API's default `max_key_chars`, so whatever the
/// bridge forwards its own Identify API would accept.
pub const MAX_CUSTOM_TRAIT_CHARS: usize = 128;

/// Why `name` cannot be a custom trait (one outside the 25), or `None` when it can: any name the
/// Identify API accepts (non-empty, at most 128 characters, no control characters), except the
/// `enrichment_` prefix (a typo of one of the 25 must not pass as a new trait) and the names
/// the message sets itself.
pub fn custom_trait_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("a trait name must not be empty".into());
    }
    if name.chars().count() > MAX_CUSTOM_TRAIT_CHARS {
        return Some(format!(
            "a trait name has at most {MAX_CUSTOM_TRAIT_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Some("a trait name must not contain control characters".into());
    }
    if RESERVED_TRAIT_NAMES.contains(&name) {
        return Some(format!(
            "{name:?} is set by the bridge itself ({}); choose another name",
            RESERVED_TRAIT_NAMES.join(", ")
        ));
    }
    if name.starts_with("enrichment_") {
        let hint = nearest_trait_name(name)
            .map(|n| format!("did you mean {n:?}? "))
            .unwrap_or_default();
        return Some(format!(
            "unknown trait {name:?}; {hint}names starting with `enrichment_` are the 25 \
             enrichment traits: {}; a custom trait needs a name without that prefix",
            TRAIT_NAMES.join(", ")
        ));
    }
    None
}
