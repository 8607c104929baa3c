//! Country, state, time zone and location: ISO 3166-1/3166-2 via `rust_iso3166`, IANA zones via
//! `chrono-tz`.
//!
//! Country names are the ISO 3166-1 English short names as the crate ships them ("United States
//! of America", "Korea (Republic of)"). Free text such as Graph's admin-typed `country` is
//! resolved to a code by alpha-2, alpha-3, the ISO name (with or without its parenthesised
//! qualifier) and a short list of common English names that the ISO list spells differently
//! (kept here because the crate has no alias data).

use chrono_tz::Tz;

/// Common English names and abbreviations that ISO 3166-1 spells differently.
const ALIASES: &[(&str, &str)] = &[
    ("united states", "US"),
    ("us", "US"),
    ("usa", "US"),
    ("america", "US"),
    ("uk", "GB"),
    ("united kingdom", "GB"),
    ("great britain", "GB"),
    ("britain", "GB"),
    ("england", "GB"),
    ("scotland", "GB"),
    ("wales", "GB"),
    ("northern ireland", "GB"),
    ("south korea", "KR"),
    ("korea", "KR"),
    ("north korea", "KP"),
    ("russia", "RU"),
    ("vietnam", "VN"),
    ("czech republic", "CZ"),
    ("holland", "NL"),
    ("netherlands", "NL"),
    ("uae", "AE"),
    ("ivory coast", "CI"),
    ("turkey", "TR"),
    ("turkiye", "TR"),
    ("cape verde", "CV"),
    ("laos", "LA"),
    ("syria", "SY"),
    ("taiwan", "TW"),
    ("brunei", "BN"),
    ("macedonia", "MK"),
    ("swaziland", "SZ"),
    ("burma", "MM"),
    ("vatican", "VA"),
    ("palestine", "PS"),
    ("moldova", "MD"),
    ("tanzania", "TZ"),
    ("dr congo", "CD"),
    ("democratic republic of the congo", "CD"),
];

/// Lowercase, dots removed, whitespace collapsed, a leading "the " dropped.
fn fold(s: &str) -> String {
    let lower = s.to_lowercase().replace('.', "");
    let words: Vec<&str> = lower.split_whitespace().collect();
    let joined = words.join(" ");
    joined
        .strip_prefix("the ")
        .map(str::to_owned)
        .unwrap_or(joined)
}

/// Resolves a country code or name to an ISO 3166-1 alpha-2 code. The flag is true when the
/// input already was that alpha-2 code (so nothing was inferred).
pub fn resolve_country(input: &str) -> Option<(&'static str, bool)> {
    let t = input.trim();
    if t.is_empty() || t.chars().count() > 100 {
        return None;
    }
    if t.len() == 2 && t.is_ascii() {
        if let Some(c) = rust_iso3166::from_alpha2(&t.to_ascii_uppercase()) {
            return Some((c.alpha2, true));
        }
    }
    if t.len() == 3 && t.is_ascii() {
        if let Some(c) = rust_iso3166::from_alpha3(&t.to_ascii_uppercase()) {
            return Some((c.alpha2, false));
        }
    }
    let f = fold(t);
    if let Some((_, code)) = ALIASES.iter().find(|(name, _)| *name == f) {
        return rust_iso3166::from_alpha2(code).map(|c| (c.alpha2, false));
    }
    rust_iso3166::ALL
        .iter()
        .find(|c| {
            let full = fold(c.name);
            full == f || full.split(" (").next().is_some_and(|short| short == f)
        })
        .map(|c| (c.alpha2, false))
}

/// The English ISO short name of an alpha-2 code.
pub fn country_name(alpha2: &str) -> Option<&'static str> {
    rust_iso3166::from_alpha2(alpha2).map(|c| c.name)
}

/// True when `code` is an assigned ISO 3166-1 alpha-2 code (uppercase).
pub fn is_country_code(code: &str) -> bool {
    rust_iso3166::from_alpha2(code).is_some_and(|c| c.alpha2 == code)
}

/// A state or province resolved against ISO 3166-2 for the given country: the subdivision's name
/// and the code after the hyphen (`US-WA` → `WA`). `None` when it does not resolve.
pub fn resolve_state(country: &str, input: &str) -> Option<(&'static str, &'static str)> {
    let t = input.trim();
    if t.is_empty() || t.chars().count() > 100 {
        return None;
    }
    let subs: &'static [rust_iso3166::iso3166_2::Subdivision] =
        rust_iso3166::iso3166_2::SUBDIVISION_COUNTRY_MAP.get(country)?;
    let upper = t.to_uppercase();
    let wanted_code = if upper.starts_with(&format!("{country}-")) {
        upper.clone()
    } else {
        format!("{country}-{upper}")
    };
    let f = fold(t);
    subs.iter()
        .find(|s| s.code == wanted_code)
        .or_else(|| subs.iter().find(|s| fold(s.name) == f))
        .map(|s| (s.name, s.region_code))
}

/// An IANA time zone name, validated by `chrono-tz`. Invalid names give `None`.
pub fn time_zone(input: &str) -> Option<String> {
    let t = input.trim();
    if t.is_empty() || t.len() > 64 {
        return None;
    }
    t.parse::<Tz>().ok().map(|tz| tz.name().to_owned())
}

/// "City, State, Country", skipping empty parts (Clearbit's `location` style).
pub fn location(city: Option<&str>, state: Option<&str>, country: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = [city, state, country]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_resolve_from_codes_names_and_aliases() {
        assert_eq!(resolve_country("us"), Some(("US", true)));
        assert_eq!(resolve_country("USA"), Some(("US", false)));
        assert_eq!(resolve_country("United States"), Some(("US", false)));
        assert_eq!(
            resolve_country("United States of America"),
            Some(("US", false))
        );
        assert_eq!(resolve_country("Bolivia"), Some(("BO", false)));
        assert_eq!(resolve_country("germany"), Some(("DE", false)));
        assert_eq!(resolve_country("Atlantis"), None);
        assert_eq!(resolve_country("XX"), None);
        assert_eq!(country_name("BR"), Some("Brazil"));
    }

    #[test]
    fn states_resolve_by_code_or_name_within_the_country() {
        assert_eq!(resolve_state("US", "WA"), Some(("Washington", "WA")));
        assert_eq!(
            resolve_state("US", "washington"),
            Some(("Washington", "WA"))
        );
        assert_eq!(resolve_state("US", "US-TX"), Some(("Texas", "TX")));
        assert_eq!(resolve_state("DE", "Bayern"), Some(("Bayern", "BY")));
        assert_eq!(resolve_state("US", "Narnia"), None);
    }

    #[test]
    fn time_zones_are_validated() {
        assert_eq!(
            time_zone("America/Chicago").as_deref(),
            Some("America/Chicago")
        );
        assert_eq!(time_zone("Mars/Olympus"), None);
        assert_eq!(time_zone("Pacific Standard Time"), None);
    }

    #[test]
    fn location_skips_empty_parts() {
        assert_eq!(
            location(Some("Austin"), None, Some("US")).as_deref(),
            Some("Austin, US")
        );
        assert_eq!(location(None, Some(" "), None), None);
    }
}
