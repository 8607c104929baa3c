//! Access policies of one provider: `allowed_email_domains`, `allowed_hosted_domains` (Google
//! `hd`) and `required_groups` (any of). [`check`] is pure; the callback runs it after the
//! sign-in is verified and before anything is written, so a refused person leaves no profile,
//! session or outbox row behind.
//!
//! The refusal page names the rule in plain words. It lists the allowed email and Workspace
//! domains (the person can tell which account to use) but never the required groups (group
//! names and ids are the organisation's internals); the operator's log line has the detail.

use crate::config::ProviderSettings;

/// What the policies read about the person signing in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Applicant<'a> {
    /// The email address, when the provider says it is confirmed.
    pub verified_email: Option<&'a str>,
    /// Google's `hd` from the ID token.
    pub hosted_domain: Option<&'a str>,
    /// The person's groups; `None` when the provider said there are groups it did not list.
    pub groups: Option<&'a [String]>,
}

/// The rule that refused a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    EmailDomain,
    HostedDomain,
    RequiredGroups,
    /// `required_groups` is set, and the groups could not be read (an unresolved Entra overage).
    GroupsUnknown,
}

impl Rule {
    /// The bounded reason label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Rule::EmailDomain => "refused_email_domain",
            Rule::HostedDomain => "refused_hosted_domain",
            Rule::RequiredGroups => "refused_required_groups",
            Rule::GroupsUnknown => "refused_groups_unknown",
        }
    }

    /// The configuration key of the rule.
    pub fn key(self) -> &'static str {
        match self {
            Rule::EmailDomain => "allowed_email_domains",
            Rule::HostedDomain => "allowed_hosted_domains",
            Rule::RequiredGroups | Rule::GroupsUnknown => "required_groups",
        }
    }
}

/// A refused sign-in: the rule, what the person is told, and what the operator's log says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sign-in refused by `providers.{provider}.{}`: {detail}", .rule.key())]
pub struct Refusal {
    pub rule: Rule,
    pub provider: String,
    /// Plain words for the person signing in.
    pub message: String,
    /// For the operator's log: the domain or group count that failed (never the address).
    pub detail: String,
}

/// Checks the provider's policies in order: email domain, Workspace domain (`hosted_domains`:
/// the kind's `allowed_hosted_domains`, `Quirks::allowed_hosted_domains`), groups.
pub fn check(
    settings: &ProviderSettings,
    hosted_domains: &[String],
    who: &Applicant,
) -> Result<(), Refusal> {
    let refuse = |rule, message: String, detail: String| Refusal {
        rule,
        provider: settings.name.clone(),
        message,
        detail,
    };
    let allowed = &settings.allowed_email_domains;
    if !allowed.is_empty() {
        let domain = who
            .verified_email
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase());
        if !domain.as_deref().is_some_and(|d| listed(allowed, d)) {
            let (message, detail) = match &domain {
                Some(d) => (
                    format!(
                        "This service only accepts accounts with an email address at {}. You \
                         signed in with an address at {d}: sign in with another account.",
                        list(allowed)
                    ),
                    format!("email domain {d} is not allowed"),
                ),
                None => (
                    format!(
                        "This service only accepts accounts with an email address at {}, \
                         confirmed by the sign-in provider. Your account has no confirmed email \
                         address: sign in with another account.",
                        list(allowed)
                    ),
                    "no email confirmed by the provider".to_string(),
                ),
            };
            return Err(refuse(Rule::EmailDomain, message, detail));
        }
    }
    let hd = who.hosted_domain.map(str::to_ascii_lowercase);
    if !hosted_domains.is_empty() && !hd.as_deref().is_some_and(|d| listed(hosted_domains, d)) {
        let (message, detail) = match &hd {
            Some(d) => (
                format!(
                    "This service only accepts Google Workspace accounts of {}. You signed \
                     in with an account of {d}: sign in with another account.",
                    list(hosted_domains)
                ),
                format!("Workspace domain (hd) {d} is not allowed"),
            ),
            None => (
                format!(
                    "This service only accepts Google Workspace accounts of {}. You signed \
                     in with a personal Google account: sign in with your work account.",
                    list(hosted_domains)
                ),
                "no Workspace domain (hd): a personal account".to_string(),
            ),
        };
        return Err(refuse(Rule::HostedDomain, message, detail));
    }
    let required = &settings.required_groups;
    if !required.is_empty() {
        let Some(groups) = who.groups else {
            return Err(refuse(
                Rule::GroupsUnknown,
                "This service only accepts members of certain groups, and your account belongs \
                 to too many groups for the sign-in to list them, so membership could not be \
                 checked. Ask the service's administrator for help."
                    .into(),
                "the groups could not be read (group overage without graph = true, or Graph \
                 failed)"
                    .into(),
            ));
        };
        if !groups.iter().any(|g| required.contains(g)) {
            return Err(refuse(
                Rule::RequiredGroups,
                "This service only accepts members of certain groups, and your account is not in \
                 any of them. Ask the service's administrator to add you."
                    .into(),
                format!("none of the account's {} groups is required", groups.len()),
            ));
        }
    }
    Ok(())
}

fn listed(allowed: &[String], domain: &str) -> bool {
    allowed.iter().any(|a| a.eq_ignore_ascii_case(domain))
}

/// "a.com", "a.com or b.com", "a.com, b.com or c.com".
fn list(domains: &[String]) -> String {
    match domains {
        [] => String::new(),
        [one] => one.to_ascii_lowercase(),
        [rest @ .., last] => format!(
            "{} or {}",
            rest.iter()
                .map(|d| d.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(", "),
            last.to_ascii_lowercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> ProviderSettings {
        serde_json::from_value::<ProviderSettings>(serde_json::json!({
            "name": "p", "client_id": "c"
        }))
        .unwrap()
    }

    #[test]
    fn each_rule_refuses_with_its_reason_and_allows_what_it_lists() {
        let mut p = provider();
        p.allowed_email_domains = vec!["Acme.io".into(), "acme.dev".into()];
        let at = |email| Applicant {
            verified_email: Some(email),
            ..Applicant::default()
        };
        assert!(check(&p, &[], &at("ana@ACME.io")).is_ok());
        let refused = check(&p, &[], &at("ana@gmail.com")).unwrap_err();
        assert_eq!(refused.rule.reason(), "refused_email_domain");
        assert!(
            refused.message.contains("acme.io or acme.dev"),
            "{}",
            refused.message
        );
        assert!(
            !refused.detail.contains("ana"),
            "no address in the log: {}",
            refused.detail
        );
        assert!(
            check(&p, &[], &at("ana@sub.acme.io")).is_err(),
            "exact domains only"
        );
        assert!(
            check(&p, &[], &Applicant::default()).is_err(),
            "no confirmed email"
        );

        let hosted = vec!["acme.io".to_string()];
        let mut p = provider();
        let hd = |hd| Applicant {
            hosted_domain: hd,
            ..Applicant::default()
        };
        assert!(check(&p, &hosted, &hd(Some("acme.io"))).is_ok());
        let personal = check(&p, &hosted, &hd(None)).unwrap_err();
        assert_eq!(personal.rule, Rule::HostedDomain);
        assert!(personal.message.contains("personal Google account"));

        p.required_groups = vec!["staff".into()];
        let groups = |g: &'static [String]| Applicant {
            hosted_domain: Some("acme.io"),
            groups: Some(g),
            ..Applicant::default()
        };
        assert_eq!(
            check(&p, &hosted, &groups(&[])).unwrap_err().rule,
            Rule::RequiredGroups
        );
        let unknown = Applicant {
            hosted_domain: Some("acme.io"),
            ..Applicant::default()
        };
        assert_eq!(
            check(&p, &hosted, &unknown).unwrap_err().rule,
            Rule::GroupsUnknown
        );
        let member: &'static [String] = Box::leak(Box::new(["x".to_string(), "staff".to_string()]));
        assert!(check(&p, &hosted, &groups(member)).is_ok());
    }
}
