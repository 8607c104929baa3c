//! Automatic profiles: first sign-in creates one, later sign-ins find it; traits per provider
//! kind; the admin API; SQLite and PostgreSQL; a database outage.

use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, Kind};
use crate::pg::TestDatabase;

const ADMIN_KEY: &str = "admin-key-for-tests";

fn admin_toml() -> String {
    format!(
        "[admin]\napi_key_hashes = [\"{}\"]\n",
        hex::encode(Sha256::digest(ADMIN_KEY.as_bytes()))
    )
}

async fn first_then_second_sign_in(options: AppOptions) {
    let app = spawn_app_with(options).await;
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, first) = app.me().await;
    let user_id = first["user_id"].as_str().unwrap().to_string();
    assert_eq!(
        uuid::Uuid::parse_str(&user_id).unwrap().get_version_num(),
        4,
        "{first}"
    );
    assert_eq!(first["created_at_source"], "first_seen");
    assert_eq!(first["identities"].as_array().unwrap().len(), 1);

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let app2 = app.another_browser();
    assert_eq!(
        app2.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, second) = app2.me().await;
    assert_eq!(
        second["user_id"],
        user_id.as_str(),
        "the same person keeps the same user_id"
    );
    assert_eq!(
        second["created_at"], first["created_at"],
        "created_at never moves"
    );
    assert!(
        second["last_sign_in_at"].as_str().unwrap() > first["last_sign_in_at"].as_str().unwrap()
    );
    assert_eq!(app.store.profile_count().await.unwrap(), 1);
}

#[tokio::test]
async fn first_sign_in_creates_the_profile_and_later_ones_find_it_on_sqlite() {
    first_then_second_sign_in(AppOptions::default()).await;
}

#[tokio::test]
async fn first_sign_in_creates_the_profile_and_later_ones_find_it_on_postgres() {
    let db = TestDatabase::create().await;
    first_then_second_sign_in(AppOptions {
        database_url: Some(db.url.clone()),
        ..Default::default()
    })
    .await;
}

/// Okta gives an account's creation time only through the Users API (org authorization
/// server, `okta.users.read.self`); the test provider serves `/api/v1/users/me` as Okta does.
#[tokio::test]
async fn okta_users_api_created_is_the_account_creation_time() {
    let app = spawn_app(Kind::OktaOrg).await;
    assert_eq!(
        app.sign_in("okta-user", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, me) = app.me().await;
    assert_eq!(me["created_at_source"], "provider", "{me}");
    assert_eq!(me["created_at"], "2022-02-07T15:04:11.000Z", "{me}");
    // Without the address and phone scopes the claims have no city or phone; the Users API
    // record fills them.
    assert_eq!(me["traits"]["enrichment_city"], "Austin", "{me}");
    assert_eq!(
        me["provenance"]["enrichment_city"]["source"], "users_api:/profile/city",
        "{me}"
    );
    assert_eq!(me["traits"]["enrichment_phone"][0], "+15125550143", "{me}");

    // A person the Users API does not know (404), in another browser: the sign-in still
    // succeeds, on the claims, with the first sign-in as the creation time.
    let other = app.another_browser();
    assert_eq!(
        other.sign_in("generic", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, me) = other.me().await;
    assert_eq!(me["created_at_source"], "first_seen", "{me}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("identify_bridge_users_api_failures_total") && l.contains("okta-org")
        ),
        "the failed Users API call is counted"
    );
    assert_eq!(me["traits"]["enrichment_full_name"], "Alex Morgan", "{me}");
}

#[tokio::test]
async fn a_custom_okta_server_without_the_users_api_falls_back_to_the_first_sign_in() {
    let app = spawn_app(Kind::Okta).await;
    assert_eq!(
        app.sign_in("okta-user", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, me) = app.me().await;
    assert_eq!(me["created_at_source"], "first_seen", "{me}");
}

/// The traits each provider kind yields through the test provider, as /me shows them.
#[tokio::test]
async fn each_provider_kind_yields_the_promised_traits() {
    type Case<'a> = (Kind, &'a str, &'a [(&'a str, Value)]);
    let cases: [Case; 4] = [
        (
            Kind::Google,
            "google-workspace",
            &[
                ("enrichment_email_provider", "Google Workspace".into()),
                ("enrichment_employment_domain", "acme.io".into()),
                ("enrichment_first_name", "Marcus".into()),
                ("enrichment_full_name", "Marcus Chen".into()),
            ],
        ),
        (
            Kind::Okta,
            "okta-user",
            &[
                ("enrichment_employment_title", "VP, Sales Operations".into()),
                ("enrichment_employment_name", "Globex Corp".into()),
                ("enrichment_employment_seniority", "executive".into()),
                ("enrichment_city", "Austin".into()),
                ("enrichment_state_code", "TX".into()),
                ("enrichment_country_code", "US".into()),
                ("enrichment_time_zone", "America/Chicago".into()),
                ("enrichment_phone", serde_json::json!(["+15125550143"])),
                (
                    "enrichment_location",
                    "Austin, Texas, United States of America".into(),
                ),
            ],
        ),
        (
            Kind::Microsoft,
            "microsoft-work",
            &[
                ("enrichment_email_provider", "Microsoft 365".into()),
                ("enrichment_country_code", "US".into()),
                ("enrichment_first_name", "Jane".into()),
            ],
        ),
        (
            Kind::Oidc,
            "generic",
            &[("enrichment_city", "London".into())],
        ),
    ];
    for (kind, hint, expected) in cases {
        let app = spawn_app(kind).await;
        assert_eq!(
            app.sign_in(hint, None).await.status(),
            StatusCode::SEE_OTHER
        );
        let (_, me) = app.me().await;
        for (name, value) in expected {
            assert_eq!(
                &me["traits"][name], value,
                "{kind:?} {name}: {}",
                me["traits"]
            );
            assert!(
                me["provenance"][name]["source"].is_string(),
                "{kind:?} {name} lacks provenance"
            );
        }
        assert!(me["traits"]["enrichment_active_at"].is_string());
        assert!(
            me["traits"].as_object().unwrap().values().all(|v| v != ""),
            "no empty strings: {}",
            me["traits"]
        );
    }
}

#[tokio::test]
async fn the_admin_api_shows_and_erases_a_user() {
    let app = spawn_app_with(AppOptions {
        extra_toml: admin_toml(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let user_id = app.me().await.1["user_id"].as_str().unwrap().to_string();
    let path = format!("/api/users/{user_id}");

    let anonymous = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["error_code"], "UNAUTHORIZED");
    let wrong = app
        .client
        .get(app.url(&path))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let found = app
        .client
        .get(app.url(&path))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), StatusCode::OK);
    let body: Value = found.json().await.unwrap();
    assert_eq!(body["data"]["user_id"], user_id.as_str());
    assert_eq!(body["data"]["identities"][0]["provider"], "google");
    assert_eq!(body["data"]["traits"]["enrichment_email_provider"], "Gmail");

    let deleted = app
        .client
        .delete(app.url(&path))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = app
        .client
        .get(app.url(&path))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["error_code"], "NOT_FOUND");
    assert_eq!(
        app.me().await.0,
        StatusCode::UNAUTHORIZED,
        "erasure ends the user's sessions"
    );
    assert_eq!(app.store.profile_count().await.unwrap(), 0);

    let unknown = app
        .client
        .delete(app.url("/api/users/nobody"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_database_outage_fails_the_sign_in_with_a_503_page_and_writes_nothing() {
    let db = TestDatabase::create().await;
    let app = spawn_app_with(AppOptions {
        database_url: Some(db.url.clone()),
        ..Default::default()
    })
    .await;
    // Start the sign-in while the database is up (the session lives there too).
    let callback = app.start_sign_in("login_hint=google-consumer").await;
    db.take_down().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"]["ready"], false, "{body}");
    let response = app.client.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.text().await.unwrap();
    assert!(body.contains("temporarily unavailable"), "{body}");
    db.bring_up().await;
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::OK,
        "ready again once the database is back"
    );
    assert_eq!(
        app.store.profile_count().await.unwrap(),
        0,
        "no partial profile"
    );
    // And the service recovers.
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.store.profile_count().await.unwrap(), 1);
}

#[tokio::test]
async fn traits_set_through_the_identify_api_survive_the_next_sign_in() {
    let key = "identify-key-for-tests";
    let extra = format!(
        "[identify_api]\nrequire = [\"key\"]\napi_key_hashes = [\"{}\"]\n",
        hex::encode(Sha256::digest(key.as_bytes()))
    );
    let app = spawn_app_with(AppOptions {
        extra_toml: extra,
        ..Default::default()
    })
    .await;
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let user_id = app.me().await.1["user_id"].as_str().unwrap().to_string();
    let response = app
        .client
        .post(app.url("/api/identify"))
        .header("KEY", key)
        .json(&serde_json::json!({"user_id": user_id, "traits": {"plan": "pro"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, me) = app.me().await;
    assert_eq!(me["traits"]["plan"], "pro", "{me}");
    assert_eq!(me["traits"]["enrichment_email_provider"], "Gmail");
}

#[tokio::test]
async fn the_users_commands_show_and_erase_a_profile() {
    let app = spawn_app(Kind::Google).await;
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let user_id = app.me().await.1["user_id"].as_str().unwrap().to_string();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_identify-bridge"))
            .args(args)
            .arg("--config")
            .arg(&app.config_path)
            .output()
            .unwrap()
    };
    let shown = run(&["users", "get", &user_id]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let user: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(user["identities"][0]["provider"], "google");
    let erased = run(&["users", "delete", &user_id]);
    assert!(erased.status.success());
    assert_eq!(
        run(&["users", "get", &user_id]).status.code(),
        Some(2),
        "unknown users exit with 2"
    );
    assert_eq!(app.store.profile_count().await.unwrap(), 0);
}
