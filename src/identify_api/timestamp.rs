//! `timestamp`: when the user's account was first created.
//!
//! Two forms are read: RFC 3339 (`2020-11-23T22:28:55.111Z`, any offset) and the form of the
//! specification's own sample, `20-11-23T22:28:55.111Z`: a two-digit year `YY-MM-DD` read as
//! `20YY`, the rest as RFC 3339. The value is stored in UTC at millisecond precision and echoed
//! in the response exactly as it was sent.

use chrono::{DateTime, Duration, TimeZone, Utc};

/// How far in the future a creation time may be (clock skew between systems).
const FUTURE_SLACK: Duration = Duration::minutes(5);

/// Parse a creation time; the error says what was expected.
pub fn parse_created_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let expanded;
    let full = if is_two_digit_year(text) {
        expanded = format!("20{text}");
        expanded.as_str()
    } else {
        text
    };
    let parsed = DateTime::parse_from_rfc3339(full)
        .map_err(|_| {
            format!(
                "{text:?} is not a date-time: use RFC 3339 (2020-11-23T22:28:55.111Z) \
                 or YY-MM-DDTHH:MM:SS.sssZ (20-11-23T22:28:55.111Z)"
            )
        })?
        .with_timezone(&Utc);
    if parsed > now + FUTURE_SLACK {
        return Err(format!(
            "{text:?} is in the future; it is the account's creation time"
        ));
    }
    let earliest = Utc
        .with_ymd_and_hms(1970, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(parsed);
    if parsed < earliest {
        return Err(format!("{text:?} is before 1970"));
    }
    Ok(parsed)
}

/// `YY-MM-DDT…`: two digits, a dash, two digits, a dash, two digits, then `T` or `t`.
fn is_two_digit_year(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() > 9
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[2] == b'-'
        && b[3..5].iter().all(u8::is_ascii_digit)
        && b[5] == b'-'
        && b[6..8].iter().all(u8::is_ascii_digit)
        && matches!(b[8], b'T' | b't')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn the_spec_sample_form_is_read_as_a_two_digit_year() {
        let t = parse_created_at("20-11-23T22:28:55.111Z", now()).unwrap();
        assert_eq!(t.to_rfc3339(), "2020-11-23T22:28:55.111+00:00");
    }

    #[test]
    fn rfc3339_with_offsets_is_converted_to_utc() {
        let t = parse_created_at("2021-03-04T05:06:07+02:00", now()).unwrap();
        assert_eq!(t.to_rfc3339(), "2021-03-04T03:06:07+00:00");
    }

    #[test]
    fn nonsense_future_and_ancient_times_are_refused() {
        for bad in [
            "",
            "yesterday",
            "2020-13-01T00:00:00Z",
            "20-11-23",
            "2020-11-23",
            "2030-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "20-02-30T00:00:00Z",
        ] {
            assert!(
                parse_created_at(bad, now()).is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}
