//! Sign-ins reach the configured sinks, in each sink's format, through the real test IdP.

use std::time::Duration;

use crate::harness::poll;
use crate::helpers::{spawn_app_with, AppOptions, Kind};
use crate::idp::{jwt_payload, IdpClient, TestIdp};
use crate::sink::{Reply, TestSink};

const WAIT: Duration = Duration::from_secs(15);

pub fn sink_toml(name: &str, format: &str, url: &str, extra: &str) -> String {
    format!(
        "[[sinks]]\nname = \"{name}\"\nformat = \"{format}\"\nurl = \"{url}\"\n\
         backoff_base_ms = 50\nbackoff_cap_secs = 1\n{extra}\n"
    )
}

fn is_uuid(s: Option<&str>) -> bool {
    s.and_then(|s| uuid::Uuid::parse_str(s).ok()).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_reaches_the_seed_sink_as_the_spec_sample() {
    let sink = TestSink::start().await;
    let app = spawn_app_with(AppOptions {
        kind: Kind::Google,
        extra_toml: sink_toml(
            "seed",
            "seed",
            &sink.url,
            "api_key = \"seed-api-key\"\nbearer_token = \"static-token\"",
        ),
        ..Default::default()
    })
    .await;
    assert!(app
        .sign_in("google-consumer", None)
        .await
        .status()
        .is_redirection());
    let (_, me) = app.me().await;
    let got = sink.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(r.body["user_id"], me["user_id"]);
    assert_eq!(r.body["timestamp"], me["created_at"]);
    assert_eq!(r.body["traits"]["email"], "ana.souza@gmail.com");
    assert_eq!(r.body["traits"]["name"], "Ana Souza");
    assert_eq!(r.body["context"]["provider"], "google");
    assert_eq!(r.body["context"]["first_sign_in"], true);
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["context", "timestamp", "traits", "user_id"]);
    assert_eq!(r.header("authorization"), Some("Bearer static-token"));
    assert_eq!(r.header("key"), Some("seed-api-key"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert!(is_uuid(r.header("idempotency-key")));
    // Exactly one call per sign-in: once the outbox row is delivered nothing sends it again,
    // and the sink records a request before it answers.
    poll("the outbox row delivered", WAIT, || async {
        let stats = app.store.outbox_stats(chrono::Utc::now()).await.unwrap();
        (stats[0].delivered == 1).then_some(())
    })
    .await;
    assert_eq!(sink.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_carries_its_landing_page_campaign_referrer_agent_and_locale_to_each_format() {
    let (seed, seg, ts) = (
        TestSink::start().await,
        TestSink::start().await,
        TestSink::start().await,
    );
    let toml = sink_toml("seed", "seed", &seed.url, "send_client_ip = true")
        + &sink_toml("seg", "segment", &seg.url, "api_key = \"wk\"")
        + &sink_toml("ts", "thrivestack", &ts.url, "api_key = \"k\"");
    let app = spawn_app_with(AppOptions {
        kind: Kind::Google,
        extra_toml: toml,
        ..Default::default()
    })
    .await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("user-agent", "TestBrowser/1.0".parse().unwrap());
    headers.insert("accept-language", "de-CH,de;q=0.9".parse().unwrap());
    headers.insert(
        "referer",
        "https://news.example.org/story#top".parse().unwrap(),
    );
    let browser = crate::harness::client_builder(true)
        .default_headers(headers)
        .build()
        .unwrap();

    // The bridge's /login page hands campaign and referrer on to its buttons.
    let landing = "https://app.example.com/welcome?x=1";
    let query = format!(
        "return_to={}&utm_source=newsletter&utm_campaign=spring",
        crate::helpers::urlencode(landing)
    );
    let page = browser
        .get(app.url(&format!("/login?{query}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("utm_source=newsletter")
            && page.contains("referrer=https%3A%2F%2Fnews.example.org%2Fstory"),
        "{page}"
    );

    let callback = app
        .start_sign_in_with(&browser, &format!("login_hint=google-workspace&{query}"))
        .await;
    let done = browser.get(callback).send().await.unwrap();
    assert_eq!(done.headers()["location"], landing);

    let expected_page = serde_json::json!({
        "url": landing, "path": "/welcome", "search": "?x=1",
        "referrer": "https://news.example.org/story",
    });
    let expected_campaign = serde_json::json!({"source": "newsletter", "name": "spring"});
    let s = &seed.wait_for(1, WAIT).await[0].body["context"];
    assert_eq!(s["page"], expected_page, "{s}");
    assert_eq!(s["campaign"], expected_campaign);
    assert_eq!(s["user_agent"], "TestBrowser/1.0");
    assert_eq!(s["locale"], "de-CH");
    assert_eq!(s["ip"], "127.0.0.1", "the seed sink asked for the address");
    let g = &seg.wait_for(1, WAIT).await[0].body["context"];
    let t = &ts.wait_for(1, WAIT).await[0].body[0]["context"];
    for (format, context) in [("segment", g), ("thrivestack", t)] {
        assert_eq!(context["page"], expected_page, "{format}: {context}");
        assert_eq!(context["campaign"], expected_campaign, "{format}");
        assert_eq!(context["userAgent"], "TestBrowser/1.0", "{format}");
        assert_eq!(context["locale"], "de-CH", "{format}");
        assert!(
            context.get("ip").is_none(),
            "{format}: no address unless enabled"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_reaches_thrivestack_and_segment_sinks_each_in_its_format() {
    let ts = TestSink::start().await;
    let seg = TestSink::start().await;
    let toml = sink_toml("ts", "thrivestack", &ts.url, "api_key = \"ts-key\"")
        + &sink_toml("seg", "segment", &seg.url, "api_key = \"write-key\"");
    let app = spawn_app_with(AppOptions {
        kind: Kind::Google,
        extra_toml: toml,
        ..Default::default()
    })
    .await;
    let callback = app
        .start_sign_in("login_hint=google-workspace&anonymous_id=anon-42")
        .await;
    assert!(app
        .client
        .get(callback)
        .send()
        .await
        .unwrap()
        .status()
        .is_redirection());
    let (_, me) = app.me().await;

    let t = &ts.wait_for(1, WAIT).await[0];
    let items = t.body.as_array().expect("a JSON array");
    assert_eq!(items.len(), 1, "{:#}", t.body);
    let item = &items[0];
    assert_eq!(item["user_id"], me["user_id"]);
    assert_eq!(item["traits"]["created_at"], me["created_at"]);
    assert_eq!(item["traits"]["email"], "marcus.chen@acme.io");
    assert_eq!(t.header("x-api-key"), Some("ts-key"));
    assert!(t.header("authorization").is_none());
    assert_eq!(
        t.header("idempotency-key"),
        item["context"]["message_id"].as_str()
    );

    let s = &seg.wait_for(1, WAIT).await[0];
    assert_eq!(s.body["type"], "identify");
    assert_eq!(s.body["userId"], me["user_id"]);
    assert_eq!(s.body["traits"]["createdAt"], me["created_at"]);
    assert_eq!(s.body["traits"]["name"], "Marcus Chen");
    assert_eq!(s.header("idempotency-key"), s.body["messageId"].as_str());
    // base64("write-key:")
    assert_eq!(s.header("authorization"), Some("Basic d3JpdGUta2V5Og=="));
    // The login route carries `anonymous_id` through the sign-in.
    assert_eq!(item["context"]["device_id"], "anon-42");
    assert_eq!(s.body["anonymousId"], "anon-42");

    // A returning sign-in: `timestamp` is the sign-in time, the creation time stays a trait.
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.sign_in("google-workspace", None).await;
    let again = &ts.wait_for(2, WAIT).await[1].body[0];
    assert_eq!(again["traits"]["created_at"], me["created_at"]);
    assert!(again["timestamp"].as_str() > me["created_at"].as_str());
    let again = &seg.wait_for(2, WAIT).await[1].body;
    assert_eq!(again["traits"]["createdAt"], me["created_at"]);
    assert!(again["timestamp"].as_str() > me["created_at"].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_credentials_token_is_fetched_cached_and_refreshed_on_401() {
    let token_idp =
        TestIdp::start("", vec![IdpClient::service("sink-client", "sink-secret")]).await;
    let sink = TestSink::start().await;
    let token = format!(
        "[sinks.token]\ntoken_url = \"{}/token\"\nclient_id = \"sink-client\"\n\
         client_secret = \"sink-secret\"\nscope = \"telemetry_apis\"\n",
        token_idp.issuer
    );
    let app = spawn_app_with(AppOptions {
        kind: Kind::Oidc,
        extra_toml: sink_toml(
            "seed",
            "seed",
            &sink.url,
            &format!("api_key = \"k\"\n{token}"),
        ),
        ..Default::default()
    })
    .await;
    app.sign_in("first.user", None).await;
    sink.wait_for(1, WAIT).await;
    app.sign_in("first.user", None).await;
    let got = sink.wait_for(2, WAIT).await;
    let bearer = |i: usize| got[i].header("authorization").unwrap().to_string();
    assert_eq!(bearer(0), bearer(1), "the token is cached across messages");
    let jwt = bearer(0).strip_prefix("Bearer ").unwrap().to_string();
    let claims = jwt_payload(&jwt);
    assert_eq!(claims["scope"], "telemetry_apis");
    assert_eq!(claims["client_id"], "sink-client");
    assert_eq!(
        got[0].body["user_id"], got[1].body["user_id"],
        "a returning sign-in"
    );
    assert_ne!(
        got[0].header("idempotency-key"),
        got[1].header("idempotency-key")
    );

    // The sink refuses the cached token once: a new one is fetched and the call repeated.
    sink.script([Reply::status(401).body(r#"{"error":"token expired"}"#)]);
    app.sign_in("first.user", None).await;
    let got = sink.wait_for(4, WAIT).await;
    assert_eq!(
        got[2].header("authorization").map(String::from),
        Some(bearer(0))
    );
    assert_ne!(
        got[3].header("authorization").map(String::from),
        Some(bearer(0))
    );
    assert_eq!(got[2].body, got[3].body);
    assert_eq!(
        got[2].header("idempotency-key"),
        got[3].header("idempotency-key")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_token_request_keeps_the_message_pending_without_leaking_the_secret() {
    use crate::outbox_faults::{new_message, run_worker, sink_settings, sqlite_store, wait_until};
    let token_idp =
        TestIdp::start("", vec![IdpClient::service("sink-client", "sink-secret")]).await;
    let sink = TestSink::start().await;
    let (store, _dir) = sqlite_store().await;
    let settings = sink_settings(
        &sink.url,
        serde_json::json!({"token": {"token_url": format!("{}/token", token_idp.issuer),
                                     "client_id": "sink-client",
                                     "client_secret": "wrong-secret-value"}}),
    );
    let debug = format!(
        "{:?}",
        identify_bridge::outbox::Worker::new(store.clone(), settings.clone(), "x").sender()
    );
    assert!(!debug.contains("wrong-secret-value"), "{debug}");
    let m = new_message(&settings, "u1");
    store.enqueue(std::slice::from_ref(&m)).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    let failed = wait_until(&store, m.message_id, |m| m.last_error.is_some(), WAIT).await;
    let error = failed.last_error.unwrap();
    assert!(error.contains("invalid_client"), "{error}");
    assert!(!error.contains("wrong-secret-value"));
    assert_eq!(failed.status, identify_bridge::store::OutboxStatus::Pending);
    assert!(
        sink.requests().is_empty(),
        "nothing is sent without a token"
    );
    stop.cancel();
}
