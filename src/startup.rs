//! `Application`: bind, build the router and background workers, run until a shutdown signal.
//! Tests build the same application on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, Request};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::config::Settings;
use crate::error;
use crate::identify_api::IdentifyApi;
use crate::pending_login::PendingCookies;
use crate::providers::{self, Providers};
use crate::routes;
use crate::sealed::Keys;
use crate::serve;
use crate::session_store::AnySessionStore;
use crate::state::AppState;
use crate::store::Store;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct Application {
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
    providers: Providers,
    store: Store,
    limits: serve::Limits,
    /// `server.metrics_listen`: its listener and the `/metrics` router.
    metrics: Option<(TcpListener, Router)>,
}

impl Application {
    /// Bind the listener, start provider discovery in the background and build the router.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(settings.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.listen))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Build on an already bound listener (tests bind first to learn the port).
    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        Self::build_full(settings, listener, None).await
    }

    /// Build with `dev`'s parts: the development OpenID provider under `/dev-idp`, the
    /// development notice on every page, the Identify API curl on the dashboard.
    pub async fn build_full(
        settings: Settings,
        listener: TcpListener,
        dev: Option<crate::dev::DevMode>,
    ) -> anyhow::Result<Application> {
        let settings = Arc::new(settings);
        crate::metrics::install();
        let store = Store::connect(settings.database.url.expose())
            .await
            .map_err(|e| anyhow::anyhow!("database: {e}"))?;
        let http = providers::http_client(settings.server.provider_timeout());
        let providers = Providers::new(&settings, http.clone());
        let stop = CancellationToken::new();
        let mut workers = providers.spawn_discovery(
            Duration::from_secs(settings.server.provider_check_secs),
            &stop,
        );
        let session_store = AnySessionStore::from_settings(&settings, &store).await?;
        workers.push(crate::retention::spawn(
            store.clone(),
            crate::retention::Plan::from_settings(&settings),
            stop.clone(),
        ));
        let (identify_api, writer) = IdentifyApi::build(&settings, http.clone(), store.clone());
        workers.extend(writer);
        if !settings.sinks.is_empty() {
            workers.push(crate::outbox::worker::spawn(
                store.clone(),
                settings.clone(),
                stop.clone(),
            ));
        }
        let state = AppState {
            settings: settings.clone(),
            providers: providers.clone(),
            store: store.clone(),
            identify_api,
            sessions: session_store.clone(),
            pending_logins: PendingCookies {
                keys: session_keys(&settings),
                prefix: settings.session.cookie_name.clone(),
                secure: !settings.server.insecure_cookies_allowed(),
                // A minute beyond the login timeout: a late callback then says "took too
                // long" rather than "no longer valid".
                max_age_secs: settings.session.login_timeout_secs + 60,
            },
        };
        let session_layer = SessionManagerLayer::new(session_store)
            .with_name(settings.session.cookie_name.clone())
            .with_http_only(true)
            // Lax, not Strict: the cookie must come back on the redirect from the provider.
            .with_same_site(SameSite::Lax)
            .with_secure(!settings.server.insecure_cookies_allowed())
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
                settings.session.idle_timeout_secs as i64,
            )));
        let mut routes = routes::router(&settings);
        if let Some(dev) = &dev {
            routes = routes
                .nest_service("/dev-idp", dev.idp.router())
                .layer(axum::Extension(dev.identify_curl.clone()));
        }
        let metrics = match settings.server.metrics_listen {
            Some(address) => {
                let listener = TcpListener::bind(address).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on server.metrics_listen {address}: {e}")
                })?;
                Some((
                    listener,
                    routes::health::metrics_router().with_state(state.clone()),
                ))
            }
            None => None,
        };
        let mut router = routes
            .fallback(error::not_found)
            .layer(session_layer)
            .layer(axum::middleware::from_fn({
                let header = settings.server.trusted_proxy_header.clone();
                move |req, next| crate::client_ip::resolve(header.clone(), req, next)
            }))
            .layer(CatchPanicLayer::custom(error::panic_response))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(
                crate::hardening::MAX_BODY_BYTES,
            ))
            .layer(axum::middleware::from_fn(crate::hardening::limit_headers))
            .layer(axum::middleware::from_fn(error::render_errors));
        if dev.is_some() {
            // Outside the error renderer, so error pages get the notice too.
            router = crate::dev::add_notice(router);
        }
        let router = router
            .layer(axum::middleware::from_fn({
                let hsts = settings.server.public_url.scheme() == "https";
                move |req, next| crate::hardening::security_headers(hsts, req, next)
            }))
            .layer(
                ServiceBuilder::new()
                    .layer(SetSensitiveHeadersLayer::new([
                        axum::http::header::AUTHORIZATION,
                        axum::http::header::COOKIE,
                        axum::http::header::SET_COOKIE,
                        HeaderName::from_static("key"),
                        HeaderName::from_static("x-api-key"),
                    ]))
                    .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                    .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                        let id = req
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        // The path only: query strings carry codes and states.
                        let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
                        crate::telemetry::continue_trace(&span, req.headers());
                        span
                    })
                    // Failures are logged once, at their level, by `error::render_errors` (and
                    // `/readyz` by itself); the layer's own ERROR line would repeat each one.
                    .on_failure(()))
                    .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
            )
            .with_state(state);
        Ok(Application {
            listener,
            router,
            stop,
            workers,
            providers,
            store,
            metrics,
            limits: serve::Limits::from_settings(&settings.server),
        })
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A token that stops the server and workers when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Serve until `shutdown` resolves (or the stop token fires), then stop accepting, let
    /// in-flight requests finish within the grace period, and stop the workers.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = self.stop.clone();
        let signal = {
            let stop = stop.clone();
            async move {
                tokio::select! {
                    _ = shutdown => {}
                    _ = stop.cancelled() => {}
                }
                tracing::info!("shutting down: no new connections");
                stop.cancel();
            }
        };
        if let Some((listener, router)) = self.metrics {
            let stop = stop.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await });
                if let Err(e) = served.await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            });
        }
        tokio::spawn(signal);
        let drained = serve::serve(self.listener, self.router, self.limits, stop).await;
        if !drained {
            tracing::warn!("in-flight requests did not finish within the grace period");
        }
        for worker in self.workers {
            let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
        }
        Ok(())
    }
}

/// The session keys from `session.secret`, or one random key for this process, with a warning:
/// without a shared key, a sign-in started on one replica (or before a restart) cannot finish
/// on another.
fn session_keys(settings: &Settings) -> Keys {
    match &settings.session.secret {
        // Checked by `Settings::validate`.
        Some(secret) => Keys::parse(secret.expose()).unwrap_or_else(|_| Keys::random()),
        None => {
            tracing::warn!(
                "session.secret is not set: using a random key for this process only; sign-ins \
                 in progress fail after a restart or on another replica (set session.secret or \
                 session.secret_file, e.g. to `openssl rand -base64 32`)"
            );
            Keys::random()
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
