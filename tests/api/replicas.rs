//! Several replicas behind one public URL, sharing PostgreSQL (and Redis for sessions): a
//! sign-in started on one finishes on another.

use reqwest::StatusCode;

use crate::harness::{AppBuilder, RunningApp};
use crate::helpers::{location, CLIENT_SECRET};
use crate::idp::{IdpClient, TestIdp};
use crate::pg::TestDatabase;

pub struct Replicas {
    pub addresses: Vec<String>,
    pub public_url: String,
    pub idp: TestIdp,
    /// The database the replicas share (`None` on SQLite).
    pub _db: Option<TestDatabase>,
    pub database_url: String,
    /// Stopped when dropped.
    _apps: Vec<RunningApp>,
    _dir: tempfile::TempDir,
}

/// `n` replicas on one fresh PostgreSQL database; `public_url` is the first replica's address
/// (the "load balancer"); `session_toml` chooses the session store. `extra_toml` is appended
/// to the provider's table first (so leading keys are provider settings).
pub async fn spawn_replicas(n: usize, session_toml: &str, extra_toml: &str) -> Replicas {
    spawn_on(
        n,
        Some(TestDatabase::create().await),
        session_toml,
        extra_toml,
    )
    .await
}

/// One bridge on a fresh SQLite file, set up like [`spawn_replicas`].
pub async fn spawn_on_sqlite(session_toml: &str, extra_toml: &str) -> Replicas {
    spawn_on(1, None, session_toml, extra_toml).await
}

async fn spawn_on(
    n: usize,
    db: Option<TestDatabase>,
    session_toml: &str,
    extra_toml: &str,
) -> Replicas {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addresses: Vec<String> = listeners
        .iter()
        .map(|l| format!("http://{}", l.local_addr().unwrap()))
        .collect();
    let public_url = addresses[0].clone();
    let idp = TestIdp::start(
        "",
        vec![IdpClient::web(
            "google",
            CLIENT_SECRET,
            &format!("{public_url}/callback/google"),
        )],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let database_url = match &db {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("bridge.db").display()),
    };
    let mut apps = Vec::new();
    // Replicas share the session key, as a deployment must (pending sign-ins are sealed cookies).
    let secret = "secret = \"replicas-share-this-session-key-0123456789\"";
    let session_toml = match session_toml.contains("[session]") {
        true => session_toml.replace("[session]", &format!("[session]\n{secret}")),
        false => format!("[session]\n{secret}\n{session_toml}"),
    };
    for listener in listeners {
        let toml = format!(
            "{session_toml}\n[rate_limit]\nlogin_per_minute = 0\n[[providers]]\nname = \"google\"\nkind = \"google\"\nissuer = \"{}\"\nclient_id = \"google\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra_toml}\n",
            idp.issuer
        );
        let app = AppBuilder::new()
            .listener(listener)
            .public_url(&public_url)
            .database(&database_url)
            .toml(&toml)
            .start()
            .await;
        apps.push(app);
    }
    Replicas {
        addresses,
        public_url,
        idp,
        _db: db,
        database_url,
        _apps: apps,
        _dir: dir,
    }
}

pub use crate::harness::client as browser;

impl Replicas {
    /// Start at `/login/google` on replica `start`, follow the IdP, and return the callback
    /// URL rewritten to replica `finish`.
    pub async fn start_on(
        &self,
        client: &reqwest::Client,
        start: usize,
        finish: usize,
        hint: &str,
    ) -> String {
        let response = client
            .get(format!(
                "{}/login/google?login_hint={hint}",
                self.addresses[start]
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let mut next = location(&response);
        loop {
            if next.starts_with(&self.public_url) {
                return next.replacen(&self.public_url, &self.addresses[finish], 1);
            }
            let target = url::Url::parse(&self.idp.base_url())
                .unwrap()
                .join(&next)
                .unwrap();
            next = location(&client.get(target).send().await.unwrap());
        }
    }
}

async fn sign_in_across_replicas(session_toml: &str) {
    let r = spawn_replicas(2, session_toml, "").await;
    let client = browser();
    let callback = r.start_on(&client, 1, 0, "google-consumer").await;
    let done = client.get(callback).send().await.unwrap();
    assert_eq!(
        done.status(),
        StatusCode::SEE_OTHER,
        "{}",
        done.text().await.unwrap()
    );
    for address in &r.addresses {
        let me = client.get(format!("{address}/me")).send().await.unwrap();
        assert_eq!(
            me.status(),
            StatusCode::OK,
            "replica {address} does not see the session"
        );
    }
}

#[tokio::test]
async fn a_sign_in_begun_on_one_replica_finishes_on_another_with_database_sessions() {
    sign_in_across_replicas("[session]\nstore = \"database\"").await;
}

#[tokio::test]
async fn a_sign_in_begun_on_one_replica_finishes_on_another_with_redis_sessions() {
    sign_in_across_replicas(
        "[session]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"",
    )
    .await;
}
