//! Table-driven tests of `map_traits` with realistic claim sets, mapping overrides, and a
//! property test that arbitrary claims never panic and always give valid output.

use chrono::{TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::*;

/// The kinds as their files under `providers/` set their rules (`Quirks::trait_rules`).
#[derive(Debug, Clone, Copy)]
enum TestKind {
    Google,
    Microsoft,
    Okta,
    Oidc,
}

impl TestKind {
    fn rules(self) -> KindRules {
        KindRules {
            workspace_hd: matches!(self, TestKind::Google),
            entra: matches!(self, TestKind::Microsoft),
        }
    }
}

const ACTIVE: &str = "2026-01-01T00:00:00.123Z";

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(123)
}

/// Graph's answer as these tests write it; the traits read it as [`ApiData`].
struct GraphProfile {
    me: Map<String, Value>,
    organization: Option<Map<String, Value>>,
}

fn api<'a>(
    graph: Option<&'a GraphProfile>,
    users_api: Option<&'a Map<String, Value>>,
) -> ApiData<'a> {
    ApiData {
        graph_me: graph.map(|g| &g.me),
        graph_organization: graph.and_then(|g| g.organization.as_ref()),
        users_api,
        graph_groups: None,
    }
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("test claims are an object")
}

fn run(
    kind: TestKind,
    claims: Value,
    graph: Option<&GraphProfile>,
    mapping: &TraitMapping,
) -> MappedTraits {
    let claims = obj(claims);
    map_traits(&MappingInput {
        rules: kind.rules(),
        claims: &claims,
        api: api(graph, None),
        mapping,
        signed_in_at: at(),
    })
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn contoso_graph() -> GraphProfile {
    GraphProfile {
        me: obj(json!({
            "id": "c0a8e2f1-55d2-4c3b-9e7a-1f2e3d4c5b6a", "displayName": "Jane Doe", "givenName": "Jane",
            "surname": "Doe", "mail": "jane.doe@contoso.com", "userPrincipalName": "jane.doe@contoso.com",
            "jobTitle": "Director of Product Marketing", "companyName": "Contoso Ltd", "department": "Marketing",
            "officeLocation": "SEA-42/3110", "mobilePhone": "+1 206 266 1000", "businessPhones": ["+1 425 882 8080"],
            "city": "Seattle", "state": "WA", "country": "United States", "usageLocation": "US",
            "preferredLanguage": "en-US", "createdDateTime": "2019-11-04T17:22:31Z"
        })),
        organization: Some(obj(json!({
            "id": "4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b", "displayName": "Contoso",
            "verifiedDomains": [{"name": "contoso.com", "isDefault": true}, {"name": "contoso.onmicrosoft.com"}]
        }))),
    }
}

fn microsoft_work_claims() -> Value {
    json!({ "ver": "2.0", "iss": "https://login.microsoftonline.com/4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b/v2.0",
      "aud": "6731de76-14a6-49ae-97bc-6eba6914391e", "iat": 1767225600, "nbf": 1767225600, "exp": 1767229500,
      "sub": "kX2wQ4d9hVb7-3mNqT0rL5sUeYzA1cF8gJ6iKoPjWn0", "tid": "4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b",
      "oid": "c0a8e2f1-55d2-4c3b-9e7a-1f2e3d4c5b6a", "name": "Jane Doe",
      "preferred_username": "jane.doe@contoso.com", "email": "jane.doe@contoso.com",
      "given_name": "Jane", "family_name": "Doe", "xms_edov": true, "ctry": "US",
      "picture": "https://graph.microsoft.com/v1.0/me/photo/$value" })
}

fn okta_userinfo() -> Value {
    json!({ "sub": "00u1a2b3c4D5e6F7g8h9", "name": "Priya Natarajan", "given_name": "Priya",
      "family_name": "Natarajan", "nickname": "Pri", "preferred_username": "priya@globex.com",
      "zoneinfo": "America/Chicago", "locale": "en-US", "updated_at": 1767100000,
      "email": "priya@globex.com", "email_verified": true,
      "address": { "street_address": "500 Congress Ave", "locality": "Austin", "region": "TX",
                   "postal_code": "78701", "country": "US" },
      "phone_number": "+1 (512) 974-2000" })
}

fn okta_thin_traits() -> TraitSet {
    TraitSet {
        enrichment_first_name: s("Priya"),
        enrichment_last_name: s("Natarajan"),
        enrichment_full_name: s("Priya Natarajan"),
        enrichment_email_provider: s("Custom domain"),
        enrichment_phone: Some(vec!["+15129742000".into()]),
        enrichment_city: s("Austin"),
        enrichment_state: s("Texas"),
        enrichment_state_code: s("TX"),
        enrichment_time_zone: s("America/Chicago"),
        enrichment_location: s("Austin, Texas, United States of America"),
        enrichment_country: s("United States of America"),
        enrichment_country_code: s("US"),
        enrichment_employment_domain: s("globex.com"),
        enrichment_active_at: s(ACTIVE),
        ..Default::default()
    }
}

#[test]
fn realistic_claim_sets_give_the_documented_traits() {
    let none = TraitMapping::new();
    let graph = contoso_graph();
    let mut okta_custom = okta_userinfo();
    for (k, v) in [
        ("title", json!("VP, Sales Operations")),
        ("department", json!("Revenue")),
        ("organization", json!("Globex Corp")),
        ("mobilePhone", json!("512-974-2200")),
        (
            "profileUrl",
            json!("https://www.linkedin.com/in/priya-natarajan/"),
        ),
        ("website", json!("https://github.com/priyan")),
    ] {
        okta_custom[k] = v;
    }
    let cases: Vec<(&str, TestKind, Value, Option<&GraphProfile>, TraitSet)> = vec![
        (
            "google consumer",
            TestKind::Google,
            json!({ "iss": "https://accounts.google.com", "sub": "110248495921238986420",
                "email": "ana.souza@gmail.com", "email_verified": true, "name": "Ana Souza",
                "given_name": "Ana", "family_name": "Souza",
                "picture": "https://lh3.googleusercontent.com/a/ACg8ocKx3=s96-c", "iat": 1767225600 }),
            None,
            TraitSet {
                enrichment_first_name: s("Ana"),
                enrichment_last_name: s("Souza"),
                enrichment_full_name: s("Ana Souza"),
                enrichment_avatar: s("https://lh3.googleusercontent.com/a/ACg8ocKx3=s96-c"),
                enrichment_email_provider: s("Gmail"),
                enrichment_active_at: s(ACTIVE),
                ..Default::default()
            },
        ),
        (
            "google workspace",
            TestKind::Google,
            json!({ "sub": "110248495921238986420", "name": "Ana Souza", "given_name": "Ana",
                "family_name": "Souza", "picture": "https://lh3.googleusercontent.com/a/ACg8ocKx3=s96-c",
                "email": "ana.souza@acme.io", "email_verified": true, "hd": "acme.io" }),
            None,
            TraitSet {
                enrichment_first_name: s("Ana"),
                enrichment_last_name: s("Souza"),
                enrichment_full_name: s("Ana Souza"),
                enrichment_avatar: s("https://lh3.googleusercontent.com/a/ACg8ocKx3=s96-c"),
                enrichment_email_provider: s("Google Workspace"),
                enrichment_employment_domain: s("acme.io"),
                enrichment_active_at: s(ACTIVE),
                ..Default::default()
            },
        ),
        (
            "microsoft work account without graph",
            TestKind::Microsoft,
            microsoft_work_claims(),
            None,
            TraitSet {
                enrichment_first_name: s("Jane"),
                enrichment_last_name: s("Doe"),
                enrichment_full_name: s("Jane Doe"),
                enrichment_email_provider: s("Microsoft 365"),
                enrichment_location: s("United States of America"),
                enrichment_country: s("United States of America"),
                enrichment_country_code: s("US"),
                enrichment_employment_domain: s("contoso.com"),
                enrichment_active_at: s(ACTIVE),
                ..Default::default()
            },
        ),
        (
            "microsoft work account with graph",
            TestKind::Microsoft,
            microsoft_work_claims(),
            Some(&graph),
            TraitSet {
                enrichment_first_name: s("Jane"),
                enrichment_last_name: s("Doe"),
                enrichment_full_name: s("Jane Doe"),
                enrichment_email_provider: s("Microsoft 365"),
                enrichment_phone: Some(vec!["+12062661000".into(), "+14258828080".into()]),
                enrichment_city: s("Seattle"),
                enrichment_state: s("Washington"),
                enrichment_state_code: s("WA"),
                enrichment_location: s("Seattle, Washington, United States of America"),
                enrichment_country: s("United States of America"),
                enrichment_country_code: s("US"),
                enrichment_employment_domain: s("contoso.com"),
                enrichment_employment_name: s("Contoso Ltd"),
                enrichment_employment_role: s("marketing"),
                enrichment_employment_seniority: s("director"),
                enrichment_employment_sub_role: s("product_marketing"),
                enrichment_employment_title: s("Director of Product Marketing"),
                enrichment_active_at: s(ACTIVE),
                ..Default::default()
            },
        ),
        (
            "microsoft personal account",
            TestKind::Microsoft,
            json!({ "ver": "2.0", "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
                "sub": "AAAAAAAAAAAAAAAAAAAAAPmX3kq9", "oid": "00000000-0000-0000-5e1a-2b3c4d5e6f70",
                "name": "Sam Lee", "preferred_username": "sam.lee@outlook.com", "email": "sam.lee@outlook.com" }),
            None,
            TraitSet {
                enrichment_first_name: s("Sam"),
                enrichment_last_name: s("Lee"),
                enrichment_full_name: s("Sam Lee"),
                enrichment_email_provider: s("Outlook"),
                enrichment_active_at: s(ACTIVE),
                ..Default::default()
            },
        ),
        (
            "okta org server",
            TestKind::Okta,
            okta_userinfo(),
            None,
            okta_thin_traits(),
        ),
        (
            "okta custom server with profile claims",
            TestKind::Okta,
            okta_custom,
            None,
            TraitSet {
                enrichment_phone: Some(vec!["+15129742000".into(), "+15129742200".into()]),
                enrichment_employment_name: s("Globex Corp"),
                enrichment_employment_title: s("VP, Sales Operations"),
                enrichment_employment_role: s("sales"),
                enrichment_employment_sub_role: s("sales_operations"),
                enrichment_employment_seniority: s("executive"),
                enrichment_linkedin_handle: s("priya-natarajan"),
                enrichment_github_handle: s("priyan"),
                ..okta_thin_traits()
            },
        ),
        (
            "generic provider with address and phone",
            TestKind::Oidc,
            json!({ "sub": "248289761001", "name": "Max Mustermann", "email": "max@beispiel-gmbh.de",
                "address": { "formatted": "Unter den Linden 1, Berlin", "locality": "Berlin",
                             "region": "Berlin", "country": "Germany" },
                "phone_number": "030 901820", "phone_number_verified": true,
                "zoneinfo": "Europe/Berlin", "profile": "https://twitter.com/maxmuster",
                "picture": "javascript:alert(1)" }),
            None,
            TraitSet {
                enrichment_first_name: s("Max"),
                enrichment_last_name: s("Mustermann"),
                enrichment_full_name: s("Max Mustermann"),
                enrichment_email_provider: s("Custom domain"),
                enrichment_phone: Some(vec!["+4930901820".into()]),
                enrichment_city: s("Berlin"),
                enrichment_state: s("Berlin"),
                enrichment_state_code: s("BE"),
                enrichment_time_zone: s("Europe/Berlin"),
                enrichment_location: s("Berlin, Berlin, Germany"),
                enrichment_country: s("Germany"),
                enrichment_country_code: s("DE"),
                enrichment_employment_domain: s("beispiel-gmbh.de"),
                enrichment_twitter_handle: s("maxmuster"),
                enrichment_active_at: s(ACTIVE),
                ..Default::default()
            },
        ),
    ];
    for (name, kind, claims, graph, want) in cases {
        let got = run(kind, claims, graph, &none);
        assert_eq!(got.traits, want, "case {name}");
        let set: Vec<&str> = TraitSet::NAMES
            .iter()
            .copied()
            .filter(|n| got.traits.get(n).is_some())
            .collect();
        let with_source: Vec<&str> = got.provenance.keys().map(String::as_str).collect();
        let mut set_sorted = set.clone();
        set_sorted.sort_unstable();
        assert_eq!(
            set_sorted, with_source,
            "case {name}: provenance covers exactly the set traits"
        );
    }
}

#[test]
fn provenance_tells_given_from_derived() {
    let graph = contoso_graph();
    let got = run(
        TestKind::Microsoft,
        microsoft_work_claims(),
        Some(&graph),
        &TraitMapping::new(),
    );
    let p = |n: &str| {
        got.provenance
            .get(n)
            .cloned()
            .map(|s| (s.source, s.verified))
    };
    assert_eq!(
        p("enrichment_first_name"),
        Some(("claims:/given_name".into(), true))
    );
    assert_eq!(
        p("enrichment_employment_title"),
        Some(("graph:/me/jobTitle".into(), true))
    );
    assert_eq!(
        p("enrichment_country_code"),
        Some(("graph:/me/usageLocation".into(), true))
    );
    assert_eq!(
        p("enrichment_country"),
        Some(("derived:country_code→country".into(), false))
    );
    assert_eq!(
        p("enrichment_employment_domain"),
        Some(("graph:/organization/verifiedDomains".into(), true))
    );
    assert_eq!(
        p("enrichment_active_at"),
        Some(("bridge:sign_in_time".into(), true))
    );

    let personal = run(
        TestKind::Microsoft,
        json!({"tid": MSA_TENANT_ID, "name": "Sam Lee"}),
        None,
        &TraitMapping::new(),
    );
    let src = &personal.provenance["enrichment_first_name"];
    assert_eq!(
        (src.source.as_str(), src.verified),
        ("derived:name→first_name", false)
    );
}

#[test]
fn microsoft_email_on_an_unverified_domain_is_a_custom_domain() {
    let mut graph = contoso_graph();
    graph.organization = Some(obj(
        json!({"displayName": "Contoso", "verifiedDomains": [{"name": "other.com"}]}),
    ));
    let got = run(
        TestKind::Microsoft,
        microsoft_work_claims(),
        Some(&graph),
        &TraitMapping::new(),
    );
    assert_eq!(
        got.traits.enrichment_email_provider.as_deref(),
        Some("Custom domain")
    );
    assert_eq!(
        got.traits.enrichment_employment_domain.as_deref(),
        Some("contoso.com")
    );
    assert!(!got.provenance["enrichment_employment_domain"].verified);

    let mut claims = microsoft_work_claims();
    claims["xms_edov"] = json!(false);
    let got = run(TestKind::Microsoft, claims, None, &TraitMapping::new());
    assert_eq!(
        got.traits.enrichment_email_provider.as_deref(),
        Some("Custom domain")
    );
}

#[test]
fn bad_claims_are_skipped_or_trimmed() {
    let huge = "A".repeat(50 * 1024);
    let got = run(
        TestKind::Okta,
        json!({ "name": 42, "given_name": ["x"], "family_name": "  <b>Doe</b>\u{7}  ",
            "address": "1 Main St, Springfield", "phone_number": "not a phone",
            "zoneinfo": "Mars/Olympus", "country": "Atlantis", "title": huge,
            "email": "doe@@", "picture": "https://example.com/a.png",
            "status": "ACTIVE", "statusChanged": "2025-01-01T00:00:00Z", "profile": 7 }),
        None,
        &TraitMapping::new(),
    );
    let title = "A".repeat(sanitize::MAX_TEXT_CHARS);
    assert_eq!(
        got.traits,
        TraitSet {
            enrichment_last_name: s("<b>Doe</b>"),
            enrichment_full_name: s("<b>Doe</b>"),
            enrichment_avatar: s("https://example.com/a.png"),
            enrichment_employment_title: s(&title),
            enrichment_active_at: s(ACTIVE),
            ..Default::default()
        }
    );
}

/// The Users API's `/api/v1/users/me` answer for the same person (providers.md §3.3).
fn okta_user_record() -> Map<String, Value> {
    obj(json!({ "id": "00u1a2b3c4D5e6F7g8h9", "status": "ACTIVE",
      "created": "2022-02-07T15:04:11.000Z", "activated": "2022-02-07T15:05:02.000Z",
      "statusChanged": "2022-02-07T15:05:02.000Z", "lastLogin": "2026-01-01T00:00:00.000Z",
      "profile": { "login": "priya@globex.com", "email": "priya@globex.com", "firstName": "Priya",
        "lastName": "Natarajan", "title": "VP, Sales Operations", "department": "Revenue",
        "organization": "Globex Corp", "mobilePhone": "+1-512-555-0143", "city": "Austin",
        "state": "TX", "countryCode": "US", "timezone": "America/Chicago", "locale": "en_US",
        "profileUrl": "https://www.linkedin.com/in/priya-natarajan" } }))
}

#[test]
fn the_okta_users_api_fills_what_the_org_servers_claims_lack() {
    // The org server's userinfo without address, phone or zone: the Users API record fills
    // them, and the employment traits, with `users_api:` provenance; claims still lead.
    let thin = obj(
        json!({ "sub": "00u1a2b3c4D5e6F7g8h9", "name": "Priya Natarajan",
      "given_name": "Priya", "family_name": "Natarajan", "preferred_username": "priya@globex.com",
      "email": "priya@globex.com", "email_verified": true }),
    );
    let user = okta_user_record();
    let got = map_traits(&MappingInput {
        rules: TestKind::Okta.rules(),
        claims: &thin,
        api: api(None, Some(&user)),
        mapping: &TraitMapping::new(),
        signed_in_at: at(),
    });
    let want = TraitSet {
        enrichment_phone: Some(vec!["+15125550143".into()]),
        enrichment_employment_name: s("Globex Corp"),
        enrichment_employment_title: s("VP, Sales Operations"),
        enrichment_employment_role: s("sales"),
        enrichment_employment_sub_role: s("sales_operations"),
        enrichment_employment_seniority: s("executive"),
        enrichment_linkedin_handle: s("priya-natarajan"),
        ..okta_thin_traits()
    };
    assert_eq!(got.traits, want);
    let source = |t: &str| got.provenance[t].source.clone();
    assert_eq!(source("enrichment_first_name"), "claims:/given_name");
    assert_eq!(source("enrichment_city"), "users_api:/profile/city");
    assert_eq!(
        source("enrichment_employment_title"),
        "users_api:/profile/title"
    );

    let mut suspended = user.clone();
    suspended.insert("status".into(), json!("SUSPENDED"));
    let got = map_traits(&MappingInput {
        api: api(None, Some(&suspended)),
        ..MappingInput {
            rules: TestKind::Okta.rules(),
            claims: &thin,
            api: ApiData::default(),
            mapping: &TraitMapping::new(),
            signed_in_at: at(),
        }
    });
    assert_eq!(
        got.traits.enrichment_inactive_at.as_deref(),
        Some("2022-02-07T15:05:02.000Z")
    );
    assert_eq!(
        got.provenance["enrichment_inactive_at"].source,
        "users_api:/statusChanged"
    );
}

#[test]
fn okta_suspended_account_sets_inactive_at() {
    let got = run(
        TestKind::Okta,
        json!({"status": "SUSPENDED", "statusChanged": "2025-12-27T10:13:20.000Z"}),
        None,
        &TraitMapping::new(),
    );
    assert_eq!(
        got.traits.enrichment_inactive_at.as_deref(),
        Some("2025-12-27T10:13:20.000Z")
    );
}

#[test]
fn configured_mapping_overrides_defaults_first_non_empty_wins() {
    let mapping: TraitMapping = [
        (
            "enrichment_employment_title",
            vec!["/custom/missing", "/custom/job_title"],
        ),
        (
            "enrichment_employment_name",
            vec!["/custom/empty", "/org/name"],
        ),
        ("enrichment_phone", vec!["/custom/phones"]),
        ("enrichment_country_code", vec!["/custom/cc"]),
        ("enrichment_city", vec!["/custom/employee_no"]),
        ("enrichment_github_handle", vec!["/custom/gh"]),
        ("enrichment_time_zone", vec!["/custom/tz"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let mut claims = okta_userinfo();
    claims["title"] = json!("Default Title");
    claims["custom"] = json!({ "job_title": "Staff Software Engineer", "empty": "  ",
        "phones": ["+44 20 7946 0000", 2079460001_i64, "junk"], "cc": "gb",
        "employee_no": 1234, "gh": "https://github.com/octocat", "tz": "Not/AZone" });
    claims["org"] = json!({"name": "Initech"});
    let got = run(TestKind::Okta, claims, None, &mapping);
    let t = &got.traits;
    assert_eq!(
        t.enrichment_employment_title.as_deref(),
        Some("Staff Software Engineer")
    );
    assert_eq!(t.enrichment_employment_role.as_deref(), Some("engineering"));
    assert_eq!(t.enrichment_employment_name.as_deref(), Some("Initech"));
    assert_eq!(t.enrichment_country_code.as_deref(), Some("GB"));
    assert_eq!(t.enrichment_city.as_deref(), Some("1234"));
    assert_eq!(t.enrichment_github_handle.as_deref(), Some("octocat"));
    assert_eq!(
        t.enrichment_time_zone, None,
        "a mapped value is still validated"
    );
    assert_eq!(
        t.enrichment_phone,
        Some(vec!["+442079460000".into(), "+442079460001".into()])
    );
    let src = &got.provenance["enrichment_employment_name"];
    assert_eq!(
        (src.source.as_str(), src.verified),
        ("mapping:/org/name", true)
    );
    // TX is not a subdivision of GB, so the state stays as written and has no code.
    assert_eq!(t.enrichment_state.as_deref(), Some("TX"));
    assert_eq!(t.enrichment_state_code, None);
}

#[test]
fn trait_set_serializes_with_spec_names_and_omits_absent_values() {
    let t = TraitSet {
        enrichment_first_name: s("Ana"),
        enrichment_phone: Some(vec!["+12062661000".into()]),
        ..Default::default()
    };
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(
        v,
        json!({"enrichment_first_name": "Ana", "enrichment_phone": ["+12062661000"]})
    );
    assert_eq!(serde_json::from_value::<TraitSet>(v).unwrap(), t);
    assert_eq!(TraitSet::NAMES.len(), 25);
    assert_eq!(TraitSet::NAMES[0], "enrichment_first_name");
    assert_eq!(TraitSet::NAMES[24], "enrichment_active_at");
    // Every name is a real field: setting it through the name is visible through get().
    let mut all = TraitSet::default();
    for n in TraitSet::NAMES {
        if n != "enrichment_phone" {
            assert!(all.set_string(n, s("x")), "{n}");
        }
    }
    all.enrichment_phone = Some(vec![]);
    let json = serde_json::to_value(&all).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 25);
    assert!(TraitSet::NAMES.iter().all(|n| all.get(n).is_some()));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "given_name",
        "family_name",
        "name",
        "picture",
        "email",
        "hd",
        "tid",
        "xms_edov",
        "ctry",
        "address",
        "locality",
        "region",
        "country",
        "countryCode",
        "city",
        "state",
        "phone_number",
        "mobilePhone",
        "primaryPhone",
        "businessPhones",
        "zoneinfo",
        "timezone",
        "title",
        "jobTitle",
        "department",
        "organization",
        "companyName",
        "profile",
        "website",
        "profileUrl",
        "urls",
        "status",
        "statusChanged",
        "preferred_username",
        "usageLocation",
        "displayName",
        "mail",
        "verifiedDomains",
        "value",
        "created",
    ];
    const STRINGS: &[&str] = &[
        "US",
        "us",
        "USA",
        "Germany",
        "Atlantis",
        "WA",
        "Washington",
        "TX",
        "+1 206 266 1000",
        "030 901820",
        "(206) 266-1000",
        "America/Chicago",
        "Europe/Berlin",
        "Mars/Olympus",
        "https://github.com/octocat",
        "https://x.com/jack",
        "https://www.linkedin.com/in/jd",
        "https://graph.microsoft.com/v1.0/me/photo/$value",
        "a@gmail.com",
        "b@contoso.com",
        "c@x.onmicrosoft.com",
        "contoso.com",
        "SUSPENDED",
        "2020-01-01T00:00:00Z",
        "VP Sales",
        "Chief Technology Officer",
        "9188040d-6c67-4c5b-b112-36a304b66dad",
        "",
        "  \u{0}\u{202e} ",
        "ü",
        "<script>alert(1)</script>",
    ];

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            proptest::sample::select(STRINGS).prop_map(|s| json!(s)),
            ".{0,300}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                object(inner),
            ]
        })
    }

    fn object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            proptest::sample::select(KEYS).prop_map(str::to_owned),
            "[a-z_]{1,8}"
        ];
        proptest::collection::btree_map(key, inner, 0..8)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    fn claims() -> impl Strategy<Value = Map<String, Value>> {
        object(json_value()).prop_map(|v| v.as_object().cloned().unwrap_or_default())
    }

    fn kind() -> impl Strategy<Value = TestKind> {
        proptest::sample::select(vec![
            TestKind::Google,
            TestKind::Microsoft,
            TestKind::Okta,
            TestKind::Oidc,
        ])
    }

    fn mapping() -> impl Strategy<Value = TraitMapping> {
        let ptr = prop_oneof![
            proptest::sample::select(KEYS).prop_map(|k| format!("/{k}")),
            proptest::sample::select(KEYS).prop_map(|k| format!("/address/{k}")),
            Just(String::new()),
        ];
        proptest::collection::btree_map(
            proptest::sample::select(TraitSet::NAMES.to_vec()).prop_map(str::to_owned),
            proptest::collection::vec(ptr, 1..3),
            0..4,
        )
    }

    fn assert_valid(m: &MappedTraits) {
        let t = &m.traits;
        for name in TraitSet::NAMES {
            let Some(v) = t.get(name) else {
                assert!(
                    !m.provenance.contains_key(name),
                    "{name}: provenance without value"
                );
                continue;
            };
            assert!(
                m.provenance.contains_key(name),
                "{name}: value without provenance"
            );
            let cap = if name == "enrichment_avatar" {
                sanitize::MAX_URL_CHARS
            } else {
                sanitize::MAX_TEXT_CHARS
            };
            let strings: Vec<String> = match v {
                Value::String(s) => vec![s],
                Value::Array(a) => a
                    .into_iter()
                    .map(|x| x.as_str().unwrap().to_owned())
                    .collect(),
                other => panic!("{name}: not a string: {other}"),
            };
            for s in strings {
                assert!(!s.is_empty() && s.trim() == s, "{name}: untrimmed {s:?}");
                assert!(s.chars().count() <= cap, "{name}: over the cap");
                assert!(!s.chars().any(char::is_control), "{name}: control char");
            }
        }
        if let Some(c) = &t.enrichment_country_code {
            assert!(geo::is_country_code(c), "country code {c}");
        }
        if let Some(z) = &t.enrichment_time_zone {
            assert!(z.parse::<chrono_tz::Tz>().is_ok(), "time zone {z}");
        }
        for p in t.enrichment_phone.iter().flatten() {
            assert!(phone::is_e164(p), "phone {p}");
        }
        if let Some(p) = &t.enrichment_phone {
            assert!(!p.is_empty());
        }
        // The sign-in time, or a mapped claim that is a time (normalized).
        for at in [&t.enrichment_active_at, &t.enrichment_inactive_at]
            .into_iter()
            .flatten()
        {
            let parsed = chrono::DateTime::parse_from_rfc3339(at).expect("a time");
            assert_eq!(&crate::traits::format_time(parsed.to_utc()), at);
        }
        let mapped_active = m
            .provenance
            .get("enrichment_active_at")
            .is_some_and(|p| p.source != "bridge:sign_in_time");
        if !mapped_active {
            assert_eq!(t.enrichment_active_at.as_deref(), Some(ACTIVE));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_claims_never_panic_and_give_valid_traits(
            kind in kind(), claims in claims(), me in claims(), org in proptest::option::of(claims()),
            with_graph in any::<bool>(), mapping in mapping(),
        ) {
            let graph = GraphProfile { me, organization: org };
            let input = MappingInput {
                rules: kind.rules(), claims: &claims, api: api(with_graph.then_some(&graph), with_graph.then_some(&graph.me)), mapping: &mapping, signed_in_at: at(),
            };
            let out = map_traits(&input);
            assert_valid(&out);
            let json = serde_json::to_string(&out).unwrap();
            prop_assert!(json.contains("\"traits\""));
        }
    }
}

#[test]
fn custom_traits_keep_their_type_and_say_where_they_came_from() {
    let mapping: TraitMapping = [
        ("groups", vec!["/groups"]),
        ("seats", vec!["/seats"]),
        ("beta", vec!["/beta"]),
        ("org", vec!["/missing", "/org/id"]),
        ("nested", vec!["/org"]),
        ("title", vec!["graph:/me/jobTitle"]),
        ("codes", vec!["/codes"]),
        ("roles", vec!["/roles"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let graph = GraphProfile {
        me: obj(json!({"jobTitle": "CTO"})),
        organization: None,
    };
    let claims = json!({"groups": [" staff ", "", "a\u{0}dmins", {"x": 1}], "seats": 12,
                        "beta": true, "org": {"id": "org-42"}, "codes": [1, 2], "roles": []});
    let got = run(TestKind::Microsoft, claims, Some(&graph), &mapping);
    let custom = &got.traits.custom;
    assert_eq!(custom["groups"], json!(["staff", "admins"]));
    assert_eq!(custom["seats"], json!(12));
    assert_eq!(custom["beta"], json!(true));
    assert_eq!(custom["org"], json!("org-42"));
    assert!(!custom.contains_key("nested"), "objects are skipped");
    assert_eq!(custom["title"], json!("CTO"));
    assert_eq!(custom["codes"], json!(["1", "2"]));
    assert_eq!(
        custom["roles"],
        json!([]),
        "no roles replaces the roles stored before"
    );
    assert_eq!(got.provenance["org"].source, "mapping:/org/id");
    assert_eq!(got.provenance["title"].source, "graph:/me/jobTitle");
    let map = got.traits.to_map();
    assert_eq!(map["groups"], json!(["staff", "admins"]));
    assert!(map.contains_key("enrichment_active_at"));
}

#[test]
fn a_mapped_activity_time_is_used_only_when_it_is_a_time() {
    let mapping = |ptr: &str| -> TraitMapping {
        [("enrichment_active_at".to_owned(), vec![ptr.to_owned()])]
            .into_iter()
            .collect()
    };
    let claims = json!({"tid": 0, "text": "soon", "day": "2025-03-04",
                        "at": "2025-03-04T05:06:07+02:00"});
    for (ptr, want) in [
        ("/tid", ACTIVE),
        ("/text", ACTIVE),
        ("/day", "2025-03-04T00:00:00.000Z"),
        ("/at", "2025-03-04T03:06:07.000Z"),
    ] {
        let got = run(TestKind::Google, claims.clone(), None, &mapping(ptr));
        assert_eq!(
            got.traits.enrichment_active_at.as_deref(),
            Some(want),
            "{ptr}"
        );
    }
}
