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
//! | `Relay` | a privacy relay that forwards to a real inbox: DuckDuckGo Email Protection, SimpleLogin (and Proton Pass), addy.io / AnonAddy, Firefox Relay, Apple Hide My Email ([`RELAY_DOMAINS`]) |
//! | `Disposable` | a throwaway-inbox domain (Mailinator, Guerrilla Mail, 10MinuteMail, …) from the vendored `disposable-email-domains` list (`disposable_domains.txt`; its version and date are in its first line, `scripts/refresh-disposable-domains` refreshes it) |
//! | `Custom domain` | any other domain |

use std::collections::HashSet;
use std::sync::LazyLock;

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
/// Label for a privacy relay's address.
pub const RELAY: &str = "Relay";
/// Label for a throwaway-inbox domain.
pub const DISPOSABLE: &str = "Disposable";
/// Label for any other domain.
pub const CUSTOM_DOMAIN: &str = "Custom domain";

/// Privacy relays: each address forwards to a person's real inbox, so it is neither
/// throwaway nor an employer's. A domain matches itself and its subdomains (addy.io's
/// `alias@name.anonaddy.com`, Firefox Relay's `name.mozmail.com`).
pub const RELAY_DOMAINS: &[(&str, &str)] = &[
    ("duck.com", "DuckDuckGo Email Protection"),
    ("simplelogin.com", "SimpleLogin"),
    ("simplelogin.co", "SimpleLogin"),
    ("simplelogin.fr", "SimpleLogin"),
    ("simplelogin.io", "SimpleLogin"),
    ("slmail.me", "SimpleLogin"),
    ("aleeas.com", "SimpleLogin"),
    ("8shield.net", "SimpleLogin"),
    ("dralias.com", "SimpleLogin"),
    ("silomails.com", "SimpleLogin"),
    ("slmails.com", "SimpleLogin"),
    ("passinbox.com", "Proton Pass (SimpleLogin)"),
    ("passmail.com", "Proton Pass (SimpleLogin)"),
    ("passmail.net", "Proton Pass (SimpleLogin)"),
    ("addy.io", "addy.io"),
    ("anonaddy.com", "addy.io"),
    ("anonaddy.me", "addy.io"),
    ("mozmail.com", "Firefox Relay"),
    ("privaterelay.appleid.com", "Apple Hide My Email"),
];

/// The vendored disposable-email-domains blocklist: a header of `#` lines (version, date),
/// then one lowercase domain a line.
const DISPOSABLE_LIST: &str = include_str!("disposable_domains.txt");

static DISPOSABLE_DOMAINS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    DISPOSABLE_LIST
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// Which list the disposable label comes from: its first line (package, version, build date).
pub fn disposable_list_version() -> &'static str {
    DISPOSABLE_LIST
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
}

/// The domain and each parent of it (`a.b.example.com`, `b.example.com`, `example.com`).
fn self_and_parents(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest))
        .filter(|d| d.contains('.'))
}

fn normalized(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// True when the domain (or a parent of it) is a privacy relay's.
pub fn is_relay(domain: &str) -> bool {
    let domain = normalized(domain);
    let relay = self_and_parents(&domain).any(|d| RELAY_DOMAINS.iter().any(|(r, _)| *r == d));
    relay
}

/// True when the domain (or a parent of it) is a known disposable / temp-mail domain.
pub fn is_disposable(domain: &str) -> bool {
    let domain = normalized(domain);
    let listed = self_and_parents(&domain).any(|d| DISPOSABLE_DOMAINS.contains(d));
    listed
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

/// True when the domain belongs to a free-mail, relay or disposable-mail provider (never an
/// employer's domain).
pub fn is_free_mail(domain: &str) -> bool {
    consumer_label(domain).is_some() || is_relay(domain) || is_disposable(domain)
}

/// The email provider label: consumer table and relays first, then the provider signals.
pub fn provider_label(domain: &str, google_hd: bool, microsoft_365: bool) -> &'static str {
    if let Some(label) = consumer_label(domain) {
        label
    } else if is_relay(domain) {
        RELAY
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
    fn relay_addresses_are_relays_not_disposable() {
        for domain in [
            "duck.com",
            "simplelogin.com",
            "slmail.me",
            "aleeas.com",
            "addy.io",
            "anonaddy.me",
            "alias-owner.anonaddy.com",
            "mozmail.com",
            "k9x2.mozmail.com",
            "privaterelay.appleid.com",
            "PrivateRelay.AppleID.com.",
        ] {
            assert_eq!(provider_label(domain, false, false), "Relay", "{domain}");
            assert!(
                is_free_mail(domain),
                "{domain} is never an employment domain"
            );
            assert!(
                !is_disposable(domain),
                "{domain} is not in the disposable list"
            );
        }
        assert!(!is_relay("appleid.com") && !is_relay("notduck.com"));
        assert_eq!(provider_label("appleid.com", false, false), "Custom domain");
    }

    #[test]
    fn the_disposable_list_says_which_release_it_is() {
        let version = disposable_list_version();
        assert!(
            version.starts_with("disposable-email-domains ") && version.contains("built 20"),
            "{version}"
        );
        assert!(
            DISPOSABLE_DOMAINS.len() > 1000,
            "{}",
            DISPOSABLE_DOMAINS.len()
        );
        assert!(
            is_disposable("sub.mailinator.com"),
            "a parent domain counts"
        );
        assert!(!DISPOSABLE_DOMAINS
            .iter()
            .any(|d| d.starts_with('#') || d.contains(' ')));
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
