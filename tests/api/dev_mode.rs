//! `identify-bridge dev`: the development provider, SQLite and the built-in Identify API as the
//! sink, on a temp data directory and a random port. A sign-in over HTTP creates a profile, its
//! identify call reaches the built-in Identify API through the outbox with a client-credentials
//! token, and the dashboard lists it.

use std::time::Duration;

use identify_bridge::config::Settings;
use reqwest::StatusCode;

use crate::harness::{client, poll, try_poll, AppBuilder};
use crate::helpers::location;

#[tokio::test]
async fn a_dev_sign_in_creates_a_profile_and_its_identify_call_reaches_the_built_in_api() {
    sign_in_and_see_it_delivered("").await;
}

#[tokio::test]
async fn an_own_identify_api_section_keeps_the_local_sink_delivering() {
    // Someone's own key, and only keys required: before, the local sink's calls were refused
    // (HTTP 401, invalid API key) and every sign-in became a dead letter.
    sign_in_and_see_it_delivered(&format!(
        "[identify_api]\nrequire = [\"key\"]\napi_key_hashes = [\"{}\"]\n",
        sha256_hex("my-own-key")
    ))
    .await;
}

#[test]
fn dev_relaxes_the_login_rate_limit_unless_one_is_configured() {
    let data = tempfile::tempdir().unwrap();
    let addr = "127.0.0.1:1".parse().unwrap();
    let base =
        Settings::load_with_env(None, Vec::new(), &identify_bridge::providers::KINDS).unwrap();
    let (settings, _) = identify_bridge::dev::prepare(base, addr, data.path()).unwrap();
    assert!(
        settings.rate_limit.login_per_minute >= 1000,
        "{:?}",
        settings.rate_limit
    );
    let base = Settings::load_with_env(
        None,
        vec![(
            "IDENTIFY_BRIDGE__RATE_LIMIT__LOGIN_PER_MINUTE".into(),
            "5".into(),
        )],
        &identify_bridge::providers::KINDS,
    )
    .unwrap();
    let (settings, _) = identify_bridge::dev::prepare(base, addr, data.path()).unwrap();
    assert_eq!(settings.rate_limit.login_per_minute, 5);
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Sign in through `dev` (configured with `toml`) and see the identify call arrive at the
/// built-in API, the development notice on the pages, and the dashboard list it.
async fn sign_in_and_see_it_delivered(toml: &str) {
    let app = AppBuilder::new().toml(toml).dev_provider().start().await;
    assert!(
        app.data_dir().join("dev/identify-bridge.db").exists(),
        "dev keeps its database in the data directory"
    );
    let (url, store) = (app.address.clone(), app.store.clone());
    let client = client();

    // Every page says it is development mode: sign-in, an error page, and (below) the profile.
    for path in ["/login", "/no-such-page"] {
        let page = client.get(format!("{url}{path}")).send().await.unwrap();
        let page = page.text().await.unwrap();
        assert!(page.contains("Development mode"), "{path}: {page}");
    }

    // The bridge sends the browser to its development provider…
    let login = client.get(format!("{url}/login/dev")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let authorize = location(&login);
    assert!(
        authorize.starts_with(&format!("{url}/dev-idp/authorize?")),
        "{authorize}"
    );
    let form = client.get(&authorize).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let page = form.text().await.unwrap();
    assert!(
        page.contains("DEVELOPMENT PROVIDER"),
        "the provider's page says what it is"
    );
    // …where the person picks a persona (the form's hidden fields carry the request).
    let query: Vec<(String, String)> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let mut fields = query.clone();
    fields.push(("action".into(), "persona".into()));
    fields.push(("persona".into(), "marcus".into()));
    let chosen = client
        .post(format!("{url}/dev-idp/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
    let callback = location(&chosen);
    assert!(
        callback.starts_with(&format!("{url}/callback/dev?")),
        "{callback}"
    );
    let done = client.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);

    let me: serde_json::Value = client
        .get(format!("{url}/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = me["user_id"].as_str().unwrap().to_string();
    let profile = client.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(profile.status(), StatusCode::OK);
    let profile = profile.text().await.unwrap();
    assert!(
        profile.contains(&user_id) && profile.contains("Development mode"),
        "{profile}"
    );
    assert_eq!(
        me["traits"]["enrichment_employment_seniority"], "executive",
        "{me}"
    );

    // The identify call arrives at the built-in Identify API through the outbox.
    let delivered = try_poll(Duration::from_secs(10), || async {
        let calls = store.identify_calls(&user_id).await.unwrap();
        (!calls.is_empty()).then_some(calls)
    })
    .await;
    let Some(received) = delivered else {
        let dead = store.list_dead(10).await.unwrap();
        let pending = store.messages_for_user(&user_id).await.unwrap();
        panic!("not delivered; dead: {dead:?}; messages: {pending:?}");
    };
    assert_eq!(received.len(), 1, "one identify call for one sign-in");
    let (_, traits, context) = &received[0];
    assert_eq!(traits["email"], me["email"]);
    assert_eq!(
        traits["enrichment_full_name"],
        me["traits"]["enrichment_full_name"]
    );
    assert_eq!(context.as_ref().unwrap()["provider"], "dev");
    // The API commits the call before the sink's answer reaches the worker, so the outbox row is
    // marked delivered a moment after the call is visible: wait for that too.
    let stats = poll(
        "the outbox row delivered",
        Duration::from_secs(5),
        || async {
            let stats = store.outbox_stats(chrono::Utc::now()).await.unwrap();
            (stats[0].delivered == 1).then_some(stats)
        },
    )
    .await;
    assert_eq!(stats[0].pending, 0, "{stats:?}");

    // The bridge's own identify call repeated the sign-in's values: the profile still says
    // where each came from (before, every trait turned `api:identify · inferred`).
    let stored = store.get_user(&user_id).await.unwrap().unwrap();
    for (name, provenance) in stored.provenance.as_object().unwrap() {
        if name.starts_with("enrichment_") {
            assert_ne!(provenance["source"], "api:identify", "{name}: {provenance}");
        }
    }
    let profile = client.get(format!("{url}/")).send().await.unwrap();
    let profile = profile.text().await.unwrap();
    assert!(
        profile.contains("claims:/given_name") && !profile.contains("api:identify"),
        "{profile}"
    );

    let dashboard = client
        .get(format!("{url}/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dashboard.contains(&user_id),
        "the dashboard lists the call and the sign-in"
    );
    assert!(dashboard.contains("Identify calls received by the API"));
}

/// `identify-bridge dev` as a child process on a random port; the banner read from stderr.
pub(crate) struct DevProcess {
    child: tokio::process::Child,
    pub url: String,
    pub curl: String,
}

impl DevProcess {
    pub async fn start(data_dir: &std::path::Path, config: Option<&std::path::Path>) -> DevProcess {
        use tokio::io::AsyncBufReadExt;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_identify-bridge"));
        command
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (key, _) in std::env::vars() {
            if key.starts_with("IDENTIFY_BRIDGE") {
                command.env_remove(key);
            }
        }
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut url, mut curl) = (None, None);
        while url.is_none() || curl.is_none() {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the banner within 30 s")
                .unwrap()
                .expect("dev exited before its banner");
            if let Some(rest) = line.trim().strip_prefix("sign in") {
                url = Some(rest.trim().trim_end_matches("/login").to_string());
            }
            if line.starts_with("curl ") {
                curl = Some(line);
            }
        }
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let dev = DevProcess {
            child,
            url: url.unwrap(),
            curl: curl.unwrap(),
        };
        let client = client();
        let ready = format!("{}/readyz", dev.url);
        poll(
            "dev answers /readyz 200",
            Duration::from_secs(10),
            || async {
                let response = client.get(&ready).send().await.ok()?;
                (response.status() == StatusCode::OK).then_some(())
            },
        )
        .await;
        dev
    }

    pub async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Run a command line in bash, as a person pasting it would.
async fn bash(line: &str) -> std::process::Output {
    tokio::process::Command::new("bash")
        .arg("-c")
        .arg(line)
        .output()
        .await
        .unwrap()
}

/// The text of `<code id="identify-curl">` on the dashboard, unescaped.
fn dashboard_curl(page: &str) -> String {
    let start = page
        .find("<code id=\"identify-curl\">")
        .expect("the curl on the dashboard");
    let rest = &page[start + "<code id=\"identify-curl\">".len()..];
    let code = &rest[..rest.find("</code>").unwrap()];
    code.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_banner_curl_sends_an_identify_call_and_keeps_working_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let dev = DevProcess::start(data.path(), None).await;
    let sent = bash(&dev.curl).await;
    assert!(
        sent.status.success(),
        "the printed curl failed: {}{}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
    assert_eq!(answer["status"], "success", "{answer}");

    let dashboard = reqwest::get(format!("{}/admin", dev.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        dashboard_curl(&dashboard),
        dev.curl,
        "the dashboard shows the same command"
    );
    assert!(dashboard.contains("demo-user-1"), "the call is listed");
    let first = dev.curl.replace(&dev.url, "URL");
    dev.stop().await;

    // Same data directory, new process and port: the same key and secret.
    let dev = DevProcess::start(data.path(), None).await;
    assert_eq!(dev.curl.replace(&dev.url, "URL"), first);
    let sent = bash(&dev.curl).await;
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    dev.stop().await;
}

#[tokio::test]
async fn with_an_own_identify_api_section_both_the_printed_curl_and_the_own_key_work() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[identify_api]\nrequire = [\"key\"]\napi_key_hashes = [\"{}\"]\n",
            sha256_hex("my-own-key")
        ),
    )
    .unwrap();
    let dev = DevProcess::start(data.path(), Some(&config)).await;
    let sent = bash(&dev.curl).await;
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let own = reqwest::Client::new()
        .post(format!("{}/api/identify", dev.url))
        .header("KEY", "my-own-key")
        .json(&serde_json::json!({"user_id": "own-1", "user_traits": {}, "timestamp": "2024-01-15T09:30:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        own.status(),
        StatusCode::OK,
        "{}",
        own.text().await.unwrap()
    );
    dev.stop().await;
}
