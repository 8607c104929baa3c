//! Sessions that stay true to the provider, through the real oidc-provider: re-validation
//! (refresh tokens, userinfo), back-channel logout, lifetimes, sign out everywhere, erasure;
//! on SQLite, PostgreSQL with database sessions and PostgreSQL with Redis sessions, two
//! replicas where it matters (a sign-in begun on the first replica, the session used on the
//! last).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::poll;
use crate::helpers::{location, spawn_app_with, AppOptions, Kind, CLIENT_SECRET};
use crate::idp::{b64url_decode, b64url_encode, IdpClient, Requests};
use crate::replicas::{browser, spawn_on_sqlite, spawn_replicas, Replicas};
use crate::sink::TestSink;
use identify_bridge::store::Store;

const WAIT: Duration = Duration::from_secs(15);

/// The test provider's `google-consumer` account.
const SUB: &str = "110248495921238986420";
const ADMIN_KEY: &str = "admin-key-for-session-tests";
/// The test provider's refresh-token rules ([`crate::idp::TestIdp::set_offline`]): Google's
/// (the replicas' provider is `kind = "google"`, and the bridge asks with `access_type=offline`
/// while re-validation is on), and never.
const GOOGLE_OFFLINE: &str = "access_type";
const NO_REFRESH_TOKEN: &str = "none";

#[derive(Clone, Copy, Debug)]
enum Stores {
    Sqlite,
    PgDatabase,
    PgRedis,
}

/// The bridge on `stores`, with `session` lines in `[session]` and `provider` lines in the
/// provider's table; the admin API open to [`ADMIN_KEY`].
async fn bridge(stores: Stores, session: &str, provider: &str) -> Replicas {
    let extra = format!(
        "{provider}[admin]\napi_key_hashes = [\"{}\"]\n",
        hex::encode(Sha256::digest(ADMIN_KEY.as_bytes()))
    );
    match stores {
        Stores::Sqlite => spawn_on_sqlite(&format!("[session]\n{session}"), &extra).await,
        Stores::PgDatabase => {
            let toml = format!("[session]\nstore = \"database\"\n{session}");
            spawn_replicas(2, &toml, &extra).await
        }
        Stores::PgRedis => {
            let toml = format!(
                "[session]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n{session}"
            );
            spawn_replicas(2, &toml, &extra).await
        }
    }
}

/// Sign `client` in as `hint` (begun on the first replica, finished on the last).
async fn sign_in(r: &Replicas, client: &reqwest::Client, hint: &str) {
    let last = r.addresses.len() - 1;
    let callback = r.start_on(client, 0, last, hint).await;
    let done = client.get(callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
}

/// A browser signed in as `google-consumer` to [`bridge`] on `stores` with `session` lines,
/// the test provider issuing refresh tokens by `rule` ([`GOOGLE_OFFLINE`], [`NO_REFRESH_TOKEN`]).
async fn signed_in(stores: Stores, session: &str, rule: &str) -> (Replicas, reqwest::Client) {
    let r = bridge(stores, session, "").await;
    r.idp.set_offline(Some(rule)).await;
    let client = browser();
    sign_in(&r, &client, "google-consumer").await;
    (r, client)
}

/// The status of `path` on the last replica.
async fn status(r: &Replicas, client: &reqwest::Client, path: &str) -> StatusCode {
    let last = r.addresses.last().unwrap();
    client
        .get(format!("{last}{path}"))
        .send()
        .await
        .unwrap()
        .status()
}

/// Ask `path` on the last replica until it answers `want`.
async fn wait_for(r: &Replicas, client: &reqwest::Client, path: &str, want: StatusCode) {
    poll(&format!("{path} answering {want}"), WAIT, || async {
        (status(r, client, path).await == want).then_some(())
    })
    .await
}

/// Ask `/auth` on the last replica, which must answer 204 every time, until the provider has
/// answered one more re-validation of the session: a refresh with tokens (`refresh`), else a
/// userinfo call. With `session.revalidate_secs = 1` that is within a second or two, and no
/// test waits longer than it must.
async fn kept_through_a_revalidation(
    r: &Replicas,
    client: &reqwest::Client,
    refresh: bool,
) -> Requests {
    let before = r.idp.requests().await;
    poll("a re-validation that keeps the session", WAIT, || async {
        assert_eq!(
            status(r, client, "/auth").await,
            StatusCode::NO_CONTENT,
            "the session ended at a re-validation the provider accepted"
        );
        let now = r.idp.requests().await;
        let done = match refresh {
            true => now.refreshed > before.refreshed,
            false => now.userinfo > before.userinfo,
        };
        done.then_some(now)
    })
    .await
}

async fn user_id(r: &Replicas, client: &reqwest::Client) -> String {
    let last = r.addresses.last().unwrap();
    let me: Value = client
        .get(format!("{last}/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["user_id"].as_str().expect("signed in").to_string()
}

// ------------------------------------------------------------------ re-validation

/// Signed in with the provider issuing refresh tokens by `rule`, the session survives a
/// re-validation (a refresh when it holds a refresh token, else userinfo) and ends once the
/// grant is revoked at the provider.
async fn a_revoked_grant_ends_the_session(stores: Stores, rule: &str) {
    let (r, client) = signed_in(stores, "revalidate_secs = 1\n", rule).await;
    let asked = r.idp.last_authorization().await;
    assert_eq!(asked["access_type"], "offline", "{asked}");
    assert_eq!(
        asked.get("prompt"),
        None,
        "no consent screen forced: {asked}"
    );
    let refresh = rule != NO_REFRESH_TOKEN;
    kept_through_a_revalidation(&r, &client, refresh).await;
    if refresh {
        // The stored refresh token is used again at the next re-validation.
        kept_through_a_revalidation(&r, &client, true).await;
    }
    assert!(r.idp.revoke_grants(SUB).await > 0);
    wait_for(&r, &client, "/auth", StatusCode::UNAUTHORIZED).await;
    assert_eq!(status(&r, &client, "/me").await, StatusCode::UNAUTHORIZED);
    let page = client
        .get(format!("{}/profile", r.addresses.last().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&page), "/login");
}

#[tokio::test]
async fn a_revoked_refresh_token_signs_out_on_sqlite() {
    a_revoked_grant_ends_the_session(Stores::Sqlite, GOOGLE_OFFLINE).await;
}

#[tokio::test]
async fn a_revoked_refresh_token_signs_out_on_every_replica_with_database_sessions() {
    a_revoked_grant_ends_the_session(Stores::PgDatabase, GOOGLE_OFFLINE).await;
}

#[tokio::test]
async fn a_revoked_refresh_token_signs_out_on_every_replica_with_redis_sessions() {
    a_revoked_grant_ends_the_session(Stores::PgRedis, GOOGLE_OFFLINE).await;
}

#[tokio::test]
async fn without_a_refresh_token_a_revoked_access_token_signs_out_through_userinfo() {
    a_revoked_grant_ends_the_session(Stores::Sqlite, NO_REFRESH_TOKEN).await;
}

#[tokio::test]
async fn without_revalidation_sign_ins_ask_for_no_refresh_token() {
    let (r, _client) = signed_in(Stores::Sqlite, "revalidate_secs = 0\n", GOOGLE_OFFLINE).await;
    let asked = r.idp.last_authorization().await;
    assert_eq!(asked.get("access_type"), None, "{asked}");
    assert!(!asked["scope"].as_str().unwrap().contains("offline_access"));
}

/// Okta and Microsoft get the `offline_access` scope, as does another OpenID provider whose
/// discovery lists it (the test provider's does); the refresh token they issue for it (the
/// test provider imitating them: the scope alone suffices) is what re-validation uses.
#[tokio::test]
async fn okta_microsoft_and_other_providers_are_asked_for_offline_access_and_refreshed() {
    for (kind, hint) in [
        (Kind::Okta, "okta-user"),
        (Kind::Microsoft, "microsoft-work"),
        (Kind::Oidc, "generic"),
    ] {
        let app = spawn_app_with(AppOptions {
            kind,
            session_toml: "revalidate_secs = 1".into(),
            ..Default::default()
        })
        .await;
        app.idp.set_offline(Some("scope")).await;
        let done = app.sign_in(hint, None).await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER, "{kind:?}");
        let asked = app.idp.last_authorization().await;
        let scopes: Vec<&str> = asked["scope"].as_str().unwrap().split(' ').collect();
        assert!(scopes.contains(&"offline_access"), "{kind:?}: {asked}");
        assert_eq!(asked.get("access_type"), None, "{kind:?}: {asked}");
        assert_eq!(asked.get("prompt"), None, "{kind:?}: {asked}");
        let before = app.idp.requests().await;
        poll(
            &format!("{kind:?}: a refresh that keeps the session"),
            WAIT,
            || async {
                assert_eq!(
                    app.get("/auth").await.status(),
                    StatusCode::NO_CONTENT,
                    "{kind:?}"
                );
                (app.idp.requests().await.refreshed > before.refreshed).then_some(())
            },
        )
        .await;
    }
}

/// An Okta app without the Refresh Token grant (the test provider refuses `offline_access`
/// from such a client with `invalid_scope`, as Okta does): the sign-in ends on the
/// provider-error page naming the grant and the key; with `refresh_tokens = false` the sign-in
/// asks for no offline access, succeeds, and re-validation reads userinfo instead.
#[tokio::test]
async fn an_okta_app_without_the_refresh_token_grant_is_told_what_to_change_and_signs_in_with_refresh_tokens_off(
) {
    for refresh_tokens in [true, false] {
        let app = spawn_app_with(AppOptions {
            kind: Kind::Okta,
            session_toml: "revalidate_secs = 1".into(),
            // Lands in the provider's table, the last one before it.
            extra_toml: format!("refresh_tokens = {refresh_tokens}"),
            ..Default::default()
        })
        .await;
        app.idp.set_offline(Some("scope")).await;
        let redirect = format!("{}/callback/{}", app.address, Kind::Okta.name());
        let mut without_grant = IdpClient::web(Kind::Okta.name(), CLIENT_SECRET, &redirect);
        without_grant.grant_types = vec!["authorization_code".into()];
        app.idp.add_client(without_grant).await;

        let done = app.sign_in("okta-user", None).await;
        let asked = app.idp.last_authorization().await;
        let scopes: Vec<&str> = asked["scope"].as_str().unwrap().split(' ').collect();
        assert_eq!(
            scopes.contains(&"offline_access"),
            refresh_tokens,
            "{asked}"
        );
        if refresh_tokens {
            assert_eq!(done.status(), StatusCode::UNAUTHORIZED);
            let page = done.text().await.unwrap();
            assert!(page.contains("Refresh Token grant"), "{page}");
            assert!(page.contains("refresh_tokens = false"), "{page}");
            assert_eq!(app.me().await.0, StatusCode::UNAUTHORIZED);
            continue;
        }
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        let before = app.idp.requests().await;
        poll("a re-validation through userinfo", WAIT, || async {
            assert_eq!(app.get("/auth").await.status(), StatusCode::NO_CONTENT);
            let now = app.idp.requests().await;
            assert_eq!(now.refreshed, before.refreshed, "no refresh token to use");
            (now.userinfo > before.userinfo).then_some(())
        })
        .await;
    }
}

/// The provider cannot be reached at a re-validation (connections dropped): the session goes
/// on, and the failure is counted.
#[tokio::test]
async fn the_provider_down_during_revalidation_keeps_people_signed_in() {
    let (r, client) = signed_in(Stores::PgDatabase, "revalidate_secs = 1\n", GOOGLE_OFFLINE).await;
    r.idp.set_down(true).await;
    let before = r.idp.requests().await;
    poll(
        "a refresh tried while the provider is down",
        WAIT,
        || async {
            assert_eq!(status(&r, &client, "/auth").await, StatusCode::NO_CONTENT);
            (r.idp.requests().await.token > before.token).then_some(())
        },
    )
    .await;
    assert_eq!(status(&r, &client, "/auth").await, StatusCode::NO_CONTENT);
    assert_eq!(status(&r, &client, "/me").await, StatusCode::OK);
    assert_unreachable_counted(&r, &client).await;
}

/// `identify_bridge_session_revalidations_total{outcome="unreachable"}` is on the last
/// replica's metrics (the counter is the process's, shared by the tests of this binary).
async fn assert_unreachable_counted(r: &Replicas, client: &reqwest::Client) {
    let metrics = client
        .get(format!("{}/metrics", r.addresses.last().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("identify_bridge_session_revalidations_total{provider=\"google\",outcome=\"unreachable\"}"),
        "{metrics}"
    );
}

/// A userinfo answer over its cap (256 KiB) at a re-validation is refused like an unreachable
/// provider: the session goes on, nothing in the answer is read (a name changed at the provider
/// does not reach the profile), and the failure is counted.
#[tokio::test]
async fn an_oversized_userinfo_answer_at_revalidation_is_refused_and_keeps_the_session() {
    let (r, client) = signed_in(Stores::Sqlite, "revalidate_secs = 1\n", NO_REFRESH_TOKEN).await;
    let id = user_id(&r, &client).await;
    r.idp
        .set_claims(SUB, json!({"name": "Ana Oversized"}))
        .await;
    r.idp.set_userinfo_padding(Some(2 * 1024 * 1024)).await;
    kept_through_a_revalidation(&r, &client, false).await;
    assert_eq!(status(&r, &client, "/me").await, StatusCode::OK);
    assert_eq!(
        profile(&r, &id).await["traits"]["enrichment_full_name"],
        "Ana Souza",
        "the oversized answer was read"
    );
    assert_unreachable_counted(&r, &client).await;
}

// ------------------------------------------------------------------ back-channel logout

/// Register the first replica's back-channel logout URI with the test provider.
async fn with_backchannel_logout(r: &Replicas) {
    let client = IdpClient::web(
        "google",
        CLIENT_SECRET,
        &format!("{}/callback/google", r.public_url),
    )
    .with_backchannel_logout(&format!("{}/backchannel-logout/google", r.addresses[0]));
    r.idp.add_client(client).await;
}

/// The `sid` the bridge stored for `subject`'s session (from the ID token).
async fn stored_sid(r: &Replicas, subject: &str) -> Option<String> {
    let sql = "select sid from user_session where subject = $1";
    if r.database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&r.database_url).await.unwrap();
        sqlx::query_scalar(sql)
            .bind(subject)
            .fetch_one(&pool)
            .await
            .unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&r.database_url).await.unwrap();
        sqlx::query_scalar(sql)
            .bind(subject)
            .fetch_one(&pool)
            .await
            .unwrap()
    }
}

async fn a_backchannel_logout_ends_the_session_everywhere(stores: Stores) {
    let r = bridge(stores, "", "").await;
    with_backchannel_logout(&r).await;
    let (alice, bob) = (browser(), browser());
    sign_in(&r, &alice, "google-consumer").await;
    sign_in(&r, &bob, "someone-else").await;
    let sid = stored_sid(&r, SUB).await;
    assert!(sid.is_some(), "the ID token's sid is kept with the session");
    // The provider posts to the first replica; the session is used on the last.
    r.idp
        .send_backchannel_logout("google", SUB, sid.as_deref())
        .await;
    assert_eq!(status(&r, &alice, "/auth").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&r, &alice, "/me").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&r, &bob, "/auth").await, StatusCode::NO_CONTENT);
    // By subject alone (no sid), too.
    sign_in(&r, &alice, "google-consumer").await;
    r.idp.send_backchannel_logout("google", SUB, None).await;
    assert_eq!(status(&r, &alice, "/auth").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&r, &bob, "/auth").await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_backchannel_logout_ends_the_session_on_sqlite() {
    a_backchannel_logout_ends_the_session_everywhere(Stores::Sqlite).await;
}

#[tokio::test]
async fn a_backchannel_logout_received_by_one_replica_ends_the_session_on_another_with_database_sessions(
) {
    a_backchannel_logout_ends_the_session_everywhere(Stores::PgDatabase).await;
}

#[tokio::test]
async fn a_backchannel_logout_received_by_one_replica_ends_the_session_on_another_with_redis_sessions(
) {
    a_backchannel_logout_ends_the_session_everywhere(Stores::PgRedis).await;
}

#[tokio::test]
async fn forged_replayed_expired_and_nonce_carrying_logout_tokens_are_refused_and_end_nothing() {
    let r = bridge(Stores::PgDatabase, "", "").await;
    let client = browser();
    sign_in(&r, &client, "google-consumer").await;
    let now = chrono::Utc::now().timestamp();
    let claims = || {
        json!({
            "iss": r.idp.issuer,
            "aud": "google",
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            "sub": SUB,
        })
    };
    let with = |key: &str, value: Value| {
        let mut c = claims();
        c[key] = value;
        c
    };
    let header = json!({"typ": "logout+jwt"});
    let post = |token: String| {
        let url = format!("{}/backchannel-logout/google", r.addresses[0]);
        let client = reqwest::Client::new();
        async move {
            client
                .post(url)
                .form(&[("logout_token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    // A valid token with its payload changed: the signature no longer matches.
    let signed = r.idp.sign(header.clone(), &claims()).await;
    let mut parts: Vec<String> = signed.split('.').map(str::to_string).collect();
    let mut payload: Value = serde_json::from_slice(&b64url_decode(&parts[1])).unwrap();
    payload["sub"] = json!("someone-else");
    parts[1] = b64url_encode(payload.to_string().as_bytes());
    let forged = parts.join(".");
    let mut refused = vec![("forged", forged)];
    for (what, token_claims) in [
        ("issued an hour ago", with("iat", json!(now - 3600))),
        ("expired", with("exp", json!(now - 3600))),
        ("carrying a nonce", with("nonce", json!("n-1"))),
        ("for another audience", with("aud", json!("someone-else"))),
        ("without the event", with("events", json!({}))),
    ] {
        refused.push((what, r.idp.sign(header.clone(), &token_claims).await));
    }
    refused.push(("not a JWT", "junk".to_string()));
    for (what, token) in refused {
        let response = post(token).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{what}: {body}");
        assert_eq!(
            status(&r, &client, "/auth").await,
            StatusCode::NO_CONTENT,
            "a {what} token ends nothing"
        );
    }
    let good = r.idp.sign(header.clone(), &claims()).await;
    assert_eq!(post(good.clone()).await.status(), StatusCode::OK);
    assert_eq!(status(&r, &client, "/auth").await, StatusCode::UNAUTHORIZED);
    sign_in(&r, &client, "google-consumer").await;
    let replay = post(good).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "a replayed token");
    assert_eq!(status(&r, &client, "/auth").await, StatusCode::NO_CONTENT);
}

/// The profile as the admin API shows it.
async fn profile(r: &Replicas, id: &str) -> Value {
    let got: Value = reqwest::Client::new()
        .get(format!("{}/api/users/{id}", r.addresses[0]))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    got["data"].clone()
}

/// A name changed at the provider after sign-in reaches the profile and the sink as a second
/// identify call at the next re-validation; a re-validation with nothing changed writes and
/// sends nothing. `provider` chooses the path: a refresh token, or userinfo alone.
async fn changed_traits_at_revalidation_reach_the_profile_and_the_sink(stores: Stores, rule: &str) {
    let sink = TestSink::start().await;
    let extra = format!(
        "[admin]\napi_key_hashes = [\"{}\"]\n\
         [[sinks]]\nname = \"seed\"\nformat = \"seed\"\nurl = \"{}\"\n\
         backoff_base_ms = 50\nbackoff_cap_secs = 1\n",
        hex::encode(Sha256::digest(ADMIN_KEY.as_bytes())),
        sink.url
    );
    let session = "revalidate_secs = 1\n";
    let r = match stores {
        Stores::Sqlite => spawn_on_sqlite(&format!("[session]\n{session}"), &extra).await,
        _ => {
            spawn_replicas(
                2,
                &format!("[session]\nstore = \"database\"\n{session}"),
                &extra,
            )
            .await
        }
    };
    r.idp.set_offline(Some(rule)).await;
    let refresh = rule != NO_REFRESH_TOKEN;
    let client = browser();
    sign_in(&r, &client, "google-consumer").await;
    let id = user_id(&r, &client).await;
    let first = sink.wait_for(1, WAIT).await;
    assert_eq!(first[0].body["traits"]["name"], "Ana Souza");
    assert_eq!(
        profile(&r, &id).await["traits"]["enrichment_full_name"],
        "Ana Souza"
    );

    r.idp
        .set_claims(SUB, json!({"name": "Ana Souza Lima"}))
        .await;
    kept_through_a_revalidation(&r, &client, refresh).await;
    let got = sink.wait_for(2, WAIT).await;
    let second = &got[1].body;
    assert_eq!(second["user_id"], id.as_str());
    assert_eq!(second["traits"]["name"], "Ana Souza Lima");
    assert_eq!(second["traits"]["enrichment_full_name"], "Ana Souza Lima");
    assert_eq!(second["context"]["first_sign_in"], false);
    let changed = profile(&r, &id).await;
    assert_eq!(
        changed["traits"]["enrichment_full_name"], "Ana Souza Lima",
        "{changed}"
    );
    assert_eq!(
        changed["provenance"]["enrichment_full_name"]["source"], "claims:/name",
        "{changed}"
    );

    // Nothing changed since: the re-validation (the request waits for it) writes nothing and
    // enqueues nothing.
    kept_through_a_revalidation(&r, &client, refresh).await;
    assert_eq!(profile(&r, &id).await["updated_at"], changed["updated_at"]);
    let store = Store::connect(&r.database_url).await.unwrap();
    let stats = store.outbox_stats(chrono::Utc::now()).await.unwrap();
    let rows: i64 = stats.iter().map(|s| s.pending + s.delivered + s.dead).sum();
    assert_eq!(rows, 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_name_changed_at_the_provider_reaches_the_sink_at_a_refresh_on_sqlite() {
    changed_traits_at_revalidation_reach_the_profile_and_the_sink(Stores::Sqlite, GOOGLE_OFFLINE)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_name_changed_at_the_provider_reaches_the_sink_through_userinfo_on_postgres() {
    changed_traits_at_revalidation_reach_the_profile_and_the_sink(
        Stores::PgDatabase,
        NO_REFRESH_TOKEN,
    )
    .await;
}

// ------------------------------------------------------------------ ending sessions

async fn an_erased_user_is_refused_everywhere(stores: Stores) {
    let r = bridge(stores, "", "").await;
    let client = browser();
    sign_in(&r, &client, "google-consumer").await;
    let id = user_id(&r, &client).await;
    let erased = reqwest::Client::new()
        .delete(format!("{}/api/users/{id}", r.addresses[0]))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    assert_eq!(status(&r, &client, "/auth").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&r, &client, "/me").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_erased_users_database_sessions_are_refused_by_auth_and_me() {
    an_erased_user_is_refused_everywhere(Stores::PgDatabase).await;
}

#[tokio::test]
async fn an_erased_users_redis_sessions_are_refused_by_auth_and_me() {
    an_erased_user_is_refused_everywhere(Stores::PgRedis).await;
}

#[tokio::test]
async fn a_session_whose_profile_is_gone_is_refused_even_when_it_outlived_the_erasure() {
    let r = bridge(Stores::PgRedis, "", "").await;
    let client = browser();
    sign_in(&r, &client, "google-consumer").await;
    let id = user_id(&r, &client).await;
    // The profile goes from the database alone: the Redis session is left behind.
    let store = identify_bridge::store::Store::connect(&r.database_url)
        .await
        .unwrap();
    assert!(store.delete_user(&id).await.unwrap());
    assert_eq!(status(&r, &client, "/auth").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&r, &client, "/me").await, StatusCode::UNAUTHORIZED);
    store.close().await;
}

async fn sign_out_everywhere(stores: Stores) {
    let r = bridge(stores, "", "").await;
    let (laptop, phone, other) = (browser(), browser(), browser());
    sign_in(&r, &laptop, "google-consumer").await;
    sign_in(&r, &phone, "google-consumer").await;
    sign_in(&r, &other, "someone-else").await;
    let last = r.addresses.last().unwrap();
    let done = laptop
        .post(format!("{last}/profile/sign-out-everywhere"))
        .header("origin", r.public_url.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/login");
    for browser in [&laptop, &phone] {
        assert_eq!(status(&r, browser, "/auth").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(status(&r, &other, "/auth").await, StatusCode::NO_CONTENT);

    // The same through the admin API.
    sign_in(&r, &laptop, "google-consumer").await;
    sign_in(&r, &phone, "google-consumer").await;
    let id = user_id(&r, &laptop).await;
    let ended: Value = reqwest::Client::new()
        .delete(format!("{}/api/users/{id}/sessions", r.addresses[0]))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ended["data"]["sessions_ended"], 2, "{ended}");
    for browser in [&laptop, &phone] {
        assert_eq!(status(&r, browser, "/auth").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(status(&r, &other, "/auth").await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_of_the_profile_only_on_sqlite() {
    sign_out_everywhere(Stores::Sqlite).await;
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_of_the_profile_only_with_redis_sessions() {
    sign_out_everywhere(Stores::PgRedis).await;
}

#[tokio::test]
async fn sign_out_everywhere_needs_a_same_origin_request() {
    let r = bridge(Stores::Sqlite, "", "").await;
    let client = browser();
    sign_in(&r, &client, "google-consumer").await;
    let refused = client
        .post(format!("{}/profile/sign-out-everywhere", r.addresses[0]))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(status(&r, &client, "/auth").await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_session_ends_after_its_maximum_lifetime_however_active() {
    let r = bridge(Stores::Sqlite, "max_lifetime_secs = 1\n", "").await;
    let client = browser();
    sign_in(&r, &client, "google-consumer").await;
    wait_for(&r, &client, "/auth", StatusCode::UNAUTHORIZED).await;
    assert_eq!(status(&r, &client, "/me").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_sends_the_id_token_hint_and_post_logout_redirect_uri() {
    let r = bridge(Stores::Sqlite, "", "").await;
    let client = browser();
    sign_in(&r, &client, "google-consumer").await;
    let out = client
        .post(format!("{}/logout", r.addresses[0]))
        .header("origin", r.public_url.as_str())
        .form(&[("return_to", "/login")])
        .send()
        .await
        .unwrap();
    let target = url::Url::parse(&location(&out)).unwrap();
    let query: std::collections::HashMap<_, _> = target.query_pairs().into_owned().collect();
    let hint = query.get("id_token_hint").expect("id_token_hint sent");
    let claims = crate::idp::jwt_payload(hint);
    assert_eq!(claims["sub"], SUB);
    assert_eq!(claims["aud"], "google");
    assert_eq!(
        query.get("post_logout_redirect_uri").map(String::as_str),
        Some(format!("{}/login", r.public_url).as_str())
    );
    assert_eq!(status(&r, &client, "/auth").await, StatusCode::UNAUTHORIZED);
}
