//! `[retention]`: how long the rows that only grow are kept, and how often the purge runs
//! (`crate::retention` does the purging).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `[retention]` section. Windows are in days (fractions allowed); `0` keeps forever.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Days an Identify API call stays in the call log (and its idempotency key with it: a
    /// repeat after this is applied again). `0`: forever.
    pub identify_calls_days: f64,
    /// Days a delivered outbox message is kept after its delivery. `0`: forever.
    pub delivered_outbox_days: f64,
    /// Days a dead letter is kept after it died (for `outbox dead` and `outbox retry`). `0`: forever.
    pub dead_letters_days: f64,
    /// Seconds between purges.
    pub interval_secs: u64,
    /// Rows deleted per statement, each statement its own short transaction.
    pub batch_rows: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            identify_calls_days: 30.0,
            delivered_outbox_days: 7.0,
            dead_letters_days: 30.0,
            interval_secs: 300,
            batch_rows: 1000,
        }
    }
}

/// The most rows one purge statement may delete: more would hold the write lock too long.
pub const MAX_BATCH_ROWS: u32 = 10_000;

impl RetentionSettings {
    /// Check the section; the error names the key and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let key = |k: &str| format!("retention.{k}");
        for (name, days) in [
            ("identify_calls_days", self.identify_calls_days),
            ("delivered_outbox_days", self.delivered_outbox_days),
            ("dead_letters_days", self.dead_letters_days),
        ] {
            // Up to 1000 years: beyond it a window is not a date (and 0 already means forever).
            if !(0.0..=365_000.0).contains(&days) {
                return Err((key(name), "must be 0 (forever) to 365000 days".into()));
            }
        }
        if self.interval_secs == 0 {
            return Err((key("interval_secs"), "must be at least 1".into()));
        }
        if !(1..=MAX_BATCH_ROWS).contains(&self.batch_rows) {
            return Err((key("batch_rows"), format!("must be 1 to {MAX_BATCH_ROWS}")));
        }
        Ok(())
    }

    /// A window in days as a duration; `None` for 0 (keep forever).
    pub fn window(days: f64) -> Option<Duration> {
        (days > 0.0).then(|| Duration::from_secs_f64(days * 86_400.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_keeps_forever_and_fractions_are_hours() {
        assert_eq!(RetentionSettings::window(0.0), None);
        assert_eq!(
            RetentionSettings::window(0.5),
            Some(Duration::from_secs(43_200))
        );
        assert_eq!(RetentionSettings::default().validate(), Ok(()));
    }

    #[test]
    fn bad_settings_name_their_key() {
        let cases = [
            ("identify_calls_days", r#"{"identify_calls_days": -1}"#),
            ("delivered_outbox_days", r#"{"delivered_outbox_days": 1e9}"#),
            ("dead_letters_days", r#"{"dead_letters_days": -0.5}"#),
            ("interval_secs", r#"{"interval_secs": 0}"#),
            ("batch_rows", r#"{"batch_rows": 0}"#),
            ("batch_rows", r#"{"batch_rows": 10001}"#),
        ];
        for (key, json) in cases {
            let settings: RetentionSettings = serde_json::from_str(json).unwrap();
            let (named, _) = settings.validate().unwrap_err();
            assert_eq!(named, format!("retention.{key}"), "{json}");
        }
    }
}
