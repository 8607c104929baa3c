//! The whole product in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by .ci/run) driven over WebDriver. Opens /login, chooses the
//! development provider, types a persona, lands on the profile page and checks the traits
//! shown; saves screenshots of the profile page and the dashboard under target/screenshots/.

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
    let (settings, idp) = identify_bridge::dev::prepare(base, addr, data.path()).unwrap();
    let app = Application::build_full(settings, listener, Some(idp))
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
    browser
        .find(Locator::LinkText("Continue with Development provider"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The development provider's form: type a person.
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
    std::fs::write(
        screenshots.join("dashboard.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    browser.close().await.unwrap();
    stop.cancel();
}
