//! Microsoft Graph's photo needs the user's token, so the bridge keeps the bytes and serves
//! them itself: a sign-in with `graph = true` through the real test provider, against a Graph
//! stand-in on a local socket (no real Graph runs here; it serves what Graph serves for /me,
//! /organization and /me/photo/$value, and checks the bearer token is sent).

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode as Status};
use axum::response::IntoResponse;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app_with, AppOptions, Kind};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0";

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization")
        .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "))
}

/// A Graph stand-in; `photo` is what `/me/photo/$value` serves next (`None`: 404).
async fn graph(photo: Arc<Mutex<Option<&'static [u8]>>>) -> String {
    let app = axum::Router::new()
        .route(
            "/v1.0/me",
            get(|h: HeaderMap| async move {
                if !authorized(&h) {
                    return Status::UNAUTHORIZED.into_response();
                }
                axum::Json(json!({"id": "c0a8", "displayName": "Jane Doe", "jobTitle": "CTO"}))
                    .into_response()
            }),
        )
        .route(
            "/v1.0/organization",
            get(|| async { axum::Json(json!({"value": [{"displayName": "Contoso"}]})) }),
        )
        .route(
            "/v1.0/me/photo/$value",
            get(move |h: HeaderMap| async move {
                if !authorized(&h) {
                    return Status::UNAUTHORIZED.into_response();
                }
                match *photo.lock().unwrap() {
                    Some(bytes) => bytes.into_response(),
                    None => Status::NOT_FOUND.into_response(),
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1.0/")
}

#[tokio::test]
async fn a_graph_photo_is_served_by_the_bridge_and_erased_with_the_user() {
    let photo = Arc::new(Mutex::new(Some(PNG)));
    let graph_url = graph(photo.clone()).await;
    let admin_key = "admin-key-for-avatar-test-0123456789";
    let app = spawn_app_with(AppOptions {
        kind: Kind::Microsoft,
        // Right after the provider's table, so these keys belong to it.
        extra_toml: format!(
            "graph = true\ngraph_url = \"{graph_url}\"\n[admin]\napi_key_hashes = [\"{}\"]\n",
            hex::encode(Sha256::digest(admin_key.as_bytes()))
        ),
        ..Default::default()
    })
    .await;
    assert_eq!(
        app.sign_in("microsoft-work", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, me) = app.me().await;
    let avatar = me["traits"]["enrichment_avatar"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(avatar.starts_with(&app.url("/avatars/")), "{me}");
    assert_eq!(
        me["provenance"]["enrichment_avatar"]["source"],
        "graph:/me/photo"
    );
    assert_eq!(me["traits"]["enrichment_employment_title"], "CTO", "{me}");

    // Anyone with the URL gets the image (analytics tools show it), typed from its bytes.
    let got = reqwest::get(&avatar).await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(&got.bytes().await.unwrap()[..], PNG);

    // A new photo gets a new URL; the old one is gone.
    *photo.lock().unwrap() = Some(JPEG);
    assert_eq!(
        app.sign_in("microsoft-work", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, me) = app.me().await;
    let second = me["traits"]["enrichment_avatar"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, avatar);
    assert_eq!(
        reqwest::get(&avatar).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let got = reqwest::get(&second).await.unwrap();
    assert_eq!(got.headers()["content-type"], "image/jpeg");

    // Ids that are not ours, and bad ones, are 404 pages.
    for path in [
        "/avatars/0123456789abcdef0123456789abcdef",
        "/avatars/..%2Fetc",
        "/avatars/x",
    ] {
        assert_eq!(
            app.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // Erasure takes the photo with it.
    let user_id = me["user_id"].as_str().unwrap();
    let erased = app
        .client
        .delete(app.url(&format!("/api/users/{user_id}")))
        .bearer_auth(admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        reqwest::get(&second).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}
