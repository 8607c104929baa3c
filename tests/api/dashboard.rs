//! The operator dashboard and its user page, over HTTP with the admin key: sign-ins and
//! failures by reason, links from the lists to a user's page, times for people with the exact
//! time on hover, and a refresh that needs no script.

use reqwest::StatusCode;

use crate::helpers::{spawn_app_with, AppOptions, Kind, TestApp};

const ADMIN_KEY: &str = "dashboard-test-admin-key";

async fn app_with_admin_key() -> TestApp {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(ADMIN_KEY.as_bytes()));
    spawn_app_with(AppOptions {
        kind: Kind::Google,
        extra_toml: format!("[admin]\napi_key_hashes = [\"{hash}\"]\n"),
        ..Default::default()
    })
    .await
}

async fn admin_get(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_dashboard_counts_failures_by_reason_and_links_each_user_to_a_page() {
    let app = app_with_admin_key().await;
    let done = app.sign_in("google-consumer", None).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let (_, me) = app.me().await;
    let user_id = me["user_id"].as_str().unwrap().to_string();
    // A callback nobody started: a failed sign-in with reason state_invalid.
    let forged = app.get("/callback/google?state=forged&code=whatever").await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    let refused = reqwest::get(app.url("/admin")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().contains_key("www-authenticate"));
    let refused = reqwest::get(app.url(&format!("/admin/users/{user_id}")))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let dashboard = admin_get(&app, "/admin").await;
    assert_eq!(dashboard.status(), StatusCode::OK);
    let dashboard = dashboard.text().await.unwrap();
    assert!(dashboard.contains("Sign-ins, last 24 hours"), "{dashboard}");
    assert!(
        dashboard.contains("<code>state_invalid</code>"),
        "{dashboard}"
    );
    let link = format!("href=\"/admin/users/{user_id}\"");
    assert!(dashboard.contains(&link), "the sign-in links to its user");
    // A time for people, with the exact time on hover.
    assert!(dashboard.contains("<time datetime=\""), "{dashboard}");
    assert!(dashboard.contains(" UTC\">just now</time>"), "{dashboard}");
    // Refresh without script: a link, and an optional automatic reload.
    assert!(dashboard.contains("href=\"/admin?refresh=30\""));
    assert!(!dashboard.contains("http-equiv=\"refresh\""));
    let reloading = admin_get(&app, "/admin?refresh=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        reloading.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "at least 5 s between reloads"
    );

    let user = admin_get(&app, &format!("/admin/users/{user_id}")).await;
    assert_eq!(user.status(), StatusCode::OK);
    let user = user.text().await.unwrap();
    for expected in [
        "ana.souza@gmail.com",
        "Identities",
        "enrichment_email_provider",
        "Identify calls received",
        "Deliveries to sinks",
        "href=\"/admin\"",
    ] {
        assert!(user.contains(expected), "the user page lacks {expected:?}");
    }
    // Provenance: where each trait came from.
    assert!(user.contains("data-label=\"Source\"><code>"), "{user}");

    let unknown = admin_get(&app, "/admin/users/no-such-user").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
