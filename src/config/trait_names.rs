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
