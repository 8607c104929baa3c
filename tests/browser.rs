//! The whole product in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by .ci/run) driven over WebDriver. Opens /login, chooses the
//! development provider, types a persona, lands on the profile page and checks the traits
//! shown. Then every page (sign-in, the development provider's form, profile, dashboard, the
//! user page, sign-out, an error page) is opened at 390 and 1280 px wide, audited with axe-core
//! (WCAG 2.1 A and AA rules: labels, contrast, names, landmarks, keyboard focus; the engine
//! behind Lighthouse's accessibility score, installed from tests/idp's lock file), checked for
//! sideways scrolling and for words broken mid-way, and saved as target/screenshots/NAME-WIDTH.png.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

#[path = "api/harness.rs"]
mod harness;
use harness::{try_poll, AppBuilder};

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
    let listening = try_poll(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;
    assert!(listening.is_some(), "chromedriver did not start");
    (child, port)
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

/// `{overflow, broken}`: whether the page scrolls sideways, and the words (outside code, where
/// identifiers may wrap anywhere) whose letters the layout put on more than one line.
async fn layout_problems(browser: &fantoccini::Client) -> serde_json::Value {
    browser
        .execute(
            r#"const root = document.documentElement;
            const broken = [];
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
              acceptNode: (node) => node.parentElement.closest('code, pre, svg, script, style, .visually-hidden')
                ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
            });
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              const text = node.textContent;
              const words = /\S{2,}/g;
              for (let m = words.exec(text); m; m = words.exec(text)) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
                if (tops.size < 2) continue;
                // Where the word wraps: after a hyphen, slash, dot or @ is a normal break;
                // between two letters or digits it is a word broken mid-way.
                let previousTop = null;
                for (let i = 0; i < m[0].length; i++) {
                  const letter = document.createRange();
                  letter.setStart(node, m.index + i);
                  letter.setEnd(node, m.index + i + 1);
                  const rect = letter.getBoundingClientRect();
                  const top = Math.round(rect.top);
                  if (previousTop !== null && top > previousTop + 2
                      && /[\p{L}\p{N}]/u.test(m[0][i - 1]) && /[\p{L}\p{N}]/u.test(m[0][i])) {
                    broken.push(m[0]);
                    break;
                  }
                  previousTop = top;
                }
              }
            }
            return { overflow: root.scrollWidth > root.clientWidth, broken, width: window.innerWidth };"#,
            vec![],
        )
        .await
        .unwrap()
}

/// Headless Chromium through a fresh chromedriver (stopped when the child is dropped).
async fn start_browser() -> (tokio::process::Child, fantoccini::Client) {
    // fantoccini's TLS stack enables two rustls providers; choose one (WebDriver here is http).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (driver, port) = start_chromedriver().await;
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
    (driver, browser)
}

#[tokio::test]
async fn a_person_signs_in_through_the_development_provider_in_a_real_browser() {
    let app = AppBuilder::new().dev_provider().start().await;
    let url = app.address.clone();
    let (_driver, browser) = start_browser().await;

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
    let authorize_url = browser.current_url().await.unwrap().to_string();
    type_a_person(
        &browser,
        &[
            ("f-name", "Grace Hopper"),
            ("f-email", "grace@navy.example"),
            ("f-company", "US Navy"),
            ("f-title", "Director of Engineering"),
            ("f-city", "Arlington"),
            ("f-country", "US"),
        ],
    )
    .await;

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
    // Once the bridge's own identify call has gone through the outbox to its own Identify API,
    // the page still shows where each trait came from (the call repeated the values, so their
    // provenance stays the sign-in's).
    harness::poll(
        "the identify call delivered",
        Duration::from_secs(15),
        || async {
            let stats = app.store.outbox_stats(chrono::Utc::now()).await.unwrap();
            (stats.iter().map(|s| s.delivered).sum::<i64>() >= 1).then_some(())
        },
    )
    .await;
    browser.refresh().await.unwrap();
    browser
        .wait()
        .for_element(Locator::Id("traits-title"))
        .await
        .unwrap();
    let page = browser.source().await.unwrap();
    assert!(
        page.contains("claims:/given_name") && !page.contains("api:identify"),
        "after delivery the profile page lost the sign-in's sources"
    );
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

    // Every page at a phone's width and a laptop's.
    let user_link = browser
        .find(Locator::Css("a[href^='/admin/users/']"))
        .await
        .expect("the dashboard links its users")
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let pages = [
        ("login", format!("{url}/login")),
        ("dev-provider", authorize_url),
        ("profile", format!("{url}/")),
        ("dashboard", format!("{url}/admin")),
        ("user", format!("{url}{user_link}")),
        ("logout", format!("{url}/logout")),
        ("error", format!("{url}/no-such-page")),
    ];
    for width in [390u32, 1280] {
        browser.set_window_size(width, 1000).await.unwrap();
        for (name, page_url) in &pages {
            browser.goto(page_url).await.unwrap();
            let label = format!("{name} at {width} px");
            audit(&browser, &label).await;
            let layout = layout_problems(&browser).await;
            assert_eq!(
                layout["width"], width,
                "{label}: the viewport is not that wide"
            );
            assert_eq!(
                layout["overflow"], false,
                "{label} scrolls sideways: {layout}"
            );
            assert_eq!(
                layout["broken"],
                serde_json::json!([]),
                "{label}: words broken mid-way"
            );
            std::fs::write(
                screenshots.join(format!("{name}-{width}.png")),
                browser.screenshot().await.unwrap(),
            )
            .unwrap();
            if *name == "dashboard" {
                let chart = browser.find(Locator::Css(".chart-figure")).await.unwrap();
                std::fs::write(
                    screenshots.join(format!("dashboard-chart-{width}.png")),
                    chart.screenshot().await.unwrap(),
                )
                .unwrap();
            }
        }
    }
    // The checks can fail: a long word in a narrow box breaks.
    browser
        .execute(
            "const p = document.createElement('p'); p.style.width = '3em'; \
             p.style.overflowWrap = 'anywhere'; p.textContent = 'Unbreakablewordhere'; \
             document.querySelector('main').appendChild(p);",
            vec![],
        )
        .await
        .unwrap();
    let layout = layout_problems(&browser).await;
    assert_ne!(layout["broken"], serde_json::json!([]), "{layout}");

    browser.close().await.unwrap();
}

/// Serve `examples/web-app` (the static example, as any file server would) on a random port.
async fn serve_example_app() -> String {
    use axum::http::header::CONTENT_TYPE;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web-app");
    let file = move |name: &'static str, kind: &'static str| {
        let body = std::fs::read_to_string(dir.join(name)).expect("example file");
        axum::routing::get(move || async move { ([(CONTENT_TYPE, kind)], body) })
    };
    let app = axum::Router::new()
        .route("/", file("index.html", "text/html; charset=utf-8"))
        .route("/app.js", file("app.js", "text/javascript"))
        .route(
            "/analytics-stub.js",
            file("analytics-stub.js", "text/javascript"),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// A sink that keeps every JSON body POSTed to it.
async fn serve_sink() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/identify",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/identify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Fill the development provider's form (field id, value) and submit the typed person.
async fn type_a_person(browser: &fantoccini::Client, fields: &[(&str, &str)]) {
    for (id, value) in fields {
        browser
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"))
            .send_keys(value)
            .await
            .unwrap();
    }
    click_when_shown(
        browser,
        Locator::Css("button[value=typed]"),
        "the form's button",
    )
    .await;
}

/// Wait for an element and click it; `what` names it when it never shows.
async fn click_when_shown(browser: &fantoccini::Client, locator: Locator<'_>, what: &str) {
    browser
        .wait()
        .for_element(locator)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn text_of(browser: &fantoccini::Client, id: &str) -> String {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .text()
        .await
        .unwrap()
}

/// The example web app (examples/web-app) end to end: it links to the bridge's sign-in with its
/// analytics anonymous id, reads `/me` back across origins, calls `analytics.identify` with the
/// bridge's user id, and resets analytics at sign-out. The sink must have received an identify
/// call carrying the page's anonymous id and user id.
#[tokio::test]
async fn the_example_web_app_hands_the_same_ids_to_analytics_and_the_sink() {
    let example = serve_example_app().await;
    let (sink_url, received) = serve_sink().await;
    let app = AppBuilder::new()
        .dev_provider()
        .toml(&format!(
            "[server]\nallowed_return_origins = [\"{example}\"]\n\n\
             [[sinks]]\nname = \"example-analytics\"\nformat = \"segment\"\nurl = \"{sink_url}\"\napi_key = \"example-write-key\"\n\
             backoff_base_ms = 50\n"
        ))
        .start()
        .await;
    let (_driver, browser) = start_browser().await;
    let page = format!("{example}/?bridge={}&provider=dev", app.address);

    browser.goto(&page).await.unwrap();
    let sign_in = browser
        .wait()
        .for_element(Locator::Css("#signed-out:not([hidden]) #sign-in"))
        .await
        .expect("signed out at first");
    assert_eq!(text_of(&browser, "status").await, "You are not signed in.");
    let anonymous_id = text_of(&browser, "anonymous-id").await;
    assert!(!anonymous_id.is_empty());
    audit(&browser, "the example web app, signed out").await;
    sign_in.click().await.unwrap();

    // The development provider's form.
    browser
        .wait()
        .for_element(Locator::Id("f-name"))
        .await
        .unwrap();
    type_a_person(
        &browser,
        &[
            ("f-name", "Katherine Johnson"),
            ("f-email", "katherine@nasa.example"),
        ],
    )
    .await;

    // Back on the example page (its return_to), signed in.
    browser
        .wait()
        .for_element(Locator::Css("#signed-in:not([hidden])"))
        .await
        .expect("the example page shows the signed-in user");
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(&example));
    let user_id = text_of(&browser, "user-id").await;
    assert!(!user_id.is_empty());
    assert_eq!(text_of(&browser, "email").await, "katherine@nasa.example");
    assert!(text_of(&browser, "first-sign-in").await.starts_with("yes"));
    assert!(!text_of(&browser, "session-expires").await.is_empty());
    assert_eq!(text_of(&browser, "anonymous-id").await, anonymous_id);
    audit(&browser, "the example web app, signed in").await;

    // The page called analytics.identify with the bridge's user id and its own anonymous id.
    let calls = browser
        .execute("return window.analyticsCalls;", vec![])
        .await
        .unwrap();
    let identify = calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "identify")
        .unwrap_or_else(|| panic!("no analytics.identify call: {calls}"));
    assert_eq!(identify["userId"], user_id.as_str());
    assert_eq!(identify["anonymousId"], anonymous_id.as_str());
    assert_eq!(identify["traits"]["email"], "katherine@nasa.example");

    // The sink received the bridge's identify call for the same person and the same visitor.
    let delivered = harness::poll(
        "the identify call at the sink",
        Duration::from_secs(15),
        || {
            let received = received.clone();
            let user_id = user_id.clone();
            async move {
                received
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|body| body["type"] == "identify" && body["userId"] == user_id.as_str())
                    .cloned()
            }
        },
    )
    .await;
    assert_eq!(
        delivered["anonymousId"],
        anonymous_id.as_str(),
        "{delivered}"
    );

    // Sign-out: analytics forgets the user (a new anonymous id), the bridge ends the session and
    // sends the browser back to the example page.
    click_when_shown(
        &browser,
        Locator::Id("sign-out"),
        "the example's sign-out button",
    )
    .await;
    click_when_shown(
        &browser,
        Locator::Css("form[action='/logout'] button"),
        "the bridge's sign-out page",
    )
    .await;
    // The provider's end-session page (the development provider keeps no session of its own,
    // so it says so and links back to the `post_logout_redirect_uri`: the example page).
    click_when_shown(
        &browser,
        Locator::LinkText("Back to the application"),
        "the provider's sign-out page links back",
    )
    .await;
    browser
        .wait()
        .for_element(Locator::Css("#signed-out:not([hidden])"))
        .await
        .expect("back on the example page, signed out");
    let after = text_of(&browser, "anonymous-id").await;
    assert_ne!(
        after, anonymous_id,
        "analytics.reset() gives the next visitor a new id"
    );
    // The page asked the bridge again (`/me` with the browser's cookies) and was told 401.
    assert_eq!(text_of(&browser, "status").await, "You are not signed in.");

    browser.close().await.unwrap();
}
