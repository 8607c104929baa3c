//! Okta: the issuer is the org (`https://{domain}`) or a custom authorization server
//! (`https://{domain}/oauth2/{id}`). Its ID tokens are thin in the code flow, so userinfo is
//! always called (the generic flow does that for every provider with the endpoint).

/// The issuer for an Okta `domain` (a host, or a full URL for custom/test setups) and
/// optional authorization server id.
pub fn issuer(domain: &str, authorization_server: Option<&str>) -> String {
    let base = if domain.contains("://") {
        domain.trim_end_matches('/').to_string()
    } else {
        format!("https://{}", domain.trim_end_matches('/'))
    };
    match authorization_server {
        Some(id) if !id.is_empty() => format!("{base}/oauth2/{id}"),
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn org_and_custom_authorization_servers() {
        assert_eq!(
            super::issuer("acme.okta.com", None),
            "https://acme.okta.com"
        );
        assert_eq!(
            super::issuer("acme.okta.com", Some("default")),
            "https://acme.okta.com/oauth2/default"
        );
        assert_eq!(
            super::issuer("http://127.0.0.1:9/", Some("x")),
            "http://127.0.0.1:9/oauth2/x"
        );
    }
}
