//! `[telemetry]`: where traces go (see `crate::telemetry`). Off unless `otlp_endpoint` is set.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

/// The `[telemetry]` section: where traces go. Absent endpoint: no traces.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
                return Err((
                    key("otlp_endpoint"),
                    "must be an http(s) URL with a host".into(),
                ));
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
            (
                "otlp_endpoint",
                r#"{"otlp_endpoint": "http://collector:4318/?x=1"}"#,
            ),
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
