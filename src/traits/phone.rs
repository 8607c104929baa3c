//! Phone numbers normalised to E.164 with `phonenumber` (a libphonenumber port).

use phonenumber::{country, Mode};

/// Normalises one phone number to E.164 (`+14255550109`), using `region` (an ISO alpha-2 code) for
/// numbers written without a country prefix. Invalid or unparseable numbers give `None`.
/// Extensions (`x123`, `ext. 123`) are dropped: E.164 has no place for them.
pub fn normalize(raw: &str, region: Option<&str>) -> Option<String> {
    let lower = raw.trim().to_ascii_lowercase();
    let number = ["ext", "x", "#", ";"]
        .iter()
        .filter_map(|sep| lower.find(sep))
        .min()
        .map_or(lower.as_str(), |i| &lower[..i]);
    let number = number.strip_prefix("tel:").unwrap_or(number).trim();
    // Only what a person writes in a phone number; this also keeps odd input away from the parser.
    if number.is_empty()
        || number.len() > 40
        || !number
            .chars()
            .all(|c| c.is_ascii_digit() || " +()-./".contains(c))
    {
        return None;
    }
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if !(4..=17).contains(&digits) {
        return None;
    }
    let region: Option<country::Id> = region.and_then(|r| r.parse().ok());
    let owned = number.to_owned();
    // The parser is a port with a history of panics on odd input; a bad claim must never take
    // a sign-in down with it.
    let parsed = std::panic::catch_unwind(move || {
        let n = phonenumber::parse(region, &owned).ok()?;
        phonenumber::is_valid(&n).then(|| n.format().mode(Mode::E164).to_string())
    })
    .ok()
    .flatten()?;
    is_e164(&parsed).then_some(parsed)
}

/// True for `+` followed by 2–15 digits.
pub fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalised_to_e164() {
        assert_eq!(
            normalize("+1 (512) 555-0143", None).as_deref(),
            Some("+15125550143")
        );
        assert_eq!(
            normalize("+1 206 266 1000", None).as_deref(),
            Some("+12062661000")
        );
        assert_eq!(
            normalize("(206) 266-1000", Some("US")).as_deref(),
            Some("+12062661000")
        );
        assert_eq!(
            normalize("030 901820", Some("DE")).as_deref(),
            Some("+4930901820")
        );
        assert_eq!(
            normalize("+44 20 7946 0958 ext. 12", None).as_deref(),
            Some("+442079460958")
        );
    }

    #[test]
    fn garbage_is_dropped() {
        assert_eq!(normalize("call me maybe", Some("US")), None);
        assert_eq!(normalize("12", Some("US")), None);
        assert_eq!(normalize("(206) 266-1000", None), None);
        assert_eq!(normalize(&"9".repeat(500), Some("US")), None);
    }
}
