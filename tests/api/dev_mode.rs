//! `identify-bridge dev`: the development provider, SQLite and the built-in Identify API as the
//! sink, on a temp data directory and a random port. A sign-in over HTTP creates a profile, its
//! identify call reaches the built-in Identify API through the outbox with a client-credentials
//! token, and the dashboard lists it.

use std::time::Duration;

use identify_bridge::config::Settings;
use identify_bridge::startup::Application;
use reqwest::StatusCode;

use crate::helpers::location;

#[tokio::test]
async fn a_dev_sign_in_creates_a_profile_and_its_identify_call_reaches_the_built_in_api() {
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test-signing-key.pem"
        ),
        data.path().join("dev-idp-signing-key.pem"),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = Settings::load_with_env(None, Vec::new()).unwrap();
    let (settings, idp) = identify_bridge::dev::prepare(base, addr, data.path()).unwrap();
    assert!(settings
        .database
        .url
        .expose()
        .contains(&data.path().display().to_string()));
    let app = Application::build_full(settings, listener, Some(idp))
        .await
        .unwrap();
    let store = app.store().clone();
    let stop = app.stop_token();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let url = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    for _ in 0..100 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The bridge sends the browser to its development provider…
    let login = client.get(format!("{url}/login/dev")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let authorize = location(&login);
    assert!(
        authorize.starts_with(&format!("{url}/dev-idp/authorize?")),
        "{authorize}"
    );
    let form = client.get(&authorize).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let page = form.text().await.unwrap();
    assert!(
        page.contains("DEVELOPMENT PROVIDER"),
        "the provider's page says what it is"
    );
    // …where the person picks a persona (the form's hidden fields carry the request).
    let query: Vec<(String, String)> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let mut fields = query.clone();
    fields.push(("action".into(), "persona".into()));
    fields.push(("persona".into(), "marcus".into()));
    let chosen = client
        .post(format!("{url}/dev-idp/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
    let callback = location(&chosen);
    assert!(
        callback.starts_with(&format!("{url}/callback/dev?")),
        "{callback}"
    );
    let done = client.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);

    let me: serde_json::Value = client
        .get(format!("{url}/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = me["user_id"].as_str().unwrap().to_string();
    assert_eq!(
        me["traits"]["enrichment_employment_seniority"], "executive",
        "{me}"
    );

    // The identify call arrives at the built-in Identify API through the outbox.
    let mut received = Vec::new();
    for _ in 0..100 {
        received = store.identify_calls(&user_id).await.unwrap();
        if !received.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if received.is_empty() {
        let dead = store.list_dead(10).await.unwrap();
        let pending = store.messages_for_user(&user_id).await.unwrap();
        panic!("not delivered; dead: {dead:?}; messages: {pending:?}");
    }
    assert_eq!(received.len(), 1, "one identify call for one sign-in");
    let (_, traits, context) = &received[0];
    assert_eq!(traits["email"], me["email"]);
    assert_eq!(
        traits["enrichment_full_name"],
        me["traits"]["enrichment_full_name"]
    );
    assert_eq!(context.as_ref().unwrap()["provider"], "dev");
    // The API commits the call before the sink's answer reaches the worker, so the outbox row is
    // marked delivered a moment after the call is visible: wait for that too.
    let mut stats = Vec::new();
    for _ in 0..100 {
        stats = store.outbox_stats(chrono::Utc::now()).await.unwrap();
        if stats[0].delivered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats[0].delivered, 1, "{stats:?}");
    assert_eq!(stats[0].pending, 0, "{stats:?}");

    let dashboard = client
        .get(format!("{url}/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dashboard.contains(&user_id),
        "the dashboard lists the call and the sign-in"
    );
    assert!(dashboard.contains("Identify calls received by the API"));
    stop.cancel();
}
