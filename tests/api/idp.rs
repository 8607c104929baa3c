//! Test OpenID Provider harness: spawns `node tests/idp/server.mjs` (a real `oidc-provider`
//! instance, see `tests/idp/README.md`) and talks to its `/__control/` endpoints.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// How long to wait for the server's ready line, per attempt: a ceiling (node loads
/// oidc-provider in about a second on a quiet machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Starts tried before a silent provider fails the test.
const READY_ATTEMPTS: u32 = 3;
/// How long to wait for another test process's `npm ci`.
const INSTALL_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// A running test OpenID Provider. The node process is killed when this is dropped.
pub struct TestIdp {
    /// e.g. `http://127.0.0.1:41234/oauth2/default`
    pub issuer: String,
    pub port: u16,
    child: Child,
    // Held open so the server (started with IDP_EXIT_ON_STDIN_EOF=1) exits if we die.
    _stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

/// A client registered at the test IdP.
#[derive(Debug, Clone)]
pub struct IdpClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    /// e.g. `["authorization_code", "refresh_token"]` or `["client_credentials"]`.
    /// Empty means the server default (`authorization_code`, `refresh_token`).
    pub grant_types: Vec<String>,
    /// Where the provider posts back-channel logout tokens (ID tokens then carry `sid`).
    pub backchannel_logout_uri: Option<String>,
    /// Registered `token_endpoint_auth_method`; `None`: basic and post both accepted.
    pub token_endpoint_auth_method: Option<String>,
    /// `private_key_jwt`: the client's public keys (`{"keys": [...]}`).
    pub jwks: Option<Value>,
}

impl IdpClient {
    /// A confidential web client for the authorization-code flow (+ refresh tokens).
    pub fn web(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        IdpClient {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: vec![redirect_uri.to_owned()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            backchannel_logout_uri: None,
            token_endpoint_auth_method: None,
            jwks: None,
        }
    }

    /// This client with a back-channel logout URI.
    pub fn with_backchannel_logout(mut self, uri: &str) -> Self {
        self.backchannel_logout_uri = Some(uri.to_owned());
        self
    }

    /// A machine client that only uses the client-credentials grant.
    pub fn service(client_id: &str, client_secret: &str) -> Self {
        IdpClient {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            backchannel_logout_uri: None,
            token_endpoint_auth_method: None,
            jwks: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": self.redirect_uris,
        });
        if !self.grant_types.is_empty() {
            v["grant_types"] = json!(self.grant_types);
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            v["backchannel_logout_uri"] = json!(uri);
        }
        if let Some(method) = &self.token_endpoint_auth_method {
            v["token_endpoint_auth_method"] = json!(method);
        }
        if let Some(jwks) = &self.jwks {
            v["jwks"] = jwks.clone();
        }
        v
    }
}

/// Start `node server.mjs` with `config` on `port` (0: any); its stdout lines, and its stderr
/// collected in the background.
fn spawn_node(
    config: &Value,
    port: u16,
) -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    Arc<Mutex<String>>,
) {
    let server = idp_dir().join("server.mjs");
    let mut child = Command::new("node")
        .arg(&server)
        .current_dir(idp_dir())
        .env("IDP_CONFIG", config.to_string())
        .env("IDP_EXIT_ON_STDIN_EOF", "1")
        .env("IDP_PORT", port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("failed to spawn `node {}`: {e}", server.display()));
    let stderr = Arc::new(Mutex::new(String::new()));
    {
        let buf = stderr.clone();
        let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if std::env::var_os("IDP_LOG").is_some() {
                    eprintln!("[idp] {line}");
                }
                let mut b = buf.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        });
    }
    let stdout = child.stdout.take().expect("stdout piped");
    (child, BufReader::new(stdout).lines(), stderr)
}

pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("idp")
}

impl TestIdp {
    /// Starts an IdP whose issuer is `http://127.0.0.1:PORT{issuer_path}` (`issuer_path` may be
    /// empty, `/oauth2/default`, `/<tenant-guid>/v2.0`, ...).
    pub async fn start(issuer_path: &str, clients: Vec<IdpClient>) -> TestIdp {
        let config = json!({
            "issuer_path": issuer_path,
            "clients": clients.iter().map(IdpClient::to_json).collect::<Vec<_>>(),
        });
        Self::start_with_config(config).await
    }

    /// Starts an IdP with a raw `IDP_CONFIG` JSON object (see `tests/idp/README.md`), e.g. to
    /// set `access_token_audience`, `access_token_ttl` or `pkce_required`.
    pub async fn start_with_config(config: Value) -> TestIdp {
        Self::start_on_port(config, 0).await
    }

    /// Like [`TestIdp::start_with_config`] on a fixed port (0: any), e.g. to restart a
    /// provider where a bridge expects it.
    pub async fn start_on_port(config: Value, port: u16) -> TestIdp {
        ensure_node_modules().await;

        // A start that prints no ready line in time is tried again (it happened a few times in
        // full runs here, with node alive and silent, on a quiet machine); a provider that exits
        // or fails to print is a failure at once.
        let mut attempt = 1;
        let (mut child, mut lines, stderr, line) = loop {
            let (mut child, mut lines, stderr) = spawn_node(&config, port);
            let ready = tokio::time::timeout(READY_TIMEOUT, lines.next_line()).await;
            match ready {
                Ok(Ok(Some(line))) => break (child, lines, stderr, line),
                other => {
                    // Give the stderr reader a moment to collect the error output.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let status = child.try_wait().ok().flatten();
                    let _ = child.start_kill();
                    let timed_out = other.is_err();
                    let what = match other {
                        Err(_) => format!("timed out after {} s", READY_TIMEOUT.as_secs()),
                        Ok(Ok(None)) => "stdout closed".to_string(),
                        Ok(Err(e)) => format!("stdout read error: {e}"),
                        Ok(Ok(Some(_))) => unreachable!(),
                    };
                    let message = format!(
                        "test IdP did not become ready ({what}, attempt {attempt} of {READY_ATTEMPTS}); exit status: {status:?}\n--- idp stderr ---\n{}",
                        stderr.lock().unwrap()
                    );
                    if !timed_out || status.is_some() || attempt == READY_ATTEMPTS {
                        panic!("{message}");
                    }
                    eprintln!("{message}\nstarting it again");
                    let _ = child.wait().await;
                    attempt += 1;
                }
            }
        };
        // Keep draining stdout so a stray write can never block the server.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "test IdP printed an unexpected ready line {line:?}: {e}\n--- idp stderr ---\n{}",
                stderr.lock().unwrap()
            )
        });
        let issuer = ready["issuer"]
            .as_str()
            .expect("ready line has issuer")
            .to_owned();
        let port = ready["port"].as_u64().expect("ready line has port") as u16;

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");

        let stdin = child.stdin.take();
        TestIdp {
            issuer,
            port,
            child,
            _stdin: stdin,
            stderr,
            http,
        }
    }

    /// The node process's id (the sign-in benchmark reads its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT` (no issuer path).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `{issuer}/.well-known/openid-configuration`
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Everything the server wrote to stderr so far (set `IDP_LOG=1` to stream it live).
    pub fn stderr_log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The discovery document.
    pub async fn discovery(&self) -> Value {
        self.get_json(&self.discovery_url()).await
    }

    /// The current JWKS (`jwks_uri` from discovery).
    pub async fn jwks(&self) -> Value {
        let disco = self.discovery().await;
        let uri = disco["jwks_uri"].as_str().expect("jwks_uri").to_owned();
        self.get_json(&uri).await
    }

    /// Replaces the signing key with a fresh RSA key (new `kid`; the old key leaves the JWKS).
    pub async fn rotate_keys(&self) {
        self.control_post("rotate-keys", json!({})).await;
    }

    /// Registers (or replaces) a client at runtime, e.g. once the bridge's redirect URI (and
    /// its port) is known. The provider keeps its signing key, sessions and tokens.
    pub async fn add_client(&self, client: IdpClient) {
        self.control_post("clients", client.to_json()).await;
    }

    /// `userinfo_sub`: replace `sub` in userinfo responses; `nonce`: replace the `nonce` of
    /// incoming authorization requests. `None` resets that override. Leaves the TTL alone.
    pub async fn set_mode(&self, userinfo_sub: Option<&str>, nonce: Option<&str>) {
        self.control_post(
            "mode",
            json!({ "userinfo_sub": userinfo_sub, "nonce": nonce }),
        )
        .await;
    }

    /// Lifetime (seconds) of access tokens issued from now on; `None` restores the configured
    /// default (600 s unless `access_token_ttl` was configured).
    pub async fn set_access_token_ttl(&self, ttl_secs: Option<u64>) {
        self.control_post("mode", json!({ "access_token_ttl": ttl_secs }))
            .await;
    }

    /// Successful token responses from now on carry a `padding` member of this many
    /// characters; `None` stops it.
    pub async fn set_token_padding(&self, bytes: Option<usize>) {
        self.control_post("mode", json!({ "token_padding": bytes }))
            .await;
    }

    /// The key set (`/jwks`) answers this status from now on; `None` serves it again.
    pub async fn set_jwks_status(&self, status: Option<u16>) {
        self.control_post("mode", json!({ "jwks_status": status }))
            .await;
    }

    /// Successful userinfo responses from now on carry a `padding` member of this many
    /// characters; `None` stops it.
    pub async fn set_userinfo_padding(&self, bytes: Option<usize>) {
        self.control_post("mode", json!({ "userinfo_padding": bytes }))
            .await;
    }

    /// When authorization requests get a refresh token from now on: `consent` (oidc-provider's
    /// own rule), `scope` (Okta, Entra), `access_type` (Google) or `none`; `None` restores the
    /// configured rule.
    pub async fn set_offline(&self, rule: Option<&str>) {
        self.control_post("mode", json!({ "offline": rule })).await;
    }

    /// `true`: every connection to the provider's routes is dropped unanswered (it cannot be
    /// reached) while the control endpoints and the counters go on; `false` serves again.
    pub async fn set_down(&self, down: bool) {
        self.control_post("mode", json!({ "down": down })).await;
    }

    /// How many requests the token endpoint and userinfo have had since the provider started
    /// (also those dropped while down), and how many refreshes it answered with tokens.
    pub async fn requests(&self) -> Requests {
        let mode = self
            .get_json(&format!("{}/__control/mode", self.base_url()))
            .await;
        let count = |route: &str| mode["requests"][route].as_u64().expect("request count");
        Requests {
            token: count("token"),
            userinfo: count("userinfo"),
            refreshed: count("refreshed"),
        }
    }

    /// The `scope`, `prompt` and `access_type` of the last authorization request, as the
    /// client sent them (`null` before the first).
    pub async fn last_authorization(&self) -> Value {
        let mode = self
            .get_json(&format!("{}/__control/mode", self.base_url()))
            .await;
        mode["last_authorization"].clone()
    }

    /// How many requests the key set (`/jwks`) has had since the provider started.
    pub async fn jwks_requests(&self) -> u64 {
        let mode = self
            .get_json(&format!("{}/__control/mode", self.base_url()))
            .await;
        mode["jwks_requests"].as_u64().expect("jwks_requests")
    }

    /// Stop the provider (it cannot be reached any more).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Revoke every grant of the account `sub` at the provider; how many were revoked.
    pub async fn revoke_grants(&self, sub: &str) -> u64 {
        let v = self
            .control_post("revoke-grants", json!({ "sub": sub }))
            .await;
        v["revoked"].as_u64().unwrap_or(0)
    }

    /// Change claims of the account `sub` at the provider, as an admin editing the person's
    /// profile there would: later tokens and userinfo carry them.
    pub async fn set_claims(&self, sub: &str, claims: Value) {
        self.control_post("claims", json!({ "sub": sub, "claims": claims }))
            .await;
    }

    /// Have the provider post a back-channel logout token for `sub` (and `sid`) to the
    /// client's `backchannel_logout_uri`; panics unless the client answered 200.
    pub async fn send_backchannel_logout(&self, client_id: &str, sub: &str, sid: Option<&str>) {
        self.control_post(
            "backchannel-logout",
            json!({ "client_id": client_id, "sub": sub, "sid": sid }),
        )
        .await;
    }

    /// A JWT signed with the provider's current key (RS256, its `kid`), with `header`'s fields
    /// added to the header: for tokens the provider would not issue itself.
    pub async fn sign(&self, header: Value, payload: &Value) -> String {
        let v = self
            .control_post("sign", json!({ "header": header, "payload": payload }))
            .await;
        v["jwt"].as_str().expect("signed JWT").to_owned()
    }

    /// Client-credentials grant (client_secret_basic); returns the JWT access token.
    pub async fn client_credentials_token(
        &self,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> String {
        let v = self
            .client_credentials_response(client_id, secret, scope)
            .await;
        v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in token response: {v}"))
            .to_owned()
    }

    /// Client-credentials grant; returns the whole token response JSON (panics unless 200).
    pub async fn client_credentials_response(
        &self,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> Value {
        let token_endpoint = format!("{}/token", self.issuer);
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let resp = self
            .http
            .post(&token_endpoint)
            .basic_auth(form_urlencode(client_id), Some(form_urlencode(secret)))
            .form(&form)
            .send()
            .await
            .expect("token request");
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "client_credentials token request failed: {status} {body}\n--- idp stderr ---\n{}",
            self.stderr_log()
        );
        serde_json::from_str(&body).expect("token response JSON")
    }

    async fn control_post(&self, what: &str, body: Value) -> Value {
        let url = format!("{}/__control/{what}", self.base_url());
        let resp = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("control request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "POST {url} failed: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn get_json(&self, url: &str) -> Value {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {url} failed: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: bad JSON {e}: {text}"))
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        // kill_on_drop(true) also covers this; be explicit.
        let _ = self.child.start_kill();
    }
}

// -------------------------------------------------------------------------------------------
// npm ci, once per test process and serialized across test processes
// -------------------------------------------------------------------------------------------

fn node_modules_ready() -> bool {
    ["oidc-provider", "standardwebhooks"].iter().all(|package| {
        idp_dir()
            .join("node_modules")
            .join(package)
            .join("package.json")
            .is_file()
    })
}

/// `npm ci --prefix tests/idp` once, unless its packages are there (also for the webhook
/// receiver).
pub(crate) async fn ensure_node_modules() {
    static DONE: OnceLock<()> = OnceLock::new();
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    if DONE.get().is_some() {
        return;
    }
    let _guard = LOCK.lock().await;
    if DONE.get().is_some() {
        return;
    }
    tokio::task::spawn_blocking(install_node_modules_blocking)
        .await
        .expect("npm ci task panicked");
    let _ = DONE.set(());
}

/// Cross-process lock: an atomically created directory next to package.json.
fn install_node_modules_blocking() {
    if node_modules_ready() {
        return;
    }
    let lock_dir = idp_dir().join(".npm-install.lock");
    let started = Instant::now();
    loop {
        match std::fs::create_dir(&lock_dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if node_modules_ready() && !lock_dir.exists() {
                    return;
                }
                // Treat a lock older than the timeout as stale (a crashed installer).
                let stale = std::fs::metadata(&lock_dir)
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() > INSTALL_LOCK_TIMEOUT)
                    .unwrap_or(false);
                if stale {
                    let _ = std::fs::remove_dir(&lock_dir);
                    continue;
                }
                assert!(
                    started.elapsed() < INSTALL_LOCK_TIMEOUT,
                    "timed out waiting for {} (another `npm ci`?)",
                    lock_dir.display()
                );
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => panic!("cannot create {}: {e}", lock_dir.display()),
        }
    }
    struct Unlock(PathBuf);
    impl Drop for Unlock {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _unlock = Unlock(lock_dir);

    if node_modules_ready() {
        return;
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--prefix"])
        .arg(idp_dir())
        .args(["--no-audit", "--no-fund"])
        .stdin(Stdio::null())
        .output()
        .expect("failed to run `npm` (is it on PATH?)");
    assert!(
        out.status.success() && node_modules_ready(),
        "`npm ci --prefix tests/idp` failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// -------------------------------------------------------------------------------------------
// Small helpers for tests (no extra crates)
// -------------------------------------------------------------------------------------------

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
/// Requests the provider has had, by endpoint ([`TestIdp::requests`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requests {
    pub token: u64,
    pub userinfo: u64,
    /// Refresh-token grants answered with tokens.
    pub refreshed: u64,
}

pub fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64URL[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
        }
    }
    out
}

/// base64url decode (padding optional; also accepts the standard alphabet).
pub fn b64url_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => panic!("invalid base64url character {:?}", c as char),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The decoded payload (claims) of a compact JWS, without verifying it.
pub fn jwt_payload(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWT: {jwt}");
    serde_json::from_slice(&b64url_decode(parts[1])).expect("JWT payload is JSON")
}

/// The decoded header of a compact JWS, without verifying it.
pub fn jwt_header(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWT: {jwt}");
    serde_json::from_slice(&b64url_decode(parts[0])).expect("JWT header is JSON")
}

/// PKCE S256 challenge for a verifier.
pub fn pkce_s256(verifier: &str) -> String {
    use sha2::{Digest, Sha256};
    b64url_encode(&Sha256::digest(verifier.as_bytes()))
}

/// application/x-www-form-urlencoded encoding of one value (RFC 6749 §2.3.1 for Basic auth).
pub fn form_urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
