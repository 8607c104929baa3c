//! Custom traits, access policies and `/auth` headers, through the real test provider: claims
//! it releases (groups, an org id, a plan) become traits that reach every sink format under each
//! sink's exclude and hash rules; each policy refuses and allows; `/auth` passes chosen values
//! on in headers that a hostile claim cannot break.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{browser, spawn_app_with, AppOptions, Kind, TestApp};
use crate::outbox::sink_toml;
use crate::sink::TestSink;

const WAIT: Duration = Duration::from_secs(15);

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn custom_traits_reach_every_sink_format_under_its_exclude_and_hash_rules() {
    let (seed, ts, seg, hook) = (
        TestSink::start().await,
        TestSink::start().await,
        TestSink::start().await,
        TestSink::start().await,
    );
    let toml = "[providers.traits]\ngroups = \"/groups\"\norg_id = [\"/org\", \"/org_id\"]\n\
                seats = \"/seats\"\nplan = \"/plan\"\n\n"
        .to_string()
        + &sink_toml("seed", "seed", &seed.url, "exclude_traits = [\"seats\"]")
        + &sink_toml(
            "ts",
            "thrivestack",
            &ts.url,
            "hash_traits = [\"org_id\", \"groups\"]",
        )
        + &sink_toml("seg", "segment", &seg.url, "api_key = \"write-key\"")
        + &sink_toml(
            "hook",
            "webhook",
            &hook.url,
            "exclude_traits = [\"groups\"]",
        );
    let app = spawn_app_with(AppOptions {
        kind: Kind::Oidc,
        extra_toml: toml,
        ..Default::default()
    })
    .await;
    app.idp
        .set_claims(
            "dana@acme.io",
            json!({"groups": ["staff", "admins"], "org_id": "org-42", "seats": 12,
                   "plan": {"not": "a scalar"}}),
        )
        .await;
    assert_eq!(
        app.sign_in("dana@acme.io", None).await.status(),
        StatusCode::SEE_OTHER
    );

    let (_, me) = app.me().await;
    assert_eq!(me["traits"]["groups"], json!(["staff", "admins"]), "{me}");
    assert_eq!(me["traits"]["org_id"], "org-42");
    assert_eq!(me["traits"]["seats"], 12);
    assert!(
        me["traits"].get("plan").is_none(),
        "an object is no trait: {me}"
    );
    assert_eq!(me["provenance"]["groups"]["source"], "mapping:/groups");
    assert_eq!(me["provenance"]["org_id"]["source"], "mapping:/org_id");
    assert_eq!(me["provenance"]["org_id"]["verified"], true);

    let page = app.get("/profile").await.text().await.unwrap();
    assert!(page.contains("<code>groups</code>") && page.contains("staff, admins"));
    assert!(page.contains("<code>mapping:/org_id</code>"));

    let seed_traits = &seed.wait_for(1, WAIT).await[0].body["traits"];
    assert_eq!(seed_traits["groups"], json!(["staff", "admins"]));
    assert_eq!(seed_traits["org_id"], "org-42");
    assert!(
        seed_traits.get("seats").is_none(),
        "excluded: {seed_traits}"
    );
    assert_eq!(seed_traits["enrichment_first_name"], "Dana");

    let ts_traits = &ts.wait_for(1, WAIT).await[0].body[0]["traits"];
    assert_eq!(ts_traits["org_id"], sha256("org-42"));
    assert_eq!(
        ts_traits["groups"],
        json!([sha256("staff"), sha256("admins")])
    );
    assert_eq!(ts_traits["seats"], 12);

    let seg_traits = &seg.wait_for(1, WAIT).await[0].body["traits"];
    assert_eq!(seg_traits["groups"], json!(["staff", "admins"]));
    assert_eq!(seg_traits["seats"], 12);

    let hook_traits = &hook.wait_for(1, WAIT).await[0].body["traits"];
    assert_eq!(hook_traits["org_id"], "org-42");
    assert_eq!(hook_traits["seats"], 12);
    assert!(
        hook_traits.get("groups").is_none(),
        "excluded: {hook_traits}"
    );
}

#[tokio::test]
async fn a_sink_rule_naming_no_trait_stops_start_up_with_the_custom_names_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.toml");
    let load_error = |toml: &str| {
        std::fs::write(&path, toml).unwrap();
        identify_bridge::config::Settings::load_with_env(
            Some(&path),
            Vec::new(),
            &identify_bridge::providers::KINDS,
        )
        .unwrap_err()
        .to_string()
    };
    let e = load_error(
        "[[providers]]\nname = \"g\"\nkind = \"google\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
         [providers.traits]\ngroups = \"/groups\"\nenrichment_grups = \"/groups\"\n",
    );
    assert!(
        e.contains("traits.enrichment_grups") && e.contains("without that prefix"),
        "{e}"
    );
    let e = load_error(
        "[[providers]]\nname = \"g\"\nkind = \"google\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
         [providers.traits]\ngroups = \"/groups\"\n\
         [[sinks]]\nname = \"s\"\nformat = \"seed\"\nurl = \"http://127.0.0.1:1/\"\nhash_traits = [\"grups\"]\n",
    );
    assert!(e.contains("hash_traits[0]") && e.contains("groups"), "{e}");
}

/// A Graph stand-in that lists the user's groups (two groups and a directory role, on two
/// pages) and counts the calls.
async fn graph_with_groups() -> String {
    fn authorized(h: &HeaderMap) -> bool {
        h.get("authorization")
            .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "))
    }
    let app = axum::Router::new()
        .route(
            "/v1.0/me",
            get(|| async { axum::Json(json!({"id": "c0a8", "jobTitle": "CTO"})) }),
        )
        .route(
            "/v1.0/me/transitiveMemberOf",
            get(
                |h: HeaderMap, axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                    let host = h
                        .get("host")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    if !authorized(&h) {
                        return axum::http::StatusCode::UNAUTHORIZED.into_response();
                    }
                    if q.as_deref().is_some_and(|q| q.contains("page=2")) {
                        return axum::Json(json!({"value": [
                            {"@odata.type": "#microsoft.graph.group", "id": "grp-2"}
                        ]}))
                        .into_response();
                    }
                    axum::Json(json!({
                        "value": [
                            {"@odata.type": "#microsoft.graph.group", "id": "grp-1"},
                            {"@odata.type": "#microsoft.graph.directoryRole", "id": "role-1"}
                        ],
                        "@odata.nextLink": format!("http://{host}/v1.0/me/transitiveMemberOf?page=2")
                    }))
                    .into_response()
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1.0/")
}

const MS_WORK_SUB: &str = "kX2wQ4d9hVb7-3mNqT0rL5sUeYzA1cF8gJ6iKoPjWn0";

#[tokio::test]
async fn an_entra_group_overage_is_read_from_graph_when_graph_is_on() {
    let graph_url = graph_with_groups().await;
    let app = spawn_app_with(AppOptions {
        kind: Kind::Microsoft,
        extra_toml: format!(
            "graph = true\ngraph_url = \"{graph_url}\"\nrequired_groups = [\"grp-2\"]\n\
             [providers.traits]\ngroups = [\"/groups\", \"graph:/groups\"]\n"
        ),
        ..Default::default()
    })
    .await;
    app.idp
        .set_claims(MS_WORK_SUB, json!({"hasgroups": true}))
        .await;
    let response = app.sign_in("microsoft-work", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, me) = app.me().await;
    assert_eq!(me["traits"]["groups"], json!(["grp-1", "grp-2"]), "{me}");
    assert_eq!(me["provenance"]["groups"]["source"], "graph:/groups");
}

#[tokio::test]
async fn an_entra_group_overage_without_graph_is_said_plainly_and_refuses_a_group_rule() {
    let app = spawn_app_with(AppOptions {
        kind: Kind::Microsoft,
        extra_toml: "[providers.traits]\ngroups = \"/groups\"\n".into(),
        ..Default::default()
    })
    .await;
    app.idp
        .set_claims(MS_WORK_SUB, json!({"hasgroups": true}))
        .await;
    assert_eq!(
        app.sign_in("microsoft-work", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, me) = app.me().await;
    assert!(me["traits"].get("groups").is_none(), "{me}");
    let note = me["provenance"]["groups"]["source"].as_str().unwrap();
    assert!(
        note.starts_with("notice:group overage") && note.contains("graph = true"),
        "{me}"
    );
    let page = app.get("/profile").await.text().await.unwrap();
    assert!(page.contains("notice:group overage"), "{page}");

    let strict = spawn_app_with(AppOptions {
        kind: Kind::Microsoft,
        extra_toml: "required_groups = [\"grp-1\"]\n".into(),
        ..Default::default()
    })
    .await;
    strict
        .idp
        .set_claims(MS_WORK_SUB, json!({"hasgroups": true}))
        .await;
    let refused = strict.sign_in("microsoft-work", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await.unwrap();
    assert!(page.contains("too many groups"), "{page}");
}

/// A refused sign-in in a browser of its own: a 403 page saying `words`, nothing about the
/// person written, the refusal counted by `reason`. Returns the page.
async fn assert_refused(app: &TestApp, hint: &str, words: &str, reason: &str) -> String {
    let browser = browser();
    let response = app.sign_in_with(&browser, hint, None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{hint}");
    let page = response.text().await.unwrap();
    assert!(page.contains("This account cannot sign in here"), "{page}");
    assert!(page.contains(words), "{hint}: {page}");
    let me = browser.get(app.url("/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "{hint}: no session");
    assert_eq!(
        app.store.profile_count().await.unwrap(),
        0,
        "{hint}: no profile"
    );
    let stats = app.store.outbox_stats(chrono::Utc::now()).await.unwrap();
    assert!(
        stats.iter().all(|s| s.pending + s.delivered + s.dead == 0),
        "{hint}: no outbox row: {stats:?}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("identify_bridge_sign_ins_total")
                && l.contains(&format!("reason=\"{reason}\""))
                && l.contains("outcome=\"failure\"")),
        "{reason} counted"
    );
    page
}

/// A sign-in in a browser of its own that is let through.
async fn assert_allowed(app: &TestApp, hint: &str) {
    let response = app.sign_in_with(&browser(), hint, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{hint}");
}

#[tokio::test]
async fn a_google_workspace_domain_rule_refuses_personal_and_other_accounts() {
    let sink = TestSink::start().await;
    let app = spawn_app_with(AppOptions {
        kind: Kind::Google,
        extra_toml: "allowed_hosted_domains = [\"ACME.io\"]\n".to_string()
            + &sink_toml("seed", "seed", &sink.url, ""),
        ..Default::default()
    })
    .await;
    assert_refused(
        &app,
        "google-consumer",
        "personal Google account",
        "refused_hosted_domain",
    )
    .await;
    app.idp
        .set_claims("108843371902846513377", json!({"hd": "globex.com"}))
        .await;
    assert_refused(
        &app,
        "google-workspace",
        "an account of globex.com",
        "refused_hosted_domain",
    )
    .await;
    app.idp
        .set_claims("108843371902846513377", json!({"hd": "acme.io"}))
        .await;
    assert_allowed(&app, "google-workspace").await;
    assert_eq!(app.store.profile_count().await.unwrap(), 1);
}

#[tokio::test]
async fn an_email_domain_rule_allows_only_confirmed_addresses_at_its_domains() {
    let app = spawn_app_with(AppOptions {
        kind: Kind::Oidc,
        extra_toml: "allowed_email_domains = [\"acme.io\", \"acme.dev\"]\n".into(),
        ..Default::default()
    })
    .await;
    assert_refused(
        &app,
        "eve@evil.example",
        "an email address at acme.io or acme.dev. You signed in with an address at evil.example",
        "refused_email_domain",
    )
    .await;
    app.idp
        .set_claims("mallory@acme.io", json!({"email_verified": false}))
        .await;
    assert_refused(
        &app,
        "mallory@acme.io",
        "no confirmed email",
        "refused_email_domain",
    )
    .await;
    assert_allowed(&app, "dana@ACME.dev").await;
}

#[tokio::test]
async fn a_group_rule_allows_members_of_any_listed_group() {
    let app = spawn_app_with(AppOptions {
        kind: Kind::Oidc,
        extra_toml: "required_groups = [\"staff\", \"contractors\"]\n".into(),
        ..Default::default()
    })
    .await;
    app.idp
        .set_claims("eve@acme.io", json!({"groups": ["guests"]}))
        .await;
    let page = assert_refused(
        &app,
        "eve@acme.io",
        "not in any of them",
        "refused_required_groups",
    )
    .await;
    assert!(!page.contains("staff"), "group names are not shown: {page}");
    app.idp
        .set_claims("dana@acme.io", json!({"groups": ["contractors"]}))
        .await;
    assert_allowed(&app, "dana@acme.io").await;
}

#[tokio::test]
async fn auth_passes_the_chosen_headers_with_hostile_values_made_safe() {
    let app = spawn_app_with(AppOptions {
        kind: Kind::Oidc,
        extra_toml: "[providers.traits]\ngroups = \"/groups\"\norg_id = \"/org_id\"\n\n\
                     [auth_request]\nuser_id_header = \"X-Auth-Request-User\"\n\
                     email_header = \"X-Auth-Request-Email\"\n\
                     name_header = \"X-Auth-Request-Name\"\n\
                     [auth_request.trait_headers]\ngroups = \"X-Auth-Request-Groups\"\n\
                     org_id = \"X-Auth-Request-Org\"\n\
                     enrichment_employment_title = \"X-Auth-Request-Title\"\n"
            .into(),
        ..Default::default()
    })
    .await;
    let hint = "jose@acme.io";
    app.idp
        .set_claims(
            hint,
            json!({
                "email": "jose@acme.io\r\nX-Auth-Request-User: admin",
                "name": "José Núñez",
                "groups": ["staff", "r&d, east", "a\r\nSet-Cookie: s=1"],
                "org_id": "org\u{0}-42",
            }),
        )
        .await;
    assert_eq!(
        app.sign_in(hint, None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, me) = app.me().await;

    let auth = app.get("/auth").await;
    assert_eq!(auth.status(), StatusCode::NO_CONTENT);
    let h = |name: &str| -> Vec<String> {
        auth.headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(h("x-auth-request-user"), [me["user_id"].as_str().unwrap()]);
    // An email with CR/LF in it is no address: the sign-in keeps none, so none is passed on
    // (header values with CR/LF are made safe below: the groups).
    assert!(
        h("x-auth-request-email").is_empty(),
        "{:?}",
        h("x-auth-request-email")
    );
    assert!(me["email"].is_null(), "{me}");
    assert_eq!(h("x-auth-request-name"), ["Jos%C3%A9 N%C3%BA%C3%B1ez"]);
    assert_eq!(
        h("x-auth-request-groups"),
        ["staff,r&d%2C east,aSet-Cookie: s=1"]
    );
    assert_eq!(h("x-auth-request-org"), ["org-42"]);
    assert!(h("x-auth-request-title").is_empty(), "no value, no header");
    assert!(auth.headers().get("set-cookie").is_none());
    assert!(
        auth.headers().get("x-identify-user-id").is_none(),
        "renamed"
    );

    let signed_out = browser().get(app.url("/auth")).send().await.unwrap();
    assert_eq!(signed_out.status(), StatusCode::UNAUTHORIZED);
    assert!(signed_out.headers().get("x-auth-request-user").is_none());
}

#[test]
fn the_traits_preview_shows_custom_traits_and_an_unread_group_overage() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        "[[providers]]\nname = \"entra\"\nkind = \"microsoft\"\ntenant = \"organizations\"\n\
         client_id = \"c\"\nclient_secret = \"s\"\ngraph = true\n\
         [providers.traits]\ngroups = [\"/groups\", \"graph:/groups\"]\n\
         department = \"graph:/me/department\"\ncost_center = \"/extn/costCenter\"\n",
    )
    .unwrap();
    let preview = |input: serde_json::Value| -> serde_json::Value {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_identify-bridge"))
            .args([
                "traits",
                "--config",
                config.to_str().unwrap(),
                "--provider",
                "entra",
            ])
            .env_remove("IDENTIFY_BRIDGE_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let claims = json!({"sub": "s", "oid": "o", "tid": "t", "hasgroups": true,
                        "extn": {"costCenter": 4711}});
    let read = preview(
        json!({"claims": claims, "graph": {"me": {"department": "R&D"},
                              "groups": ["g-1", "g-2"]}}),
    );
    assert_eq!(read["traits"]["groups"], json!(["g-1", "g-2"]), "{read}");
    assert_eq!(read["provenance"]["groups"]["source"], "graph:/groups");
    assert_eq!(read["traits"]["department"], "R&D");
    assert_eq!(read["traits"]["cost_center"], 4711);
    let unread = preview(claims);
    assert!(unread["traits"].get("groups").is_none(), "{unread}");
    assert!(unread["provenance"]["groups"]["source"]
        .as_str()
        .unwrap()
        .starts_with("notice:group overage"));
}
