//! Logs and traces through `tracing`. Logs: JSON in production, readable in development.
//! Traces (off unless `telemetry.otlp_endpoint` is set): the same spans, exported with
//! OpenTelemetry as OTLP over HTTP (protobuf) to `{otlp_endpoint}/v1/traces`, in batches, with
//! W3C `traceparent` taken from incoming requests ([`continue_trace`]) and sent on outgoing ones
//! ([`trace_headers`]).

use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::{fmt, prelude::*, EnvFilter, Layer};
use url::Url;

use crate::config::LogFormat;

/// The `[telemetry]` section: where traces go. Absent endpoint: no traces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// The OTLP collector's base URL (e.g. `http://otel-collector:4318`); spans are sent to
    /// `{otlp_endpoint}/v1/traces`. Unset: traces are off.
    pub otlp_endpoint: Option<Url>,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Fraction of new traces kept, 0 to 1; a request whose `traceparent` says "sampled" is
    /// always kept (parent-based).
    pub sample_ratio: f64,
    /// Longest a finished span waits before its batch is sent, in milliseconds.
    pub export_delay_ms: u64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: None,
            service_name: "identify-bridge".into(),
            sample_ratio: 1.0,
            export_delay_ms: 5000,
        }
    }
}

impl TelemetrySettings {
    /// Check the section; the error names the key and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let key = |k: &str| format!("telemetry.{k}");
        if let Some(url) = &self.otlp_endpoint {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err((key("otlp_endpoint"), "must be an http(s) URL with a host".into()));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err((
                    key("otlp_endpoint"),
                    "must be the collector's base URL, without a query or fragment".into(),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err((key("sample_ratio"), "must be between 0 and 1".into()));
        }
        if self.service_name.trim().is_empty() {
            return Err((key("service_name"), "must not be empty".into()));
        }
        if !(10..=60_000).contains(&self.export_delay_ms) {
            return Err((key("export_delay_ms"), "must be 10 to 60000".into()));
        }
        Ok(())
    }

    /// `{otlp_endpoint}/v1/traces`, keeping a path the base URL already has.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.as_ref()?;
        Some(format!("{}/v1/traces", base.as_str().trim_end_matches('/')))
    }
}

/// The running trace exporter; [`Traces::shutdown`] sends what is still buffered.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Flush and stop the exporter (on a blocking thread: the batch processor waits for it).
    pub async fn shutdown(self) {
        let provider = self.provider;
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "the trace exporter did not shut down cleanly");
            }
        })
        .await;
    }
}

/// Install the global subscriber once, logs only. `RUST_LOG` overrides `level` when set.
pub fn init(format: LogFormat, level: &str) {
    let _ = install(format, level, None);
}

/// [`init`], and traces when `telemetry.otlp_endpoint` is set. Must run inside the Tokio
/// runtime (the exporter sends through it).
pub fn init_with_traces(
    format: LogFormat,
    level: &str,
    telemetry: &TelemetrySettings,
) -> anyhow::Result<Option<Traces>> {
    let Some(endpoint) = telemetry.traces_url() else {
        init(format, level);
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(10))
        .with_http_client(ExportClient::new()?)
        .build()
        .map_err(|e| anyhow::anyhow!("telemetry.otlp_endpoint: {e}"))?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(telemetry.export_delay_ms))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            telemetry.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(telemetry.service_name.clone())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("identify-bridge");
    install(format, level, Some(tracer));
    Ok(Some(Traces { provider }))
}

fn install(format: LogFormat, level: &str, tracer: Option<opentelemetry_sdk::trace::Tracer>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => fmt::layer().compact().boxed(),
    };
    // Spans are exported at INFO whatever the log level: a quiet log still traces.
    let traces = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(LevelFilter::INFO)
    });
    let result = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .try_init();
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// Make `span` continue the trace of an incoming request's `traceparent`, if it has a valid one.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The current span's `traceparent` (empty when traces are off), for an outgoing request.
pub fn trace_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(&mut headers))
    });
    headers
}

/// The exporter's HTTP client: the service's reqwest, run on the service's Tokio runtime (the
/// batch processor calls it from its own thread).
#[derive(Debug)]
struct ExportClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    fn new() -> anyhow::Result<ExportClient> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("traces need the Tokio runtime"))?;
        Ok(ExportClient { http, runtime })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: axum::http::Request<Bytes>,
    ) -> Result<axum::http::Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let request = reqwest::Request::try_from(request)?;
        let sent = self.runtime.spawn(async move {
            let response = http.execute(request).await?;
            let mut answer = axum::http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_go_to_v1_traces_under_the_base_url() {
        let mut settings = TelemetrySettings::default();
        assert_eq!(settings.traces_url(), None, "off by default");
        settings.otlp_endpoint = Some(Url::parse("http://collector:4318").unwrap());
        assert_eq!(
            settings.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        settings.otlp_endpoint = Some(Url::parse("https://otel.example.com/otlp/").unwrap());
        assert_eq!(
            settings.traces_url().as_deref(),
            Some("https://otel.example.com/otlp/v1/traces")
        );
    }

    #[test]
    fn bad_settings_name_their_key() {
        let cases = [
            ("otlp_endpoint", r#"{"otlp_endpoint": "ftp://collector"}"#),
            ("otlp_endpoint", r#"{"otlp_endpoint": "http://collector:4318/?x=1"}"#),
            ("sample_ratio", r#"{"sample_ratio": 1.5}"#),
            ("export_delay_ms", r#"{"export_delay_ms": 0}"#),
        ];
        for (key, json) in cases {
            let settings: TelemetrySettings = serde_json::from_str(json).unwrap();
            let (named, _) = settings.validate().unwrap_err();
            assert_eq!(named, format!("telemetry.{key}"), "{json}");
        }
    }
}
