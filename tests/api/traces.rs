//! Traces: `identify-bridge dev` (the built binary: the tracing subscriber is per process) with
//! `telemetry.otlp_endpoint` pointing at a receiver in this test, a real HTTP server that
//! decodes the OTLP protobuf it is sent. A sign-in and its delivery to the built-in Identify API
//! leave spans for login, callback, each provider call, the store and the delivery attempt,
//! joined by `traceparent`: the one the test sends in, and the ones the bridge sends on to the
//! development provider and to the sink (both served by the same process, so their request
//! spans show what arrived).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::StatusCode;

use crate::dev_mode::DevProcess;
use crate::helpers::location;

type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver on a free port: `POST /v1/traces` with a protobuf body.
async fn start_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(|State(received): State<Received>, body: Bytes| async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut spans = received.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans);
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

/// Wait until `found` picks what it needs from the spans received so far.
async fn wait_for<T>(received: &Received, what: &str, found: impl Fn(&[Span]) -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(value) = found(&received.lock().unwrap()) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|s| format!("{} {:?}", s.name, attribute(s, "path")))
        .collect();
    panic!("no {what} among the spans received: {names:#?}");
}

const LOGIN_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const LOGIN_PARENT: &str = "00f067aa0ba902b7";
const CALLBACK_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLBACK_PARENT: &str = "b7ad6b7169203331";

#[tokio::test]
async fn a_sign_in_and_its_delivery_are_traced_across_provider_and_sink() {
    let (collector, received) = start_receiver().await;
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!("[telemetry]\notlp_endpoint = \"{collector}\"\nexport_delay_ms = 50\n"),
    )
    .unwrap();
    let dev = DevProcess::start(data.path(), Some(&config)).await;
    let url = dev.url.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();

    // The login continues the caller's trace.
    let login = client
        .get(format!("{url}/login/dev"))
        .header("traceparent", format!("00-{LOGIN_TRACE}-{LOGIN_PARENT}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let authorize = location(&login);
    let mut fields: Vec<(String, String)> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    fields.push(("action".into(), "persona".into()));
    fields.push(("persona".into(), "marcus".into()));
    let chosen = client
        .post(format!("{url}/dev-idp/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let callback = location(&chosen);
    let done = client
        .get(&callback)
        .header(
            "traceparent",
            format!("00-{CALLBACK_TRACE}-{CALLBACK_PARENT}-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);

    let trace_of = |span: &Span| hex::encode(&span.trace_id);
    let login_span = wait_for(&received, "begin_login span", |spans| {
        spans.iter().find(|s| s.name == "begin_login").cloned()
    })
    .await;
    assert_eq!(trace_of(&login_span), LOGIN_TRACE);
    let login_request = wait_for(&received, "/login/dev request span", |spans| {
        spans
            .iter()
            .find(|s| attribute(s, "path").as_deref() == Some("/login/dev"))
            .cloned()
    })
    .await;
    assert_eq!(
        hex::encode(&login_request.parent_span_id),
        LOGIN_PARENT,
        "the incoming traceparent is the request's parent"
    );

    // The callback: its provider calls and the store, in the caller's trace.
    let in_callback = |name: &'static str, stage: Option<&'static str>| {
        let received = received.clone();
        async move {
            wait_for(&received, name, |spans| {
                spans
                    .iter()
                    .find(|s| {
                        s.name == name
                            && hex::encode(&s.trace_id) == CALLBACK_TRACE
                            && stage
                                .is_none_or(|stage| attribute(s, "stage").as_deref() == Some(stage))
                    })
                    .cloned()
            })
            .await
        }
    };
    let finish = in_callback("finish_login", None).await;
    let token_call = in_callback("provider_call", Some("token")).await;
    in_callback("provider_call", Some("userinfo")).await;
    in_callback("sign_in_attempts", None).await;
    assert_eq!(attribute(&finish, "provider").as_deref(), Some("dev"));

    // The provider received the token call's traceparent: its request span is the call's child.
    let at_provider = wait_for(&received, "/dev-idp/token request span", |spans| {
        spans
            .iter()
            .find(|s| {
                attribute(s, "path").as_deref() == Some("/dev-idp/token")
                    && s.parent_span_id == token_call.span_id
            })
            .cloned()
    })
    .await;
    assert_eq!(trace_of(&at_provider), CALLBACK_TRACE);

    // The delivery attempt, and the sink (the built-in Identify API) continuing its trace.
    let deliver = wait_for(&received, "deliver span", |spans| {
        spans
            .iter()
            .find(|s| {
                s.name == "deliver" && attribute(s, "outcome").as_deref() == Some("delivered")
            })
            .cloned()
    })
    .await;
    assert_eq!(attribute(&deliver, "sink").as_deref(), Some("local"));
    let at_sink = wait_for(&received, "/api/identify request span", |spans| {
        spans
            .iter()
            .find(|s| {
                attribute(s, "path").as_deref() == Some("/api/identify")
                    && s.parent_span_id == deliver.span_id
            })
            .cloned()
    })
    .await;
    assert_eq!(at_sink.trace_id, deliver.trace_id);
    // The sink's token came from the provider inside the delivery's trace.
    wait_for(&received, "sink_token span", |spans| {
        spans
            .iter()
            .find(|s| s.name == "sink_token" && s.trace_id == deliver.trace_id)
            .cloned()
    })
    .await;
    dev.stop().await;
}
