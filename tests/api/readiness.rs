//! A provider that cannot be reached at start-up does not stop the server.

use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::{client_builder, poll, AppBuilder};

#[tokio::test]
async fn an_unreachable_provider_leaves_the_server_up_and_not_ready() {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let running = AppBuilder::new()
        .toml(&format!(
            "[session]\nstore = \"memory\"\n[[providers]]\nname = \"corp\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{dead_port}\"\nclient_id = \"a\"\nclient_secret = \"b\"\n"
        ))
        .no_wait()
        .start()
        .await;
    let app = running.address.clone();
    let client = client_builder(false).build().unwrap();
    // Once the first discovery attempt has failed, /readyz says why.
    let body = poll(
        "readyz names the failed discovery",
        Duration::from_secs(10),
        || async {
            let body: serde_json::Value = client
                .get(format!("{app}/readyz"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            body["checks"]["provider:corp"]["error"]
                .is_string()
                .then_some(body)
        },
    )
    .await;
    assert_eq!(body["checks"]["provider:corp"]["ready"], false, "{body}");

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
}

#[tokio::test]
async fn readiness_follows_a_provider_that_goes_down_and_comes_back() {
    use crate::idp::TestIdp;
    let config = serde_json::json!({"clients": []});
    let idp = TestIdp::start_with_config(config.clone()).await;
    let idp_port = idp.port;
    let running = AppBuilder::new()
        .toml(&format!(
            "[server]\nprovider_check_secs = 1\n[session]\nstore = \"memory\"\n[[providers]]\nname = \"corp\"\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"a\"\nclient_secret = \"b\"\n",
            idp.issuer
        ))
        .start()
        .await;
    let app = running.address.clone();
    let client = client_builder(false).build().unwrap();
    let ready = |what: &'static str, expected: StatusCode| {
        let (client, app) = (client.clone(), app.clone());
        poll(what, Duration::from_secs(8), move || {
            let (client, app) = (client.clone(), app.clone());
            async move {
                let status = client
                    .get(format!("{app}/readyz"))
                    .send()
                    .await
                    .ok()?
                    .status();
                (status == expected).then_some(())
            }
        })
    };
    ready("readyz answers 200", StatusCode::OK).await;
    drop(idp); // the provider goes away
    ready(
        "readyz notices the provider is gone",
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
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
    ready("readyz recovers", StatusCode::OK).await;
}
