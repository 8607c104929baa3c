//! Social handles from profile/website URL claims (providers.md §5.3). Only the URL is read;
//! nothing is fetched.

use url::Url;

/// Handles found in a set of URLs; the first URL that yields a handle for a network wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handles {
    pub facebook: Option<String>,
    pub github: Option<String>,
    pub linkedin: Option<String>,
    pub twitter: Option<String>,
}

/// Which network a handle belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Facebook,
    Github,
    Linkedin,
    Twitter,
}

const GITHUB_RESERVED: &[&str] = &[
    "about",
    "orgs",
    "settings",
    "login",
    "join",
    "explore",
    "marketplace",
    "pricing",
    "features",
    "topics",
    "collections",
    "trending",
    "sponsors",
    "notifications",
    "issues",
    "pulls",
    "search",
    "enterprise",
    "apps",
    "site",
    "security",
    "contact",
    "new",
    "organizations",
];
const TWITTER_RESERVED: &[&str] = &[
    "home",
    "i",
    "intent",
    "share",
    "search",
    "explore",
    "settings",
    "hashtag",
    "login",
    "signup",
    "tos",
    "privacy",
    "messages",
    "notifications",
];
const FACEBOOK_RESERVED: &[&str] = &[
    "profile",
    "pages",
    "groups",
    "events",
    "people",
    "sharer",
    "share",
    "watch",
    "login",
    "marketplace",
    "gaming",
    "help",
    "policies",
    "photo",
    "story",
];

/// Parses a URL (a missing scheme is taken as https) and returns the network and handle.
pub fn handle_from_url(raw: &str) -> Option<(Network, String)> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > crate::traits::sanitize::MAX_URL_CHARS {
        return None;
    }
    let url = if raw.contains("://") {
        Url::parse(raw).ok()?
    } else {
        Url::parse(&format!("https://{raw}")).ok()?
    };
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host
        .strip_prefix("www.")
        .or_else(|| host.strip_prefix("m."))
        .or_else(|| host.strip_prefix("mobile."))
        .unwrap_or(&host);
    let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
    let first = segments.next()?;
    let first = first.strip_prefix('@').unwrap_or(first);
    let second = segments.next();
    match host {
        "github.com" => {
            let ok = (1..=39).contains(&first.len())
                && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !first.starts_with('-')
                && !first.ends_with('-')
                && !GITHUB_RESERVED.contains(&first.to_ascii_lowercase().as_str());
            ok.then(|| (Network::Github, first.to_owned()))
        }
        "twitter.com" | "x.com" => {
            let ok = (1..=15).contains(&first.len())
                && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !TWITTER_RESERVED.contains(&first.to_ascii_lowercase().as_str());
            ok.then(|| (Network::Twitter, first.to_owned()))
        }
        "facebook.com" | "fb.com" => {
            let ok = (5..=50).contains(&first.len())
                && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
                && !first.ends_with(".php")
                && !FACEBOOK_RESERVED.contains(&first.to_ascii_lowercase().as_str());
            ok.then(|| (Network::Facebook, first.to_owned()))
        }
        h if h == "linkedin.com" || h.ends_with(".linkedin.com") => {
            let handle = second?;
            let ok = first == "in"
                && (3..=100).contains(&handle.len())
                && handle
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '%');
            ok.then(|| (Network::Linkedin, handle.to_owned()))
        }
        _ => None,
    }
}

/// Collects handles from URLs in order; the first per network wins.
pub fn handles<'a>(urls: impl IntoIterator<Item = &'a str>) -> Handles {
    let mut out = Handles::default();
    for raw in urls {
        let Some((network, handle)) = handle_from_url(raw) else {
            continue;
        };
        let slot = match network {
            Network::Facebook => &mut out.facebook,
            Network::Github => &mut out.github,
            Network::Linkedin => &mut out.linkedin,
            Network::Twitter => &mut out.twitter,
        };
        slot.get_or_insert(handle);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_read_from_profile_urls() {
        let cases = [
            (
                "https://www.linkedin.com/in/priya-natarajan/",
                Some((Network::Linkedin, "priya-natarajan")),
            ),
            (
                "https://uk.linkedin.com/in/jdoe",
                Some((Network::Linkedin, "jdoe")),
            ),
            ("https://www.linkedin.com/company/globex", None),
            (
                "https://github.com/octocat",
                Some((Network::Github, "octocat")),
            ),
            (
                "github.com/octocat/hello-world",
                Some((Network::Github, "octocat")),
            ),
            ("https://github.com/settings/profile", None),
            ("https://x.com/jack", Some((Network::Twitter, "jack"))),
            (
                "https://mobile.twitter.com/@jack",
                Some((Network::Twitter, "jack")),
            ),
            ("https://twitter.com/intent/tweet", None),
            (
                "https://facebook.com/zuck.official",
                Some((Network::Facebook, "zuck.official")),
            ),
            ("https://www.facebook.com/profile.php?id=4", None),
            ("javascript:alert(1)", None),
            ("https://example.com/octocat", None),
        ];
        for (url, want) in cases {
            let got = handle_from_url(url);
            assert_eq!(
                got.as_ref().map(|(n, h)| (*n, h.as_str())),
                want,
                "url {url:?}"
            );
        }
    }
}
