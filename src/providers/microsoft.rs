//! Microsoft Entra ID: tenant-specific issuers and the `{tenantid}` template of the
//! multi-tenant authorities (`common`, `organizations`).
//!
//! `/common` and `/organizations` publish `https://login.microsoftonline.com/{tenantid}/v2.0`
//! as their issuer. We keep the issuer check by building the expected issuer from the token's
//! `tid` (read before verification only to choose the issuer), then verifying signature, `iss`,
//! `aud` and the rest against it, and applying the tenant policy to the verified `tid`.

use uuid::Uuid;

use crate::config::MicrosoftSettings;

/// The tenant of personal Microsoft accounts (MSA).
pub const CONSUMER_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// The placeholder in multi-tenant discovery documents.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// The configured issuer: `{authority}/{tenant}/v2.0`, or the override.
pub fn issuer(settings: &MicrosoftSettings) -> String {
    match &settings.issuer {
        Some(issuer) => issuer.as_str().trim_end_matches('/').to_string(),
        None => discovery_base(settings.authority.as_str(), &settings.tenant),
    }
}

/// The discovery base (issuer-like URL) for a tenant: `{authority}/{tenant}/v2.0`.
pub fn discovery_base(authority: &str, tenant: &str) -> String {
    format!("{}/{}/v2.0", authority.trim_end_matches('/'), tenant)
}

/// Why a tenant may not sign in.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TenantError {
    #[error("the token has no valid tenant id (tid)")]
    MissingTid,
    #[error("tenant {0} is not allowed to sign in")]
    NotAllowed(String),
    #[error("personal Microsoft accounts cannot sign in to this provider")]
    ConsumerNotAllowed,
}

/// The tenant policy: a parsed `tid` that the configuration admits.
pub fn check_tenant(
    tid: Option<&str>,
    configured_tenant: &str,
    allowed_tenants: &[Uuid],
) -> Result<String, TenantError> {
    let tid = tid
        .and_then(|t| Uuid::parse_str(t).ok())
        .map(|t| t.hyphenated().to_string())
        .ok_or(TenantError::MissingTid)?;
    if configured_tenant.eq_ignore_ascii_case("organizations") && tid == CONSUMER_TENANT {
        return Err(TenantError::ConsumerNotAllowed);
    }
    if !allowed_tenants.is_empty()
        && !allowed_tenants
            .iter()
            .any(|a| a.hyphenated().to_string() == tid)
    {
        return Err(TenantError::NotAllowed(tid));
    }
    Ok(tid)
}

/// The expected issuer for a token from tenant `tid`, given the discovery issuer (which may be
/// the `{tenantid}` template).
pub fn expected_issuer(discovery_issuer: &str, tid: &str) -> String {
    discovery_issuer.replace(TENANT_PLACEHOLDER, tid)
}

/// Whether an RFC 9207 `iss` response parameter fits a templated issuer.
pub fn iss_matches_template(template: &str, iss: &str) -> bool {
    let Some((prefix, suffix)) = template.split_once(TENANT_PLACEHOLDER) else {
        return template == iss;
    };
    iss.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .is_some_and(|tid| Uuid::parse_str(tid).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORK: &str = "4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b";

    #[test]
    fn tenant_policy() {
        assert_eq!(
            check_tenant(Some(WORK), "common", &[]),
            Ok(WORK.to_string())
        );
        assert_eq!(
            check_tenant(None, "common", &[]),
            Err(TenantError::MissingTid)
        );
        assert_eq!(
            check_tenant(Some("evil"), "common", &[]),
            Err(TenantError::MissingTid)
        );
        assert_eq!(
            check_tenant(Some(CONSUMER_TENANT), "organizations", &[]),
            Err(TenantError::ConsumerNotAllowed)
        );
        assert!(check_tenant(Some(CONSUMER_TENANT), "common", &[]).is_ok());
        assert_eq!(
            check_tenant(
                Some(WORK),
                "common",
                &[Uuid::parse_str(CONSUMER_TENANT).unwrap()]
            ),
            Err(TenantError::NotAllowed(WORK.into()))
        );
    }

    #[test]
    fn issuer_template() {
        let t = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert_eq!(
            expected_issuer(t, WORK),
            format!("https://login.microsoftonline.com/{WORK}/v2.0")
        );
        assert!(iss_matches_template(
            t,
            &format!("https://login.microsoftonline.com/{WORK}/v2.0")
        ));
        assert!(!iss_matches_template(
            t,
            "https://login.microsoftonline.com/x/v2.0"
        ));
        assert!(!iss_matches_template(
            t,
            "https://evil.example/4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b/v2.0"
        ));
    }
}
