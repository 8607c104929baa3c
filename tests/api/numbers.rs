//! Numbers in traits and context are kept as sent, every digit: in the Identify API's answer,
//! the stored call and profile, `GET /api/users/{id}`, the dashboard, and what each sink format
//! sends. Numbers a 64-bit float cannot hold (`1e400`) are refused, naming the field.
//!
//! The expected texts are compared with `Number`'s text: serde_json keeps it exactly
//! (`arbitrary_precision`), so a server that rounded would show `1.2345678901234568e29` here.

use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{AppOptions, Kind};
use crate::identify::{assert_error, read, spawn_api_with, Api};
use crate::outbox::sink_toml;
use crate::pg::TestDatabase;
use crate::sink::TestSink;

const ADMIN_KEY: &str = "numbers-test-admin-key-0123456789";
const BIG: &str = "123456789012345678901234567890";
const NEGATIVE: &str = "-123456789012345678901234567890";
const DECIMAL: &str = "0.1000000000000000055511151231257827";

/// The number at `value`, as text.
#[track_caller]
fn number(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => panic!("not a number: {other}"),
    }
}

fn admin_toml() -> String {
    format!(
        "[admin]\napi_key_hashes = [\"{}\"]\n",
        hex::encode(Sha256::digest(ADMIN_KEY.as_bytes()))
    )
}

async fn admin_get(api: &Api, path: &str) -> reqwest::Response {
    api.app
        .client
        .get(api.app.url(path))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
}

/// One call with big, negative, long decimal, scaled and exponent numbers in traits and nested
/// context; `exponent_stored` is how the store writes `1.5e300` back (serde_json spells it
/// `1.5e+300`; PostgreSQL's `jsonb` writes it out in full: the same value).
async fn numbers_are_kept_through_the_api(api: &Api, exponent_stored: &str) {
    let body = format!(
        r#"{{"user_id":"numbers-1","traits":{{"big":{BIG},"negative":{NEGATIVE},
            "decimal":{DECIMAL},"scaled":1.50,"exponent":1.5e300,"small":7}},
            "context":{{"order":{{"total":{BIG}.25,"lines":[{NEGATIVE}]}}}}}}"#
    );
    let (status, answer) = read(api.post_raw(body).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let traits = &answer["data"]["traits"];
    for (name, sent) in [
        ("big", BIG),
        ("negative", NEGATIVE),
        ("decimal", DECIMAL),
        ("scaled", "1.50"),
        ("exponent", "1.5e+300"),
        ("small", "7"),
    ] {
        assert_eq!(number(&traits[name]), sent, "the answer's {name}");
    }

    let stored = [
        ("big", BIG.to_string()),
        ("negative", NEGATIVE.to_string()),
        ("decimal", DECIMAL.to_string()),
        ("scaled", "1.50".to_string()),
        ("exponent", exponent_stored.to_string()),
        ("small", "7".to_string()),
    ];
    let profile = api.app.store.get_user("numbers-1").await.unwrap().unwrap();
    let response = admin_get(api, "/api/users/numbers-1").await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, user) = read(response).await;
    for (name, kept) in &stored {
        assert_eq!(&number(&profile.traits[name]), kept, "the profile's {name}");
        assert_eq!(
            &number(&user["data"]["traits"][name]),
            kept,
            "GET /api/users: {name}"
        );
    }
    let calls = api.app.store.identify_calls("numbers-1").await.unwrap();
    let context = calls[0].2.as_ref().expect("context logged");
    assert_eq!(number(&context["order"]["total"]), format!("{BIG}.25"));
    assert_eq!(number(&context["order"]["lines"][0]), NEGATIVE);

    let page = admin_get(api, "/admin/users/numbers-1").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    for value in [BIG, NEGATIVE, DECIMAL] {
        assert!(page.contains(value), "the dashboard shows {value}");
    }
}

#[tokio::test]
async fn numbers_in_traits_and_context_are_kept_as_sent_on_sqlite() {
    let api = spawn_api_with(
        AppOptions {
            extra_toml: admin_toml(),
            ..Default::default()
        },
        "",
    )
    .await;
    numbers_are_kept_through_the_api(&api, "1.5e+300").await;
}

#[tokio::test]
async fn numbers_in_traits_and_context_are_kept_as_sent_on_postgres() {
    let db = TestDatabase::create().await;
    let api = spawn_api_with(
        AppOptions {
            extra_toml: admin_toml(),
            database_url: Some(db.url.clone()),
            ..Default::default()
        },
        "",
    )
    .await;
    let written_out = format!("15{}", "0".repeat(299));
    numbers_are_kept_through_the_api(&api, &written_out).await;
}

#[tokio::test]
async fn numbers_a_double_cannot_hold_are_refused_naming_the_field_and_nothing_is_written() {
    let api = spawn_api_with(AppOptions::default(), "").await;
    let long = format!(r#""traits":{{"long":0.{}}}"#, "3".repeat(1000));
    let cases = [
        (r#""traits":{"huge":1e400}"#, "`traits.huge`", "too large"),
        (r#""traits":{"huge":-1E+400}"#, "`traits.huge`", "too large"),
        (
            r#""traits":{"tiny":1e-400}"#,
            "`traits.tiny`",
            "too close to zero",
        ),
        (
            r#""context":{"a":{"b":[1e999]}}"#,
            "`context.a.b`",
            "too large",
        ),
        (&long, "`traits.long`", "longer than 1000"),
    ];
    for (fields, field, why) in cases {
        let body = format!(r#"{{"user_id":"n",{fields}}}"#);
        let (status, answer) = read(api.post_raw(body.clone()).await).await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            field,
        );
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(why), "{body}: {message}");
    }
    assert!(api.app.store.get_user("n").await.unwrap().is_none());
}

/// A Graph stand-in whose `/me` carries the numbers as raw JSON text.
async fn graph_with_numbers() -> String {
    let me = format!(
        r#"{{"id":"c0a8","jobTitle":"CTO","big":{BIG},"negative":{NEGATIVE},"decimal":{DECIMAL}}}"#
    );
    let app = axum::Router::new()
        .route(
            "/v1.0/me",
            get(move || async move { ([(CONTENT_TYPE, "application/json")], me) }),
        )
        .route(
            "/v1.0/organization",
            get(|| async { ([(CONTENT_TYPE, "application/json")], r#"{"value":[]}"#) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1.0/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn numbers_from_the_provider_reach_each_sink_format_as_sent() {
    let graph_url = graph_with_numbers().await;
    let (seed, segment, batch) = (
        TestSink::start().await,
        TestSink::start().await,
        TestSink::start().await,
    );
    let toml = format!(
        "graph = true\ngraph_url = \"{graph_url}\"\n[providers.traits]\n\
         big = \"graph:/me/big\"\nnegative = \"graph:/me/negative\"\ndecimal = \"graph:/me/decimal\"\n"
    ) + &sink_toml("seed", "seed", &seed.url, "")
        + &sink_toml("seg", "segment", &segment.url, "api_key = \"wk\"")
        + &sink_toml("ts", "thrivestack", &batch.url, "api_key = \"k\"");
    let app = crate::helpers::spawn_app_with(AppOptions {
        kind: Kind::Microsoft,
        extra_toml: toml,
        ..Default::default()
    })
    .await;
    assert_eq!(
        app.sign_in("microsoft-work", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, me) = app.me().await;
    let wait = Duration::from_secs(15);
    let seed = seed.wait_for(1, wait).await;
    let segment = segment.wait_for(1, wait).await;
    let batch = batch.wait_for(1, wait).await;
    let sent = [
        ("/me", &me["traits"]),
        ("seed", &seed[0].body["traits"]),
        ("segment", &segment[0].body["traits"]),
        ("thrivestack", &batch[0].body[0]["traits"]),
    ];
    for (r#where, traits) in sent {
        for (name, value) in [("big", BIG), ("negative", NEGATIVE), ("decimal", DECIMAL)] {
            assert_eq!(number(&traits[name]), value, "{where}: {name} in {traits}");
        }
    }
}
