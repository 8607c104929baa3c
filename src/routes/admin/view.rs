//! Small things the dashboard pages show: times for people (with the exact time on hover) and
//! counted nouns.

use chrono::{DateTime, Utc};

/// A time as "5 min ago", with the exact UTC time for `title` and the ISO form for `datetime`.
pub struct Ago {
    pub text: String,
    pub exact: String,
    pub iso: String,
}

impl Ago {
    pub fn new(at: DateTime<Utc>, now: DateTime<Utc>) -> Ago {
        Ago {
            text: ago(at, now),
            exact: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            iso: crate::traits::format_time(at),
        }
    }
}

/// "just now", "42 s ago", "5 min ago", "3 h ago", "2 days ago"; a date past a week.
fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    match seconds {
        i64::MIN..=-60 => at.format("%-d %b %Y %H:%M").to_string(),
        -59..=4 => "just now".into(),
        5..=59 => format!("{seconds} s ago"),
        60..=3599 => format!("{} min ago", seconds / 60),
        3600..=86_399 => format!("{} h ago", seconds / 3600),
        86_400..=604_799 => counted(seconds / 86_400, "day", "days") + " ago",
        _ => at.format("%-d %b %Y").to_string(),
    }
}

/// "1 trait", "3 traits".
pub fn counted(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A duration in milliseconds as "850 ms", "2.4 s" or "3 min".
pub fn duration_ms(ms: i64) -> String {
    match ms {
        i64::MIN..=999 => format!("{} ms", ms.max(0)),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min", ms / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let cases = [
            (Duration::seconds(2), "just now"),
            (Duration::seconds(42), "42 s ago"),
            (Duration::minutes(5), "5 min ago"),
            (Duration::hours(3), "3 h ago"),
            (Duration::days(1), "1 day ago"),
            (Duration::days(2), "2 days ago"),
            (Duration::days(30), "2 Nov 2026"),
        ];
        for (before, expected) in cases {
            assert_eq!(ago(now - before, now), expected, "{before:?}");
        }
        let shown = Ago::new(now - Duration::minutes(5), now);
        assert_eq!(shown.exact, "2026-12-02 11:55:00 UTC");
    }

    #[test]
    fn counts_and_durations() {
        assert_eq!(counted(1, "trait", "traits"), "1 trait");
        assert_eq!(counted(0, "trait", "traits"), "0 traits");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(2400), "2.4 s");
        assert_eq!(duration_ms(180_000), "3 min");
    }
}
