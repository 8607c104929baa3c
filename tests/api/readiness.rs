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
            "[server]\npublic_url = \"{app}\"\n[session]\nstore = \"memory\"\n[[providers]]\nname = \"corp\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{dead_port}\"\nclient_id = \"a\"\nclient_secret = \"b\"\n"
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
