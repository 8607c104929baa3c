//! Email provider label and employment domain, from the address's domain and provider signals.
//! No DNS or MX lookups (providers.md §5.1).
//!
//! Label vocabulary (readable names, as the spec's examples "Gmail, Outlook, custom domain"):
//!
//! | label | when |
//! | --- | --- |
//! | `Gmail`, `Outlook`, `Yahoo`, `iCloud`, `AOL`, `Proton`, `GMX`, `WEB.DE`, `Yandex`, `Mail.ru`, `QQ`, `NetEase`, `Zoho`, `Fastmail`, `HEY`, `Tuta` | the registrable domain is in the consumer table below |
//! | `Google Workspace` | a Google token with `hd` (and a non-consumer domain) |
//! | `Microsoft 365` | a Microsoft work/school token whose email domain is one of the tenant's Graph `verifiedDomains`, or, without Graph's organization data, `xms_edov` is true |
//! | `Disposable` | a throwaway-inbox domain (Mailinator, Guerrilla Mail, 10MinuteMail, …) from the `disposable-emails` crate's embedded list |
//! | `Custom domain` | any other domain |

/// Consumer mail brands whose every country TLD belongs to them (`outlook.*`, `yahoo.*`, …):
/// matched on the registrable domain's first label.
const BRAND_LABELS: &[(&str, &str)] = &[
    ("outlook", "Outlook"),
    ("hotmail", "Outlook"),
    ("live", "Outlook"),
    ("yahoo", "Yahoo"),
    ("gmx", "GMX"),
    ("yandex", "Yandex"),
];

/// Consumer mail domains matched exactly on the registrable domain.
const DOMAINS: &[(&str, &str)] = &[
    ("gmail.com", "Gmail"),
    ("googlemail.com", "Gmail"),
    ("msn.com", "Outlook"),
    ("passport.com", "Outlook"),
    ("ymail.com", "Yahoo"),
    ("rocketmail.com", "Yahoo"),
    ("icloud.com", "iCloud"),
    ("me.com", "iCloud"),
    ("mac.com", "iCloud"),
    ("aol.com", "AOL"),
    ("aim.com", "AOL"),
    ("proton.me", "Proton"),
    ("protonmail.com", "Proton"),
    ("protonmail.ch", "Proton"),
    ("pm.me", "Proton"),
    ("gmx-topmail.de", "GMX"),
    ("web.de", "WEB.DE"),
    ("ya.ru", "Yandex"),
    ("mail.ru", "Mail.ru"),
    ("bk.ru", "Mail.ru"),
    ("inbox.ru", "Mail.ru"),
    ("list.ru", "Mail.ru"),
    ("qq.com", "QQ"),
    ("foxmail.com", "QQ"),
    ("163.com", "NetEase"),
    ("126.com", "NetEase"),
    ("yeah.net", "NetEase"),
    ("zoho.com", "Zoho"),
    ("zohomail.com", "Zoho"),
    ("fastmail.com", "Fastmail"),
    ("fastmail.fm", "Fastmail"),
    ("hey.com", "HEY"),
    ("tuta.io", "Tuta"),
    ("tutanota.com", "Tuta"),
];

/// Label for a Google Workspace account (`hd` present).
pub const GOOGLE_WORKSPACE: &str = "Google Workspace";
/// Label for a Microsoft work/school account on a tenant-verified domain.
pub const MICROSOFT_365: &str = "Microsoft 365";
/// Label for a throwaway-inbox domain.
pub const DISPOSABLE: &str = "Disposable";
/// Label for any other domain.
pub const CUSTOM_DOMAIN: &str = "Custom domain";

/// True when the domain (or its registrable domain) is a known disposable / temp-mail domain.
pub fn is_disposable(domain: &str) -> bool {
    disposable_emails::is_disposable_domain(domain)
        || registrable_domain(domain).is_some_and(|r| disposable_emails::is_disposable_domain(&r))
}

/// The lowercase domain of an address (after the last `@`), if it looks like a host name.
pub fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let ok = !local.is_empty()
        && domain.contains('.')
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    ok.then_some(domain)
}

/// The registrable domain (`mail.google.com` → `google.com`) per the public suffix list.
pub fn registrable_domain(domain: &str) -> Option<String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() || d.len() > 253 {
        return None;
    }
    let reg = psl::domain_str(&d)?;
    // psl answers for unknown TLDs too; a registrable domain needs a dot.
    reg.contains('.').then(|| reg.to_owned())
}

/// The consumer provider label of a domain, if it is a free-mail domain.
pub fn consumer_label(domain: &str) -> Option<&'static str> {
    let reg = registrable_domain(domain)?;
    if let Some((_, label)) = DOMAINS.iter().find(|(d, _)| *d == reg) {
        return Some(label);
    }
    let first = reg.split('.').next()?;
    BRAND_LABELS
        .iter()
        .find(|(b, _)| *b == first)
        .map(|(_, l)| *l)
}

/// True when the domain belongs to a free-mail or disposable-mail provider (never an
/// employer's domain).
pub fn is_free_mail(domain: &str) -> bool {
    consumer_label(domain).is_some() || is_disposable(domain)
}

/// The email provider label: consumer table first, then the provider signals.
pub fn provider_label(domain: &str, google_hd: bool, microsoft_365: bool) -> &'static str {
    if let Some(label) = consumer_label(domain) {
        label
    } else if google_hd {
        GOOGLE_WORKSPACE
    } else if microsoft_365 {
        MICROSOFT_365
    } else if is_disposable(domain) {
        DISPOSABLE
    } else {
        CUSTOM_DOMAIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_domains_get_their_brand() {
        assert_eq!(consumer_label("gmail.com"), Some("Gmail"));
        assert_eq!(consumer_label("hotmail.co.uk"), Some("Outlook"));
        assert_eq!(consumer_label("yahoo.com.br"), Some("Yahoo"));
        assert_eq!(consumer_label("mail.ru"), Some("Mail.ru"));
        assert_eq!(consumer_label("acme.io"), None);
    }

    #[test]
    fn provider_signals_decide_for_other_domains() {
        assert_eq!(provider_label("acme.io", true, false), "Google Workspace");
        assert_eq!(provider_label("contoso.com", false, true), "Microsoft 365");
        assert_eq!(provider_label("globex.com", false, false), "Custom domain");
        assert_eq!(provider_label("gmail.com", true, true), "Gmail");
        assert_eq!(provider_label("mailinator.com", false, false), "Disposable");
        assert_eq!(
            provider_label("guerrillamail.com", false, false),
            "Disposable"
        );
        assert!(is_free_mail("mailinator.com"), "never an employment domain");
        assert!(!is_disposable("gmail.com") && !is_disposable("contoso.com"));
    }

    #[test]
    fn domains_are_parsed_and_reduced() {
        assert_eq!(
            email_domain("Jane@Contoso.COM").as_deref(),
            Some("contoso.com")
        );
        assert_eq!(email_domain("no-at-sign"), None);
        assert_eq!(email_domain("a@b@evil"), None);
        assert_eq!(
            registrable_domain("mail.acme.co.uk").as_deref(),
            Some("acme.co.uk")
        );
    }
}
