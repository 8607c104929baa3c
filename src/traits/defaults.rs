//! Default claim sources per provider kind (providers.md §5): the raw values before the
//! configured mapping and the derivations.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::pointer::lookup;
use super::sanitize::{self, MAX_TEXT_CHARS, MAX_URL_CHARS};
use super::{email, MappingInput, MSA_TENANT_ID};

/// One candidate value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sourced {
    pub value: String,
    pub source: String,
    pub verified: bool,
}

impl Sourced {
    pub fn given(value: String, source: String) -> Self {
        Sourced {
            value,
            source,
            verified: true,
        }
    }
}

/// Raw values gathered from claims and Graph, keyed by trait name where one trait is meant.
#[derive(Debug, Default)]
pub(super) struct Raw {
    /// String traits given directly by a source (names, avatar, city, state, time zone, …).
    pub values: BTreeMap<&'static str, Sourced>,
    /// Phone numbers as written, in order.
    pub phones: Vec<Sourced>,
    /// Country codes or names, best first; the first that resolves wins.
    pub countries: Vec<Sourced>,
    /// The address used for the email provider and the employment domain.
    pub email: Option<Sourced>,
    /// Department text, the fallback for role and sub-role.
    pub department: Option<Sourced>,
    /// Profile and website URLs, read for social handles.
    pub urls: Vec<Sourced>,
    /// Google `hd` present.
    pub google_hd: bool,
    /// Microsoft work/school account (tenant id present and not the MSA tenant).
    pub microsoft_work: bool,
    /// Lowercase Graph `verifiedDomains` names of the tenant, when Graph's organization was read.
    pub verified_domains: Option<Vec<String>>,
    /// Microsoft `xms_edov` (email domain owner verified) is true.
    pub xms_edov: bool,
    /// Custom traits (names outside the 25) the configured mapping found, by name.
    pub custom: BTreeMap<String, Custom>,
}

/// One custom trait's value (a string, number, boolean or list of strings) and its source.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Custom {
    pub value: Value,
    pub source: String,
}

/// Reads one claim as text. Numbers are not accepted: a number is never a name or a city.
pub(super) fn claim_text(claims: &Map<String, Value>, ptr: &str, cap: usize) -> Option<Sourced> {
    let v = lookup(claims, ptr)?;
    let what = format!("claims:{ptr}");
    sanitize::text(v, cap, false, &what).map(|s| Sourced::given(s, what))
}

/// Reads one field of the Okta Users API's user object (`/profile/title`, `/created`).
fn users_api_text(user: Option<&Map<String, Value>>, ptr: &str) -> Option<Sourced> {
    let v = lookup(user?, ptr)?;
    let what = format!("users_api:{ptr}");
    sanitize::text(v, MAX_TEXT_CHARS, false, &what).map(|s| Sourced::given(s, what))
}

fn graph_text(map: Option<&Map<String, Value>>, area: &str, key: &str) -> Option<Sourced> {
    let v = map?.get(key)?;
    let what = format!("graph:/{area}/{key}");
    sanitize::text(v, MAX_TEXT_CHARS, false, &what).map(|s| Sourced::given(s, what))
}

/// The first present candidate.
fn first(candidates: impl IntoIterator<Item = Option<Sourced>>) -> Option<Sourced> {
    candidates.into_iter().flatten().next()
}

/// Collects the default raw values for the provider kind.
pub(super) fn gather(input: &MappingInput) -> Raw {
    let c = input.claims;
    let me = input.api.graph_me;
    let org = input.api.graph_organization;
    let t = |ptr: &str| claim_text(c, ptr, MAX_TEXT_CHARS);
    let g = |key: &str| graph_text(me, "me", key);
    let okta_user = input.api.users_api;
    let u = |ptr: &str| users_api_text(okta_user, ptr);
    let mut raw = Raw::default();

    if let Some(a) = c.get("address").filter(|a| !a.is_object()) {
        tracing::debug!(
            kind = sanitize::kind_of(a),
            "claim address skipped: not an object"
        );
    }

    let mut put = |name: &'static str, v: Option<Sourced>| {
        if let Some(v) = v {
            raw.values.insert(name, v);
        }
    };
    put(
        "enrichment_first_name",
        first([t("/given_name"), g("givenName"), u("/profile/firstName")]),
    );
    put(
        "enrichment_last_name",
        first([t("/family_name"), g("surname"), u("/profile/lastName")]),
    );
    put(
        "enrichment_full_name",
        first([t("/name"), g("displayName"), u("/profile/displayName")]),
    );
    put(
        "enrichment_avatar",
        claim_text(c, "/picture", MAX_URL_CHARS),
    );
    put(
        "enrichment_city",
        first([
            t("/address/locality"),
            g("city"),
            t("/city"),
            u("/profile/city"),
        ]),
    );
    put(
        "enrichment_state",
        first([
            t("/address/region"),
            g("state"),
            t("/state"),
            u("/profile/state"),
        ]),
    );
    put(
        "enrichment_time_zone",
        first([t("/zoneinfo"), t("/timezone"), u("/profile/timezone")]),
    );
    put(
        "enrichment_employment_title",
        first([t("/title"), g("jobTitle"), u("/profile/title")]),
    );
    let org_name = org.and_then(|o| graph_text(Some(o), "organization", "displayName"));
    put(
        "enrichment_employment_name",
        first([
            g("companyName"),
            org_name,
            t("/organization"),
            u("/profile/organization"),
        ]),
    );
    put(
        "enrichment_inactive_at",
        inactive_at(c, "claims").or_else(|| okta_user.and_then(|o| inactive_at(o, "users_api"))),
    );

    // Phones: OIDC `phone_number`, Graph mobile and business phones, Okta profile claims.
    for ptr in ["/phone_number", "/mobilePhone", "/primaryPhone"] {
        if let Some(v) = lookup(c, ptr) {
            let what = format!("claims:{ptr}");
            if let Some(s) = sanitize::text(v, MAX_TEXT_CHARS, true, &what) {
                raw.phones.push(Sourced::given(s, what));
            }
        }
    }
    for ptr in ["/profile/mobilePhone", "/profile/primaryPhone"] {
        if let Some(v) = okta_user.and_then(|o| lookup(o, ptr)) {
            let what = format!("users_api:{ptr}");
            if let Some(s) = sanitize::text(v, MAX_TEXT_CHARS, true, &what) {
                raw.phones.push(Sourced::given(s, what));
            }
        }
    }
    raw.phones.extend(g("mobilePhone"));
    if let Some(list) = me.and_then(|m| m.get("businessPhones")) {
        for v in list.as_array().into_iter().flatten() {
            let what = "graph:/me/businessPhones".to_owned();
            if let Some(s) = sanitize::text(v, MAX_TEXT_CHARS, true, &what) {
                raw.phones.push(Sourced::given(s, what));
            }
        }
    }

    // Country: Graph's usageLocation is a clean ISO code, so it leads for Microsoft.
    if input.rules.entra {
        raw.countries.extend(
            [g("usageLocation"), t("/ctry"), g("country")]
                .into_iter()
                .flatten(),
        );
    }
    raw.countries.extend(
        [
            t("/address/country"),
            t("/countryCode"),
            t("/country"),
            u("/profile/countryCode"),
        ]
        .into_iter()
        .flatten(),
    );

    raw.email = first([
        t("/email"),
        g("mail"),
        g("userPrincipalName"),
        t("/preferred_username"),
    ])
    .filter(|e| email::email_domain(&e.value).is_some());
    raw.department = first([t("/department"), g("department"), u("/profile/department")]);

    for ptr in ["/profile", "/website", "/profileUrl"] {
        raw.urls.extend(claim_text(c, ptr, MAX_URL_CHARS));
    }
    if let Some(v) = okta_user.and_then(|o| lookup(o, "/profile/profileUrl")) {
        let what = "users_api:/profile/profileUrl";
        if let Some(s) = sanitize::text(v, MAX_URL_CHARS, false, what) {
            raw.urls.push(Sourced::given(s, what.into()));
        }
    }
    match c.get("urls") {
        Some(Value::Array(items)) => {
            for item in items.iter().take(50) {
                let v = item.get("value").unwrap_or(item);
                if let Some(s) = sanitize::text(v, MAX_URL_CHARS, false, "claims:/urls") {
                    raw.urls.push(Sourced::given(s, "claims:/urls".into()));
                }
            }
        }
        Some(v) => raw
            .urls
            .extend(claim_text(c, "/urls", MAX_URL_CHARS).filter(|_| v.is_string())),
        None => {}
    }

    // Provider signals for the email provider and the employment domain.
    if input.rules.workspace_hd {
        if let Some(hd) = t("/hd").filter(|hd| email::registrable_domain(&hd.value).is_some()) {
            raw.google_hd = true;
            let domain = Sourced::given(hd.value.to_ascii_lowercase(), hd.source);
            raw.values.insert("enrichment_employment_domain", domain);
        }
    }
    if input.rules.entra {
        let tid = c.get("tid").and_then(Value::as_str).map(str::trim);
        raw.microsoft_work =
            tid.is_some_and(|t| !t.is_empty() && !t.eq_ignore_ascii_case(MSA_TENANT_ID));
        raw.xms_edov = sanitize::truthy(c.get("xms_edov"));
        raw.verified_domains = org.map(verified_domains);
    }
    raw
}

/// Graph `/organization` `verifiedDomains[].name`, lowercased.
fn verified_domains(org: &Map<String, Value>) -> Vec<String> {
    org.get("verifiedDomains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(1000)
        .filter_map(|d| d.get("name")?.as_str())
        .map(|n| n.trim().to_ascii_lowercase())
        .collect()
}

/// Okta Users API `status` SUSPENDED or DEPROVISIONED: the account is disabled since
/// `statusChanged`. No provider offers this as an ID-token claim; `area` names where `c` came
/// from (`claims` or `users_api`).
fn inactive_at(c: &Map<String, Value>, area: &str) -> Option<Sourced> {
    let status = c.get("status")?.as_str()?.trim();
    let disabled = ["SUSPENDED", "DEPROVISIONED"]
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s));
    if !disabled {
        return None;
    }
    let changed = c.get("statusChanged")?.as_str()?;
    Some(Sourced::given(
        super::trait_time(changed)?,
        format!("{area}:/statusChanged"),
    ))
}
