use serde_json::json;

use super::*;

fn sink(v: Value) -> SinkSettings {
    let mut base = json!({"name": "s", "url": "http://127.0.0.1:9/identify"});
    base.as_object_mut()
        .unwrap()
        .extend(v.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

fn message(anonymous_id: Option<&str>) -> IdentifyMessage {
    IdentifyMessage {
        message_id: Uuid::parse_str("5d2f0c2e-1b7a-4c1e-9f0a-0a1b2c3d4e5f").unwrap(),
        user_id: "user123".into(),
        traits: json!({"email": "ana@example.com", "name": "Ana Souza"})
            .as_object()
            .unwrap()
            .clone(),
        created_at: "2023-11-20T22:28:55.111Z".into(),
        event_at: "2026-11-29T10:00:00.000Z".into(),
        anonymous_id: anonymous_id.map(String::from),
        context: json!({"provider": "google", "first_sign_in": true, "user_agent": "UA"})
            .as_object()
            .unwrap()
            .clone(),
    }
}

#[test]
fn seed_body_is_the_spec_sample_with_the_creation_time() {
    let s = sink(json!({}));
    assert_eq!(
        body(&s, &[message(None)]),
        json!({
            "user_id": "user123",
            "traits": {"email": "ana@example.com", "name": "Ana Souza"},
            "timestamp": "2023-11-20T22:28:55.111Z",
            "context": {"provider": "google", "first_sign_in": true, "user_agent": "UA"},
        })
    );
}

#[test]
fn seed_body_carries_the_anonymous_id_and_honours_the_event_time_rule() {
    let s = sink(json!({"timestamp": "event_time"}));
    assert_eq!(
        body(&s, &[message(Some("anon-1"))]),
        json!({
            "user_id": "user123",
            "traits": {"email": "ana@example.com", "name": "Ana Souza",
                       "created_at": "2023-11-20T22:28:55.111Z"},
            "timestamp": "2026-11-29T10:00:00.000Z",
            "context": {"provider": "google", "first_sign_in": true, "user_agent": "UA",
                        "anonymous_id": "anon-1"},
        })
    );
}

#[test]
fn thrivestack_body_is_an_array_with_event_time_and_created_at_trait() {
    let s = sink(json!({"format": "thrivestack", "api_key": "k"}));
    let mut second = message(None);
    second.user_id = "user456".into();
    second.message_id = Uuid::nil();
    let item = |user: &str, id: &str, device: Option<&str>| {
        let mut context = json!({"provider": "google", "first_sign_in": true, "userAgent": "UA",
                                 "message_id": id});
        if let Some(d) = device {
            context["device_id"] = json!(d);
        }
        json!({
            "user_id": user,
            "traits": {"email": "ana@example.com", "name": "Ana Souza",
                       "created_at": "2023-11-20T22:28:55.111Z"},
            "timestamp": "2026-11-29T10:00:00.000Z",
            "context": context,
        })
    };
    assert_eq!(
        body(&s, &[message(Some("anon-1")), second]),
        json!([
            item(
                "user123",
                "5d2f0c2e-1b7a-4c1e-9f0a-0a1b2c3d4e5f",
                Some("anon-1")
            ),
            item("user456", "00000000-0000-0000-0000-000000000000", None),
        ])
    );
    assert_eq!(messages_per_request(&s), 100);
}

#[test]
fn segment_body_is_an_identify_call_with_created_at_trait() {
    let s = sink(json!({"format": "segment", "api_key": "wk"}));
    assert_eq!(
        body(&s, &[message(Some("anon-1"))]),
        json!({
            "type": "identify",
            "userId": "user123",
            "anonymousId": "anon-1",
            "traits": {"email": "ana@example.com", "name": "Ana Souza",
                       "createdAt": "2023-11-20T22:28:55.111Z"},
            "timestamp": "2026-11-29T10:00:00.000Z",
            "messageId": "5d2f0c2e-1b7a-4c1e-9f0a-0a1b2c3d4e5f",
            "context": {"provider": "google", "firstSignIn": true, "userAgent": "UA"},
        })
    );
    assert!(body(&s, &[message(None)]).get("anonymousId").is_none());
}

fn headers(s: &SinkSettings, bearer: Option<&str>) -> reqwest::header::HeaderMap {
    let client = reqwest::Client::new();
    apply_headers(client.post(s.url.clone()), s, bearer, Uuid::nil())
        .build()
        .unwrap()
        .headers()
        .clone()
}

#[test]
fn seed_headers_are_bearer_key_and_json() {
    let h = headers(&sink(json!({"api_key": "the-key"})), Some("tok"));
    assert_eq!(h["authorization"], "Bearer tok");
    assert!(h["authorization"].is_sensitive());
    assert_eq!(h["key"], "the-key");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["accept"], "application/json");
    assert_eq!(h["idempotency-key"], "00000000-0000-0000-0000-000000000000");
    assert!(!format!("{h:?}").contains("the-key"));
}

#[test]
fn thrivestack_and_segment_headers() {
    let h = headers(
        &sink(json!({"format": "thrivestack", "api_key": "ts"})),
        None,
    );
    assert_eq!(h["x-api-key"], "ts");
    assert!(h.get("authorization").is_none() && h.get("key").is_none());
    let h = headers(&sink(json!({"format": "segment", "api_key": "wk"})), None);
    // base64("wk:")
    assert_eq!(h["authorization"], "Basic d2s6");
}

#[test]
fn webhook_body_is_a_plain_event() {
    let s = sink(json!({"format": "webhook"}));
    assert_eq!(
        body(&s, &[message(Some("anon-1"))]),
        json!({
            "type": "identify",
            "id": "5d2f0c2e-1b7a-4c1e-9f0a-0a1b2c3d4e5f",
            "time": "2026-11-29T10:00:00.000Z",
            "user_id": "user123",
            "anonymous_id": "anon-1",
            "first_sign_in": true,
            "created_at": "2023-11-20T22:28:55.111Z",
            "traits": {"email": "ana@example.com", "name": "Ana Souza"},
            "context": {"provider": "google", "user_agent": "UA"},
        })
    );
    assert_eq!(messages_per_request(&s), 1);
    let h = headers(&s, Some("tok"));
    assert_eq!(h["authorization"], "Bearer tok");
    assert!(h.get("key").is_none() && h.get("x-api-key").is_none());
}

#[test]
fn the_login_context_reaches_each_format_under_its_names() {
    let mut m = message(None);
    m.context.extend(
        json!({
            "locale": "de-CH",
            "ip": "203.0.113.7",
            "page": {"url": "https://app.example.com/welcome", "path": "/welcome",
                     "referrer": "https://news.example.org/"},
            "campaign": {"name": "spring", "source": "newsletter"},
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    let seed = body(&sink(json!({})), std::slice::from_ref(&m));
    let segment = body(
        &sink(json!({"format": "segment", "api_key": "wk"})),
        std::slice::from_ref(&m),
    );
    let thrivestack = body(
        &sink(json!({"format": "thrivestack", "api_key": "k"})),
        std::slice::from_ref(&m),
    );
    let webhook = body(
        &sink(json!({"format": "webhook"})),
        std::slice::from_ref(&m),
    );
    for (format, context, agent) in [
        ("seed", &seed["context"], "user_agent"),
        ("segment", &segment["context"], "userAgent"),
        ("thrivestack", &thrivestack[0]["context"], "userAgent"),
        ("webhook", &webhook["context"], "user_agent"),
    ] {
        assert_eq!(context[agent], "UA", "{format}: {context}");
        assert_eq!(context["locale"], "de-CH", "{format}");
        assert_eq!(context["ip"], "203.0.113.7", "{format}");
        assert_eq!(
            context["page"]["referrer"], "https://news.example.org/",
            "{format}"
        );
        assert_eq!(context["campaign"]["name"], "spring", "{format}");
    }
}
