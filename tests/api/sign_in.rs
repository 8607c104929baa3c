//! The sign-in flow end to end, through a real OpenID provider over HTTP.

use reqwest::StatusCode;

use crate::helpers::{
    browser, location, spawn_app, spawn_app_with, with_param, AppOptions, Kind, MS_TENANT,
};

async fn assert_error_page(response: reqwest::Response, status: StatusCode, title: &str) {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let body = response.text().await.unwrap();
    assert!(body.contains(title), "page lacks {title:?}: {body}");
    assert!(
        body.contains("request id"),
        "page lacks the request id: {body}"
    );
}

#[tokio::test]
async fn sign_in_with_each_provider_kind_lands_on_return_to_and_me_shows_the_user() {
    for (kind, hint, email) in [
        (Kind::Google, "google-workspace", "marcus.chen@acme.io"),
        (Kind::Okta, "okta-user", "priya@globex.com"),
        (Kind::Microsoft, "microsoft-work", "jane.doe@contoso.com"),
        (Kind::Oidc, "generic", "alex.morgan@example.org"),
    ] {
        let app = spawn_app(kind).await;
        let (status, _) = app.me().await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{kind:?}: signed in before signing in"
        );

        let response = app.sign_in(hint, Some("/welcome?x=1")).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{kind:?}: {}",
            response.text().await.unwrap()
        );
        assert_eq!(location(&response), app.url("/welcome?x=1"), "{kind:?}");

        let (status, me) = app.me().await;
        assert_eq!(status, StatusCode::OK, "{kind:?}: {me}");
        assert_eq!(me["provider"], kind.name(), "{kind:?}: {me}");
        assert!(
            me["subject"].as_str().is_some_and(|s| !s.is_empty()),
            "{kind:?}: {me}"
        );
        if !email.is_empty() {
            assert_eq!(me["email"], email, "{kind:?}: {me}");
        }
        if kind == Kind::Microsoft {
            assert_eq!(
                me["issuer"],
                format!("{}/{MS_TENANT}/v2.0", app.idp.base_url()),
                "{me}"
            );
        }
        let auth = app.get("/auth").await;
        assert_eq!(auth.status(), StatusCode::NO_CONTENT);
        assert!(auth.headers().contains_key("x-identify-user-id"));
    }
}

#[tokio::test]
async fn prompt_is_passed_on_when_it_is_one_a_person_can_ask_for() {
    let app = spawn_app(Kind::Google).await;
    let start = app.get("/login/google?prompt=select_account%20login").await;
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let to = url::Url::parse(&location(&start)).unwrap();
    let prompt: Vec<String> = to
        .query_pairs()
        .filter(|(k, _)| k == "prompt")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(prompt, ["select_account login"]);
    for bad in ["none", "login%20bogus", "%3Cscript%3E"] {
        let refused = app.get(&format!("/login/google?prompt={bad}")).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        let page = refused.text().await.unwrap();
        assert!(page.contains("The prompt parameter takes"), "{bad}: {page}");
    }
}

/// A web app on an allowed origin reads /me from the browser (CORS with credentials); no
/// other origin may.
#[tokio::test]
async fn me_answers_cors_requests_from_allowed_origins_only() {
    let app = spawn_app(Kind::Google).await;
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let me = |origin: &'static str| {
        app.client
            .get(app.url("/me"))
            .header("origin", origin)
            .send()
    };
    let allowed = me("https://app.example.com").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let other = me("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/me"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/me"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn return_to_an_allowed_origin_is_honoured() {
    let app = spawn_app(Kind::Google).await;
    let response = app
        .sign_in("google-consumer", Some("https://app.example.com/home"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "https://app.example.com/home");
}

#[tokio::test]
async fn return_to_attacks_are_refused_with_a_page() {
    let app = spawn_app(Kind::Google).await;
    for attack in [
        "//evil.com",
        "/\\evil.com",
        "https://evil.com/",
        "javascript:alert(1)",
        "/%2F%2Fevil.com",
        "https://app.example.com.evil.com/",
        "\t//evil.com",
    ] {
        let response = app
            .get(&format!(
                "/login/google?return_to={}",
                crate::helpers::urlencode(attack)
            ))
            .await;
        assert_error_page(
            response,
            StatusCode::BAD_REQUEST,
            "This sign-in link is not allowed",
        )
        .await;
    }
}

#[tokio::test]
async fn a_forged_callback_is_refused_and_does_not_break_the_real_one() {
    let app = spawn_app(Kind::Google).await;
    let callback = app.start_sign_in("login_hint=google-consumer").await;
    for forged in ["forged", "x"] {
        let response = app
            .client
            .get(with_param(&callback, "state", forged))
            .send()
            .await
            .unwrap();
        assert_error_page(response, StatusCode::BAD_REQUEST, "no longer valid").await;
    }
    assert_eq!(app.me().await.0, StatusCode::UNAUTHORIZED);
    // The pending sign-in of this browser is untouched: its own callback still works.
    let response = app.client.get(callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.me().await.0, StatusCode::OK);
}

#[tokio::test]
async fn two_tabs_signing_in_at_once_both_succeed() {
    let app = spawn_app(Kind::Google).await;
    let first = app
        .start_sign_in("login_hint=google-consumer&return_to=/one")
        .await;
    let second = app
        .start_sign_in("login_hint=google-consumer&return_to=/two")
        .await;
    let (a, b) = tokio::join!(
        app.client.get(&second).send(),
        app.client.get(&first).send()
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.status(), b.status()),
        (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER)
    );
    assert!(location(&a).ends_with("/two") && location(&b).ends_with("/one"));
    assert_eq!(app.me().await.0, StatusCode::OK);
}

#[tokio::test]
async fn anonymous_login_visits_leave_no_rows() {
    let app = spawn_app(Kind::Google).await;
    for _ in 0..5 {
        let visitor = browser();
        for path in ["/login", "/login/google?login_hint=google-consumer"] {
            let response = visitor.get(app.url(path)).send().await.unwrap();
            assert!(response.status().is_success() || response.status().is_redirection());
        }
    }
    let db = app.config_path.with_file_name("bridge.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for table in ["tower_sessions", "user_session", "login_state", "profile"] {
        let rows: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 0, "{table}");
    }
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let app = spawn_app(Kind::Google).await;
    let callback = app.start_sign_in("login_hint=google-consumer").await;
    let first = app.client.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let replay = app.client.get(&callback).send().await.unwrap();
    assert_error_page(replay, StatusCode::BAD_REQUEST, "no longer valid").await;
}

#[tokio::test]
async fn a_callback_in_another_browser_is_refused() {
    let app = spawn_app(Kind::Google).await;
    let callback = app.start_sign_in("login_hint=google-consumer").await;
    let stranger = crate::harness::client_builder(false).build().unwrap();
    let response = stranger.get(&callback).send().await.unwrap();
    assert_error_page(response, StatusCode::BAD_REQUEST, "no longer valid").await;
}

#[tokio::test]
async fn an_expired_login_is_refused() {
    let app = spawn_app_with(AppOptions {
        login_timeout_secs: 1,
        ..Default::default()
    })
    .await;
    let callback = app.start_sign_in("login_hint=google-consumer").await;
    // Time itself must pass here, not an event: the callback is single-use, so it cannot be
    // polled until it is refused.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let response = app.client.get(callback).send().await.unwrap();
    assert_error_page(response, StatusCode::BAD_REQUEST, "took too long").await;
    assert_eq!(app.me().await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_nonce_mismatch_is_refused() {
    let app = spawn_app(Kind::Google).await;
    app.idp.set_mode(None, Some("attacker-nonce")).await;
    let response = app.sign_in("google-consumer", None).await;
    assert_error_page(response, StatusCode::UNAUTHORIZED, "could not be verified").await;
    assert_eq!(app.me().await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn access_denied_at_the_provider_shows_a_page() {
    let app = spawn_app(Kind::Google).await;
    let response = app.sign_in("deny", None).await;
    assert_error_page(
        response,
        StatusCode::UNAUTHORIZED,
        "Sign-in was not completed",
    )
    .await;
    assert_eq!(app.me().await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_userinfo_subject_mismatch_is_refused() {
    let app = spawn_app(Kind::Okta).await;
    app.idp.set_mode(Some("somebody-else"), None).await;
    let response = app.sign_in("okta-user", None).await;
    assert_error_page(response, StatusCode::UNAUTHORIZED, "could not be verified").await;
    assert_eq!(app.me().await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_signing_key_rotation_is_picked_up_once_and_then_rate_limited() {
    let app = spawn_app(Kind::Google).await;
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    app.idp.rotate_keys().await;
    // An unknown kid: the bridge fetches the keys again and the sign-in works.
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    // A second rotation within the refetch interval is not fetched again.
    app.idp.rotate_keys().await;
    let response = app.sign_in("google-consumer", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_tampered_iss_response_parameter_is_refused() {
    let app = spawn_app(Kind::Google).await;
    let callback = app.start_sign_in("login_hint=google-consumer").await;
    assert!(
        callback.contains("iss="),
        "the IdP sends RFC 9207 iss: {callback}"
    );
    let response = app
        .client
        .get(with_param(&callback, "iss", "https://evil.example"))
        .send()
        .await
        .unwrap();
    assert_error_page(response, StatusCode::BAD_GATEWAY, "gave an error").await;
}

#[tokio::test]
async fn unknown_providers_and_pages_get_404_pages() {
    let app = spawn_app(Kind::Google).await;
    assert_error_page(
        app.get("/login/nope").await,
        StatusCode::NOT_FOUND,
        "Unknown sign-in provider",
    )
    .await;
    assert_error_page(
        app.get("/callback/nope?state=x&code=y").await,
        StatusCode::NOT_FOUND,
        "Unknown",
    )
    .await;
    assert_error_page(
        app.get("/no/such/page").await,
        StatusCode::NOT_FOUND,
        "Page not found",
    )
    .await;
}

#[tokio::test]
async fn the_login_page_lists_the_providers() {
    let app = spawn_app(Kind::Okta).await;
    let response = app.get("/login?return_to=%2Fdash").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains("Continue with Okta"), "{body}");
    assert!(body.contains("/login/okta?return_to="), "{body}");
}

#[tokio::test]
async fn logout_requires_same_origin_and_clears_the_session() {
    let app = spawn_app(Kind::Google).await;
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let cross = app
        .client
        .post(app.url("/logout"))
        .header("origin", "https://evil.com")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.me().await.0,
        StatusCode::OK,
        "a cross-site post must not sign out"
    );

    let same = app
        .client
        .post(app.url("/logout"))
        .header("origin", &app.address)
        .form(&[("return_to", "/login")])
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::SEE_OTHER);
    let target = location(&same);
    assert!(
        target.starts_with(&app.idp.base_url()) && target.contains("post_logout_redirect_uri"),
        "expected the provider's end_session_endpoint: {target}"
    );
    assert_eq!(app.me().await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/auth").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookies_are_http_only_lax_and_the_session_id_changes_at_each_sign_in() {
    let app = spawn_app(Kind::Google).await;
    let login = app.get("/login/google?login_hint=google-consumer").await;
    let pending = login.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/callback/google",
        "Max-Age=660",
    ] {
        assert!(pending.contains(part), "{pending}");
    }
    let session_cookie = |response: &reqwest::Response| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("identify_bridge_session="))
            .expect("a session cookie")
    };
    let first = session_cookie(&app.sign_in("google-consumer", None).await);
    assert!(
        first.contains("HttpOnly") && first.contains("SameSite=Lax"),
        "{first}"
    );
    let second = session_cookie(&app.sign_in("google-consumer", None).await);
    let id = |c: &str| c.split(';').next().unwrap().to_string();
    assert_ne!(
        id(&first),
        id(&second),
        "session id must be cycled at sign-in"
    );
    assert_eq!(app.me().await.0, StatusCode::OK);
}

#[tokio::test]
async fn health_and_readiness_report_providers() {
    let app = spawn_app(Kind::Google).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["provider:google"]["ready"], true, "{body}");
}

/// Rows in `table` of the app's SQLite database.
async fn rows(app: &crate::helpers::TestApp, table: &str) -> i64 {
    let db = app.config_path.with_file_name("bridge.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_oversized_token_answer_is_refused_with_the_provider_error_page() {
    let app = spawn_app(Kind::Google).await;
    // Over the default cap of 256 KiB (`server.max_token_response_bytes`).
    app.idp.set_token_padding(Some(300 * 1024)).await;
    let response = app.sign_in("google-consumer", None).await;
    assert_error_page(response, StatusCode::BAD_GATEWAY, "gave an error").await;
    assert_eq!(app.me().await.0, StatusCode::UNAUTHORIZED);
    for table in ["user_session", "profile"] {
        assert_eq!(rows(&app, table).await, 0, "{table}");
    }
    // The same padding under the cap is read and the sign-in works.
    app.idp.set_token_padding(Some(200 * 1024)).await;
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(rows(&app, "profile").await, 1);
}

#[tokio::test]
async fn a_failing_key_set_is_fetched_at_most_once_per_interval_however_many_unknown_kids() {
    let app = spawn_app(Kind::Google).await;
    app.idp.set_jwks_status(Some(503)).await;
    // From now on ID tokens name a kid the bridge does not know.
    app.idp.rotate_keys().await;
    let before = app.idp.jwks_requests().await;
    // The first unknown kid makes the bridge refetch the keys, which fails.
    let response = app.sign_in("google-consumer", None).await;
    assert_error_page(response, StatusCode::BAD_GATEWAY, "gave an error").await;
    // Later ones within the interval are refused without another request.
    for _ in 0..8 {
        let response = app.sign_in("google-consumer", None).await;
        assert_error_page(response, StatusCode::UNAUTHORIZED, "could not be verified").await;
    }
    assert_eq!(app.idp.jwks_requests().await - before, 1);
    assert_eq!(rows(&app, "profile").await, 0);
}

#[tokio::test]
async fn client_secret_post_is_chosen_when_discovery_lists_only_it() {
    // No `token_auth_method` configured; the provider supports (and its client is registered
    // with) client_secret_post alone, so client_secret_basic would be refused.
    let app = spawn_app_with(AppOptions {
        kind: Kind::Oidc,
        idp_auth_method: Some("client_secret_post"),
        ..Default::default()
    })
    .await;
    let discovery: serde_json::Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        app.idp.issuer
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        discovery["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_post"])
    );
    assert_eq!(
        app.sign_in("generic", None).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.me().await.0, StatusCode::OK);
}

/// `/me` tells a web app whether this sign-in created the profile and when the session ends
/// (the idle expiry or the absolute lifetime, whichever is first).
#[tokio::test]
async fn me_says_whether_the_sign_in_created_the_profile_and_when_the_session_ends() {
    let app = spawn_app_with(AppOptions {
        kind: Kind::Okta,
        session_toml: "idle_timeout_secs = 3600\nmax_lifetime_secs = 600".into(),
        ..Default::default()
    })
    .await;
    let response = app.sign_in("okta-user", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, first) = app.me().await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["first_sign_in"], true, "{first}");
    let signed_in =
        chrono::DateTime::parse_from_rfc3339(first["signed_in_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(first["session_expires_at"].as_str().unwrap())
            .unwrap();
    // The 10-minute lifetime comes before the hour of idle time.
    assert_eq!((expires - signed_in).num_milliseconds(), 600_000, "{first}");

    // The same person again, in another browser: the profile exists, so not a first sign-in.
    let other = app.another_browser();
    let response = other.sign_in("okta-user", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, again) = other.me().await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["user_id"], first["user_id"]);
    assert_eq!(again["first_sign_in"], false, "{again}");
}
