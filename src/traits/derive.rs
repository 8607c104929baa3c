//! Normalisation and derived traits: names, country ↔ code, state code, location, phones,
//! email provider, employment domain, role, social handles and the activity times.

use super::defaults::{Raw, Sourced};
use super::sanitize::{clean, MAX_TEXT_CHARS, MAX_URL_CHARS};
use super::{email, format_time, geo, phone, role, social};
use super::{MappedTraits, MappingInput, TraitSource};

/// Collects the final traits and their provenance; every value passes through [`clean`].
struct Out {
    m: MappedTraits,
}

impl Out {
    fn put(&mut self, name: &str, value: &str, source: String, verified: bool) {
        let cap = if name == "enrichment_avatar" {
            MAX_URL_CHARS
        } else {
            MAX_TEXT_CHARS
        };
        if let Some(v) = clean(value, cap) {
            if self.m.traits.set_string(name, Some(v)) {
                self.m
                    .provenance
                    .insert(name.to_owned(), TraitSource { source, verified });
            }
        }
    }

    fn put_sourced(&mut self, name: &str, v: &Sourced) {
        self.put(name, &v.value, v.source.clone(), v.verified);
    }

    fn derived(&mut self, name: &str, value: &str, rule: &str) {
        self.put(name, value, format!("derived:{rule}"), false);
    }

    fn has(&self, name: &str) -> bool {
        self.m.traits.get(name).is_some()
    }
}

/// Turns the raw values into the final trait set.
pub(super) fn finish(mut raw: Raw, input: &MappingInput) -> MappedTraits {
    let mut out = Out {
        m: MappedTraits::default(),
    };
    let take = |raw: &mut Raw, name: &str| raw.values.remove(name);

    // Names: a missing first/last name is split from the full name (≥ 2 words), marked derived.
    let first = take(&mut raw, "enrichment_first_name");
    let last = take(&mut raw, "enrichment_last_name");
    let full = take(&mut raw, "enrichment_full_name");
    first
        .iter()
        .for_each(|v| out.put_sourced("enrichment_first_name", v));
    last.iter()
        .for_each(|v| out.put_sourced("enrichment_last_name", v));
    if let Some(full) = &full {
        out.put_sourced("enrichment_full_name", full);
        let words: Vec<&str> = full.value.split_whitespace().collect();
        if first.is_none() && last.is_none() && words.len() >= 2 {
            out.derived("enrichment_first_name", words[0], "name→first_name");
            out.derived(
                "enrichment_last_name",
                &words[1..].join(" "),
                "name→last_name",
            );
        }
    } else {
        let joined = [&first, &last]
            .iter()
            .filter_map(|v| v.as_ref().map(|v| v.value.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        out.derived(
            "enrichment_full_name",
            &joined,
            "first_name+last_name→full_name",
        );
    }

    // Avatar: an http(s) URL, but never Microsoft's userinfo picture, which needs a bearer token.
    if let Some(a) = take(&mut raw, "enrichment_avatar") {
        if is_public_image_url(&a.value) {
            out.put_sourced("enrichment_avatar", &a);
        } else {
            tracing::debug!(source = %a.source, "avatar skipped: not a public http(s) URL");
        }
    }

    // Country code: the first candidate that resolves to an ISO 3166-1 alpha-2 code.
    let mut code: Option<&'static str> = None;
    for cand in &raw.countries {
        if let Some((c, direct)) = geo::resolve_country(&cand.value) {
            if direct {
                out.put(
                    "enrichment_country_code",
                    c,
                    cand.source.clone(),
                    cand.verified,
                );
            } else {
                let src = cand
                    .source
                    .trim_start_matches("claims:")
                    .trim_start_matches("graph:");
                out.derived("enrichment_country_code", c, &format!("{src}→country_code"));
            }
            code = Some(c);
            break;
        }
        tracing::debug!(source = %cand.source, "country skipped: not an ISO 3166-1 country");
    }
    let mapped_country =
        take(&mut raw, "enrichment_country").filter(|c| c.source.starts_with("mapping:"));
    take(&mut raw, "enrichment_country_code");
    match (&mapped_country, code.and_then(geo::country_name)) {
        (Some(c), _) => out.put_sourced("enrichment_country", c),
        (None, Some(name)) => out.derived("enrichment_country", name, "country_code→country"),
        (None, None) => {}
    }

    // State: resolved through ISO 3166-2 when the country is known; kept as written otherwise.
    let mapped_state_code = take(&mut raw, "enrichment_state_code");
    if let Some(state) = take(&mut raw, "enrichment_state") {
        match code.and_then(|c| geo::resolve_state(c, &state.value)) {
            Some((name, sub)) => {
                if name.eq_ignore_ascii_case(state.value.trim()) {
                    out.put_sourced("enrichment_state", &state);
                } else {
                    out.derived("enrichment_state", name, "state→iso3166-2");
                }
                out.derived("enrichment_state_code", sub, "state→state_code");
            }
            None => out.put_sourced("enrichment_state", &state),
        }
    }
    if let Some(sc) = mapped_state_code {
        out.put_sourced("enrichment_state_code", &sc);
    }

    // Time zone: IANA names only.
    if let Some(tz) = take(&mut raw, "enrichment_time_zone") {
        match geo::time_zone(&tz.value) {
            Some(name) => out.put("enrichment_time_zone", &name, tz.source, tz.verified),
            None => tracing::debug!(source = %tz.source, "time zone skipped: not an IANA name"),
        }
    }

    if let Some(city) = take(&mut raw, "enrichment_city") {
        out.put_sourced("enrichment_city", &city);
    }
    match take(&mut raw, "enrichment_location") {
        Some(l) => out.put_sourced("enrichment_location", &l),
        None => {
            let t = &out.m.traits;
            if let Some(l) = geo::location(
                t.enrichment_city.as_deref(),
                t.enrichment_state.as_deref(),
                t.enrichment_country.as_deref(),
            ) {
                out.derived("enrichment_location", &l, "city+state+country→location");
            }
        }
    }

    finish_phones(&mut out, &raw.phones, code);
    finish_employment(&mut out, &mut raw);

    // Social handles: mapped values first (a URL or a bare handle), then URL claims.
    let found = social::handles(raw.urls.iter().map(|u| u.value.as_str()));
    for (name, from_urls) in [
        ("enrichment_facebook_handle", found.facebook),
        ("enrichment_github_handle", found.github),
        ("enrichment_linkedin_handle", found.linkedin),
        ("enrichment_twitter_handle", found.twitter),
    ] {
        if let Some(mapped) = take(&mut raw, name) {
            let handle = social::handle_from_url(&mapped.value)
                .map(|(_, h)| h)
                .unwrap_or_else(|| mapped.value.trim_start_matches('@').to_owned());
            out.put(name, &handle, mapped.source, mapped.verified);
        } else if let Some(h) = from_urls {
            let src = raw
                .urls
                .iter()
                .find(|u| social::handle_from_url(&u.value).is_some_and(|(_, x)| x == h));
            let source = src.map_or("claims:/profile".to_owned(), |u| u.source.clone());
            out.put(
                name,
                &h,
                format!("derived:{}→handle", source.trim_start_matches("claims:")),
                false,
            );
        }
    }

    // Times are times: a mapped claim that is not a date or timestamp is not used (the
    // sign-in time then stands for `enrichment_active_at`).
    if let Some(v) = take(&mut raw, "enrichment_inactive_at").and_then(as_time) {
        out.put_sourced("enrichment_inactive_at", &v);
    }
    match take(&mut raw, "enrichment_active_at").and_then(as_time) {
        Some(v) => out.put_sourced("enrichment_active_at", &v),
        None => out.put(
            "enrichment_active_at",
            &format_time(input.signed_in_at),
            "bridge:sign_in_time".into(),
            true,
        ),
    }
    // Anything left is a mapped trait with no special handling (names are all handled above).
    for (name, v) in std::mem::take(&mut raw.values) {
        if !out.has(name) {
            out.put_sourced(name, &v);
        }
    }
    // Custom traits are kept as the mapping read them (already cleaned there).
    for (name, custom) in std::mem::take(&mut raw.custom) {
        out.m.traits.custom.insert(name.clone(), custom.value);
        out.m.provenance.insert(
            name,
            TraitSource {
                source: custom.source,
                verified: true,
            },
        );
    }
    out.m
}

fn is_public_image_url(s: &str) -> bool {
    let Ok(u) = url::Url::parse(s.trim()) else {
        return false;
    };
    matches!(u.scheme(), "http" | "https")
        && u.host_str().is_some_and(|h| {
            let h = h.to_ascii_lowercase();
            h != "graph.microsoft.com" && !h.ends_with(".graph.microsoft.com")
        })
}

fn finish_phones(out: &mut Out, phones: &[Sourced], country: Option<&str>) {
    let mut numbers: Vec<String> = Vec::new();
    let mut sources: Vec<&str> = Vec::new();
    for p in phones.iter().take(20) {
        match phone::normalize(&p.value, country) {
            Some(n) => {
                if !numbers.contains(&n) {
                    numbers.push(n);
                }
                if !sources.contains(&p.source.as_str()) {
                    sources.push(&p.source);
                }
            }
            None => tracing::debug!(source = %p.source, "phone skipped: not a valid number"),
        }
    }
    if !numbers.is_empty() {
        out.m.traits.enrichment_phone = Some(numbers);
        let source = TraitSource {
            source: sources.join(","),
            verified: true,
        };
        out.m.provenance.insert("enrichment_phone".into(), source);
    }
}

/// Email provider, employment domain/name/title and the title-derived role traits.
fn finish_employment(out: &mut Out, raw: &mut Raw) {
    let domain = raw
        .email
        .as_ref()
        .and_then(|e| email::email_domain(&e.value));
    let tenant_verified = |d: &str| {
        raw.verified_domains
            .as_ref()
            .is_some_and(|vd| vd.iter().any(|v| v == d))
    };
    let on_tenant_domain = domain.as_deref().is_some_and(|d| {
        raw.microsoft_work
            && (tenant_verified(d) || (raw.verified_domains.is_none() && raw.xms_edov))
    });

    match raw.values.remove("enrichment_email_provider") {
        Some(v) => out.put_sourced("enrichment_email_provider", &v),
        None => {
            if let Some(d) = &domain {
                let label = email::provider_label(d, raw.google_hd, on_tenant_domain);
                out.derived("enrichment_email_provider", label, "email→email_provider");
            }
        }
    }

    match raw.values.remove("enrichment_employment_domain") {
        Some(v) => {
            let lower = v.value.to_ascii_lowercase();
            out.put("enrichment_employment_domain", &lower, v.source, v.verified);
        }
        None => {
            let not_onmicrosoft = |d: &&String| !d.ends_with(".onmicrosoft.com");
            if let Some(d) = domain
                .as_ref()
                .filter(|d| raw.microsoft_work && tenant_verified(d))
            {
                if not_onmicrosoft(&d) {
                    let src = "graph:/organization/verifiedDomains".to_owned();
                    out.put("enrichment_employment_domain", d, src, true);
                }
            }
            if !out.has("enrichment_employment_domain") {
                let reg = domain
                    .as_deref()
                    .filter(|d| !email::is_free_mail(d) && !d.ends_with(".onmicrosoft.com"))
                    .and_then(email::registrable_domain);
                if let Some(reg) = reg {
                    out.derived(
                        "enrichment_employment_domain",
                        &reg,
                        "email→employment_domain",
                    );
                }
            }
        }
    }

    for name in ["enrichment_employment_name", "enrichment_employment_title"] {
        if let Some(v) = raw.values.remove(name) {
            out.put_sourced(name, &v);
        }
    }

    let title = out.m.traits.enrichment_employment_title.clone();
    let dept = raw.department.as_ref().map(|d| d.value.clone());
    let c = role::classify(title.as_deref(), dept.as_deref());
    let from_title = c.role.is_some() && role::classify(title.as_deref(), None).role.is_some();
    let role_rule = if from_title {
        "title→role"
    } else {
        "department→role"
    };
    for (name, derived, rule) in [
        ("enrichment_employment_role", c.role, role_rule),
        (
            "enrichment_employment_sub_role",
            c.sub_role,
            "title→sub_role",
        ),
        (
            "enrichment_employment_seniority",
            c.seniority,
            "title→seniority",
        ),
    ] {
        match raw.values.remove(name) {
            Some(v) => out.put_sourced(name, &v),
            None => {
                if let Some(d) = derived {
                    out.derived(name, d, rule);
                }
            }
        }
    }
}

/// `v` as a trait time (see [`super::trait_time`]); `None` when it is no date or timestamp.
fn as_time(mut v: Sourced) -> Option<Sourced> {
    v.value = super::trait_time(&v.value)?;
    Some(v)
}
