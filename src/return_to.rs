//! Validation of `return_to`: relative paths on our origin, or origins listed in
//! `server.allowed_return_origins`. Everything is resolved to an absolute URL before it is used
//! as a `Location`, so a browser never re-interprets it.

use url::Url;

/// Longest `return_to` accepted.
pub const MAX_LEN: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReturnToError {
    #[error("the return address is too long")]
    TooLong,
    #[error("the return address contains characters that are not allowed")]
    BadCharacters,
    #[error("the return address must be a path on this site or an allowed origin")]
    NotAllowed,
}

/// Resolve and check `raw` (default `/`). `public_url` is the bridge's URL; `allowed` holds
/// normalised origins (`scheme://host[:port]`).
pub fn validate(
    raw: Option<&str>,
    public_url: &Url,
    allowed: &[String],
) -> Result<Url, ReturnToError> {
    let raw = raw.unwrap_or("/");
    let raw = if raw.is_empty() { "/" } else { raw };
    if raw.len() > MAX_LEN {
        return Err(ReturnToError::TooLong);
    }
    // Browsers drop tabs and newlines and read `\` as `/`; refuse them outright, encoded too.
    let decoded = percent_decode(raw);
    for text in [raw, decoded.as_str()] {
        if text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return Err(ReturnToError::BadCharacters);
        }
    }
    let own_origin = public_url.origin().ascii_serialization();
    if raw.starts_with('/') {
        if raw.starts_with("//") || decoded.starts_with("//") {
            return Err(ReturnToError::NotAllowed);
        }
        let base = Url::parse(&own_origin).map_err(|_| ReturnToError::NotAllowed)?;
        let url = base.join(raw).map_err(|_| ReturnToError::NotAllowed)?;
        if url.origin().ascii_serialization() != own_origin {
            return Err(ReturnToError::NotAllowed);
        }
        return Ok(url);
    }
    let url = Url::parse(raw).map_err(|_| ReturnToError::NotAllowed)?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.host_str().is_none()
    {
        return Err(ReturnToError::NotAllowed);
    }
    // An absolute URL must be spelled in its canonical form (no `https:host`, no `https:/host`).
    let origin = url.origin().ascii_serialization();
    if !raw
        .to_ascii_lowercase()
        .starts_with(&origin.to_ascii_lowercase())
    {
        return Err(ReturnToError::NotAllowed);
    }
    if origin == own_origin || allowed.contains(&origin) {
        Ok(url)
    } else {
        Err(ReturnToError::NotAllowed)
    }
}

/// Decode `%XX` escapes repeatedly (double encoding), lossily.
fn percent_decode(s: &str) -> String {
    let mut current = s.to_string();
    for _ in 0..3 {
        let next = percent_encoding::percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> Result<String, ReturnToError> {
        let public = Url::parse("https://login.example.com/").unwrap();
        validate(Some(raw), &public, &["https://app.example.com".into()]).map(|u| u.to_string())
    }

    #[test]
    fn relative_paths_and_allowed_origins_pass() {
        assert_eq!(check("/").unwrap(), "https://login.example.com/");
        assert_eq!(
            check("/dashboard?tab=1#x").unwrap(),
            "https://login.example.com/dashboard?tab=1#x"
        );
        assert_eq!(
            check("https://app.example.com/welcome").unwrap(),
            "https://app.example.com/welcome"
        );
        assert_eq!(
            check("https://login.example.com/me").unwrap(),
            "https://login.example.com/me"
        );
        assert_eq!(
            validate(None, &Url::parse("http://127.0.0.1:8080").unwrap(), &[])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/"
        );
    }

    #[test]
    fn open_redirect_attacks_are_refused() {
        for attack in [
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/%2F%2Fevil.com",
            "/%5Cevil.com",
            "%2F%2Fevil.com",
            "/%252F%252Fevil.com",
            "https://evil.com",
            "https://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "https://user:pw@app.example.com/",
            "http://app.example.com/",
            "https:evil.com",
            "https:/evil.com",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "\t//evil.com",
            "/\t/evil.com",
            "/%09/evil.com",
            " //evil.com",
            "evil.com",
            "ftp://app.example.com/",
        ] {
            assert!(check(attack).is_err(), "{attack:?} was accepted");
        }
        assert_eq!(
            check(&format!("/{}", "a".repeat(3000))),
            Err(ReturnToError::TooLong)
        );
    }
}
