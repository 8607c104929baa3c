//! The whole product in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by .ci/run) driven over WebDriver. Opens /login, chooses the
//! development provider, types a persona, lands on the profile page and checks the traits
//! shown; saves screenshots of the profile page and the dashboard under target/screenshots/.
//! Every page on the way is audited with axe-core (WCAG 2.1 A and AA rules: labels, contrast,
//! names, landmarks, keyboard focus), the engine behind Lighthouse's accessibility score,
//! installed from tests/idp's lock file.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use identify_bridge::config::Settings;
use identify_bridge::startup::Application;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_chromedriver() -> (tokio::process::Child, u16) {
    let port = free_port();
    let child = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect(
            "chromedriver is needed for the browser test: apt-get install chromium chromium-driver",
        );
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (child, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

/// Run axe-core on the page the browser shows; panics listing any violation.
async fn audit(browser: &fantoccini::Client, page: &str) {
    let violations = axe_violations(browser).await;
    assert!(
        violations.is_empty(),
        "{page}: accessibility violations:\n{}",
        serde_json::to_string_pretty(&violations).unwrap()
    );
}

/// axe-core's violations on the current page: `{id, impact, help, nodes}` each.
async fn axe_violations(browser: &fantoccini::Client) -> Vec<serde_json::Value> {
    let axe = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/idp/node_modules/axe-core/axe.min.js"
    ))
    .expect("axe-core comes from `npm ci --prefix tests/idp` (scripts/test runs it)");
    browser.execute(&axe, vec![]).await.unwrap();
    let violations = browser
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
              .then((r) => done(r.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
              }))))
              .catch((e) => done([{ id: 'axe-failed', help: String(e) }]));"#,
            vec![],
        )
        .await
        .unwrap();
    violations.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_person_signs_in_through_the_development_provider_in_a_real_browser() {
    // fantoccini's TLS stack enables two rustls providers; choose one (WebDriver here is http).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test-signing-key.pem"
        ),
        data.path().join("dev-idp-signing-key.pem"),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = Settings::load_with_env(None, Vec::new()).unwrap();
    let (settings, dev) = identify_bridge::dev::prepare(base, addr, data.path()).unwrap();
    let app = Application::build_full(settings, listener, Some(dev))
        .await
        .unwrap();
    let stop = app.stop_token();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let url = format!("http://{addr}");

    let (_driver, port) = start_chromedriver().await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,1400"]
        }),
    );
    let browser = ClientBuilder::rustls()
        .expect("rustls")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect to chromedriver");

    browser.goto(&format!("{url}/login")).await.unwrap();
    audit(&browser, "/login").await;
    browser
        .find(Locator::LinkText("Continue with Development provider"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The development provider's form: type a person.
    browser
        .wait()
        .for_element(Locator::Id("f-name"))
        .await
        .unwrap();
    audit(&browser, "the development provider's sign-in form").await;
    let field = |id: &'static str| browser.find(Locator::Id(id));
    field("f-name")
        .await
        .unwrap()
        .send_keys("Grace Hopper")
        .await
        .unwrap();
    field("f-email")
        .await
        .unwrap()
        .send_keys("grace@navy.example")
        .await
        .unwrap();
    field("f-company")
        .await
        .unwrap()
        .send_keys("US Navy")
        .await
        .unwrap();
    field("f-title")
        .await
        .unwrap()
        .send_keys("Director of Engineering")
        .await
        .unwrap();
    field("f-city")
        .await
        .unwrap()
        .send_keys("Arlington")
        .await
        .unwrap();
    field("f-country")
        .await
        .unwrap()
        .send_keys("US")
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[value=typed]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Back on the bridge: the profile page.
    browser
        .wait()
        .for_element(Locator::Id("traits-title"))
        .await
        .unwrap();
    let page = browser.source().await.unwrap();
    for expected in [
        "Grace Hopper",
        "Director of Engineering",
        "US Navy",
        "Arlington",
        "director",
        "engineering",
        "enrichment_country_code",
    ] {
        assert!(
            page.contains(expected),
            "the profile page lacks {expected:?}"
        );
    }
    assert!(page.contains("profile created at this sign-in"));
    audit(&browser, "the profile page").await;
    let screenshots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    std::fs::write(
        screenshots.join("profile.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    browser.goto(&format!("{url}/admin")).await.unwrap();
    let dashboard = browser.source().await.unwrap();
    assert!(
        dashboard.contains("grace@navy.example"),
        "the dashboard lists the sign-in"
    );
    audit(&browser, "/admin").await;
    // The audit itself can fail: an image without a text alternative is caught.
    browser
        .execute(
            "document.querySelector('main').appendChild(document.createElement('img'))",
            vec![],
        )
        .await
        .unwrap();
    let caught = axe_violations(&browser).await;
    assert!(caught.iter().any(|v| v["id"] == "image-alt"), "{caught:?}");
    std::fs::write(
        screenshots.join("dashboard.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    browser.close().await.unwrap();
    stop.cancel();
}
