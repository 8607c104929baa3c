//! A provider that cannot be reached at start-up does not stop the server.

use identify_bridge::config::Settings;
use identify_bridge::startup::Application;
use reqwest::StatusCode;

#[tokio::test]
async fn an_unreachable_provider_leaves_the_server_up_and_not_ready() {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\npublic_url = \"{app}\"\n[database]\nurl = \"sqlite://{db}\"\n[session]\nstore = \"memory\"\n[[providers]]\nname = \"corp\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{dead_port}\"\nclient_id = \"a\"\nclient_secret = \"b\"\n",
            db = dir.path().join("b.db").display()
        ),
    )
    .unwrap();
    let settings = Settings::load_with_env(Some(&path), Vec::new()).unwrap();
    let application = Application::build_with_listener(settings, listener)
        .await
        .unwrap();
    let stop = application.stop_token();
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    assert_eq!(
        client
            .get(format!("{app}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let ready = client.get(format!("{app}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["provider:corp"]["ready"], false, "{body}");
    assert!(
        body["checks"]["provider:corp"]["error"]
            .as_str()
            .unwrap()
            .contains("discovery"),
        "{body}"
    );

    let login = client
        .get(format!("{app}/login/corp"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(login
        .text()
        .await
        .unwrap()
        .contains("Sign-in provider unavailable"));
    let page = client
        .get(format!("{app}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("temporarily unavailable"), "{page}");
    stop.cancel();
}

#[tokio::test]
async fn readiness_follows_a_provider_that_goes_down_and_comes_back() {
    use crate::idp::TestIdp;
    let config = serde_json::json!({"clients": []});
    let idp = TestIdp::start_with_config(config.clone()).await;
    let idp_port = idp.port;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\npublic_url = \"{app}\"\nprovider_check_secs = 1\n[session]\nstore = \"memory\"\n[database]\nurl = \"sqlite://{}\"\n[[providers]]\nname = \"corp\"\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"a\"\nclient_secret = \"b\"\n",
            dir.path().join("b.db").display(),
            idp.issuer
        ),
    )
    .unwrap();
    let settings = Settings::load_with_env(Some(&path), Vec::new()).unwrap();
    let application = Application::build_with_listener(settings, listener)
        .await
        .unwrap();
    assert!(
        application
            .providers()
            .wait_ready(std::time::Duration::from_secs(10))
            .await
    );
    let stop = application.stop_token();
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let ready = |expected: StatusCode| {
        let client = client.clone();
        let app = app.clone();
        async move {
            for _ in 0..80 {
                if client
                    .get(format!("{app}/readyz"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    == expected
                {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            false
        }
    };
    assert!(ready(StatusCode::OK).await);
    drop(idp); // the provider goes away
    assert!(
        ready(StatusCode::SERVICE_UNAVAILABLE).await,
        "readyz did not notice the provider is gone"
    );
    let body: serde_json::Value = client
        .get(format!("{app}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["checks"]["provider:corp"]["ready"], false, "{body}");
    let _idp = TestIdp::start_on_port(config, idp_port).await; // and comes back
    assert!(ready(StatusCode::OK).await, "readyz did not recover");
    stop.cancel();
}
