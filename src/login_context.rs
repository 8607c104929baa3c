//! Where a sign-in came from, for the identify call's `context`: the login link's UTM
//! parameters and referrer (taken at `/login/{provider}`, kept in the sealed pending-login
//! cookie), the landing page (`return_to`), and the browser's locale (`Accept-Language`, read at
//! the callback). Pure functions; every value is untrusted text, so each is capped and stripped
//! of control characters, and what does not fit the cookie is dropped, never the sign-in.

use serde::{Deserialize, Serialize};
use url::Url;

/// Longest UTM value kept (characters).
pub const MAX_UTM_CHARS: usize = 100;
/// Longest referrer kept (characters).
pub const MAX_REFERRER_CHARS: usize = 512;
/// Longest locale kept (a BCP 47 tag is rarely over 20).
const MAX_LOCALE_CHARS: usize = 35;

/// The campaign of the login link, under Segment's names (`utm_campaign` is `name`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// The query parameters that carry a campaign, and where each goes.
pub const UTM_PARAMETERS: [&str; 5] = [
    "utm_campaign",
    "utm_source",
    "utm_medium",
    "utm_term",
    "utm_content",
];

impl Campaign {
    /// The campaign in `pairs` (`utm_*` query parameters), if any is set.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Campaign> {
        let mut campaign = Campaign::default();
        for (key, value) in pairs {
            let slot = match key {
                "utm_campaign" => &mut campaign.name,
                "utm_source" => &mut campaign.source,
                "utm_medium" => &mut campaign.medium,
                "utm_term" => &mut campaign.term,
                "utm_content" => &mut campaign.content,
                _ => continue,
            };
            if slot.is_none() {
                *slot = clean(value, MAX_UTM_CHARS);
            }
        }
        (campaign != Campaign::default()).then_some(campaign)
    }

    /// The campaign in a URL's query (a landing page reached from a tagged link).
    pub fn from_url(url: &Url) -> Option<Campaign> {
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        Campaign::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// What `/login/{provider}` learned about where the person came from; kept in the pending
/// login's cookie until the callback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<Campaign>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

impl LoginContext {
    pub fn is_empty(&self) -> bool {
        self.campaign.is_none() && self.referrer.is_none()
    }

    /// Drop the referrer, then the campaign: what goes when the cookie would grow too large.
    pub fn shed(&mut self) -> bool {
        if self.referrer.take().is_some() {
            return true;
        }
        self.campaign.take().is_some()
    }
}

/// The referrer to keep: the `referrer` parameter (a page can pass `document.referrer`), else
/// the `Referer` header unless it is the bridge's own page (its `/login` page links here). An
/// absolute http(s) URL without credentials or fragment, capped; anything else is dropped.
pub fn referrer(param: Option<&str>, header: Option<&str>, own_origin: &str) -> Option<String> {
    let from_header = header
        .and_then(|h| Url::parse(h).ok())
        .filter(|u| u.origin().ascii_serialization() != own_origin)
        .map(String::from);
    let raw = param
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .or(from_header)?;
    let mut url = Url::parse(&raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    clean(url.as_str(), MAX_REFERRER_CHARS)
}

/// The page a sign-in lands on (`return_to`), under Segment's `page` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    pub url: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

impl Page {
    pub fn new(landing: &Url, referrer: Option<String>) -> Page {
        Page {
            url: landing.to_string(),
            path: landing.path().to_string(),
            search: landing.query().map(|q| format!("?{q}")),
            referrer,
        }
    }
}

/// The first language of an `Accept-Language` header (`de-CH,de;q=0.9` → `de-CH`): a language
/// tag of letters, digits and `-`, else nothing. `*` is no locale.
pub fn locale(accept_language: Option<&str>) -> Option<String> {
    let first = accept_language?
        .split(',')
        .next()?
        .split(';')
        .next()?
        .trim();
    let valid = !first.is_empty()
        && first.len() <= MAX_LOCALE_CHARS
        && first.starts_with(|c: char| c.is_ascii_alphabetic())
        && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    valid.then(|| first.to_string())
}

/// `value` trimmed, without control characters, at most `max` characters; `None` when empty.
fn clean(value: &str, max: usize) -> Option<String> {
    let text: String = value
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_parameters_become_a_campaign_with_segment_s_names() {
        let campaign = Campaign::from_pairs([
            ("utm_source", "newsletter"),
            ("utm_campaign", "spring"),
            ("utm_medium", " email\u{7} "),
            ("other", "x"),
        ])
        .unwrap();
        assert_eq!(campaign.name.as_deref(), Some("spring"));
        assert_eq!(campaign.source.as_deref(), Some("newsletter"));
        assert_eq!(campaign.medium.as_deref(), Some("email"));
        assert_eq!(campaign.term, None);
        assert_eq!(Campaign::from_pairs([("utm_source", "  ")]), None);
        let long = "x".repeat(500);
        let capped = Campaign::from_pairs([("utm_content", long.as_str())]).unwrap();
        assert_eq!(capped.content.unwrap().len(), MAX_UTM_CHARS);
        let landing = Url::parse("https://app.example.com/pricing?utm_source=ad&plan=pro").unwrap();
        assert_eq!(
            Campaign::from_url(&landing).unwrap().source.as_deref(),
            Some("ad")
        );
    }

    #[test]
    fn the_referrer_is_an_outside_http_url_without_secrets_or_fragment() {
        let own = "https://login.example.com";
        assert_eq!(
            referrer(None, Some("https://news.example.org/a?b=1#c"), own).as_deref(),
            Some("https://news.example.org/a?b=1")
        );
        assert_eq!(
            referrer(None, Some("https://login.example.com/login?x"), own),
            None,
            "the bridge's own login page is no referrer"
        );
        assert_eq!(
            referrer(
                Some("https://u:p@blog.example.net/"),
                Some("https://other.example/"),
                own
            )
            .as_deref(),
            Some("https://blog.example.net/"),
            "the parameter wins; credentials go"
        );
        assert_eq!(referrer(Some("javascript:alert(1)"), None, own), None);
        assert_eq!(referrer(Some("/relative"), None, own), None);
        let long = format!("https://example.org/{}", "a".repeat(2000));
        assert_eq!(
            referrer(Some(&long), None, own).unwrap().chars().count(),
            MAX_REFERRER_CHARS
        );
    }

    #[test]
    fn the_locale_is_the_first_accepted_language() {
        assert_eq!(
            locale(Some("de-CH,de;q=0.9,en;q=0.8")).as_deref(),
            Some("de-CH")
        );
        assert_eq!(locale(Some("pt-BR")).as_deref(), Some("pt-BR"));
        assert_eq!(locale(Some("en;q=0.5")).as_deref(), Some("en"));
        assert_eq!(locale(Some("*")), None);
        assert_eq!(locale(Some("<script>")), None);
        assert_eq!(locale(None), None);
    }

    #[test]
    fn the_landing_page_is_split_as_segment_s_page() {
        let landing = Url::parse("https://app.example.com/welcome?utm_source=ad").unwrap();
        let page = Page::new(&landing, Some("https://news.example.org/".into()));
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            serde_json::json!({
                "url": "https://app.example.com/welcome?utm_source=ad",
                "path": "/welcome",
                "search": "?utm_source=ad",
                "referrer": "https://news.example.org/",
            })
        );
    }
}
