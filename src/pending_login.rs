//! The pending login in the browser, not in a store: one sealed cookie per sign-in in
//! progress, named after its `state` (as oauth2-proxy's CSRF cookie and Auth.js's state and
//! PKCE cookies are). `/login/{provider}` writes nothing durable; several tabs each keep their
//! own cookie; a callback removes only the cookie of its own state, so a failed or forged
//! callback for one state never touches another tab's sign-in.
//!
//! The cookie is sealed with the session keys ([`crate::sealed`]) with its name as associated
//! data, scoped to `/callback/{provider}`, `HttpOnly`, `SameSite=Lax` (it must come back on the
//! provider's top-level redirect), `Secure` unless on loopback http, and lives as long as
//! `session.login_timeout_secs`. Single use does not rest on the cookie (a copy could be
//! replayed): the sign-in transaction records the state's hash, unique (`login_state` table).

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use tower_sessions::cookie::{time::Duration, Cookie, SameSite};

use crate::sealed::Keys;
use crate::session::PendingLogin;

/// The largest pending login sealed into a cookie: sealed and base64-encoded it stays under
/// the 4096 bytes browsers keep per cookie, with its name and attributes.
const MAX_PLAIN_BYTES: usize = 2800;

/// Where the cookies go and how long they live (from `session` settings).
#[derive(Debug, Clone)]
pub struct PendingCookies {
    pub keys: Keys,
    /// `session.cookie_name`; each pending login's cookie is `{prefix}_login_{hash}`.
    pub prefix: String,
    pub secure: bool,
    pub max_age_secs: u64,
}

impl PendingCookies {
    /// The cookie's name for a `state`: a hash, so any state text gives a valid, short name.
    fn name(&self, state: &str) -> String {
        let digest = Sha256::digest(state.as_bytes());
        format!("{}_login_{}", self.prefix, hex::encode(&digest[..12]))
    }

    /// A `Set-Cookie` value holding `login`, sealed. When the login link's context would
    /// make the cookie too large for a browser to keep, the context is shed (referrer first,
    /// then campaign): it is analytics, the sign-in is not.
    pub fn set_cookie(&self, login: &PendingLogin) -> HeaderValue {
        let name = self.name(&login.state);
        let mut plain = serde_json::to_vec(login).expect("a pending login serializes");
        let mut login = login.clone();
        while plain.len() > MAX_PLAIN_BYTES && login.context.shed() {
            plain = serde_json::to_vec(&login).expect("a pending login serializes");
        }
        let value = self.keys.seal(name.as_bytes(), &plain);
        let cookie = Cookie::build((name, value))
            .path(callback_path(&login.provider))
            .http_only(true)
            // Lax, not Strict: the cookie must come back on the redirect from the provider.
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(Duration::seconds(self.max_age_secs as i64))
            .build();
        header(&cookie)
    }

    /// The pending login this browser started with `state` at `provider`, if its cookie is
    /// present and opens (one of our keys, this very name, unaltered).
    pub fn find(&self, headers: &HeaderMap, provider: &str, state: &str) -> Option<PendingLogin> {
        let name = self.name(state);
        let sealed = cookie_value(headers, &name)?;
        let plain = self.keys.open(name.as_bytes(), &sealed)?;
        let login: PendingLogin = serde_json::from_slice(&plain).ok()?;
        let same_state = subtle::ConstantTimeEq::ct_eq(login.state.as_bytes(), state.as_bytes());
        (bool::from(same_state) && login.provider == provider).then_some(login)
    }

    /// A `Set-Cookie` value removing the cookie of `state` (and no other).
    pub fn remove_cookie(&self, provider: &str, state: &str) -> HeaderValue {
        let cookie = Cookie::build((self.name(state), ""))
            .path(callback_path(provider))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(Duration::ZERO)
            .build();
        header(&cookie)
    }
}

fn callback_path(provider: &str) -> String {
    format!("/callback/{provider}")
}

fn header(cookie: &Cookie<'_>) -> HeaderValue {
    HeaderValue::from_str(&cookie.to_string()).expect("cookie text is a valid header value")
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar() -> PendingCookies {
        PendingCookies {
            keys: Keys::random(),
            prefix: "ib".into(),
            secure: true,
            max_age_secs: 600,
        }
    }

    fn login(state: &str) -> PendingLogin {
        PendingLogin {
            provider: "idp".into(),
            state: state.into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            return_to: "/".into(),
            started_at: 0,
            anonymous_id: None,
            prompt: None,
            context: Default::default(),
        }
    }

    /// The request headers a browser sends back for these `Set-Cookie` values.
    fn sent_back(set: &[HeaderValue]) -> HeaderMap {
        let pairs: Vec<String> = set
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&pairs.join("; ")).unwrap());
        headers
    }

    #[test]
    fn each_state_finds_its_own_pending_login() {
        let jar = jar();
        let headers = sent_back(&[jar.set_cookie(&login("one")), jar.set_cookie(&login("two"))]);
        assert_eq!(jar.find(&headers, "idp", "one").unwrap().state, "one");
        assert_eq!(jar.find(&headers, "idp", "two").unwrap().state, "two");
        assert!(jar.find(&headers, "idp", "three").is_none());
        assert!(jar.find(&headers, "other", "one").is_none());
    }

    #[test]
    fn the_cookie_is_scoped_sealed_and_short_lived() {
        let jar = jar();
        let set = jar.set_cookie(&login("the-state"));
        let text = set.to_str().unwrap();
        for part in [
            "Path=/callback/idp",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Max-Age=600",
        ] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!text.contains("the-state"), "{text}");
        let removal = jar.remove_cookie("idp", "the-state");
        let removal = removal.to_str().unwrap();
        assert!(removal.contains("Max-Age=0") && removal.contains("Path=/callback/idp"));
        assert!(
            removal.starts_with(&format!("{}=;", jar.name("the-state"))),
            "{removal}"
        );
    }

    #[test]
    fn the_longest_landing_page_and_login_context_still_fit_a_cookie() {
        use crate::login_context::{Campaign, LoginContext};
        let jar = jar();
        let mut long = login(&"s".repeat(43));
        long.nonce = "n".repeat(43);
        long.pkce_verifier = "v".repeat(43);
        long.return_to = format!("https://app.example.com/{}", "p".repeat(2000));
        long.anonymous_id = Some("a".repeat(256));
        let utm = "u".repeat(100);
        long.context = LoginContext {
            campaign: Campaign::from_pairs(
                crate::login_context::UTM_PARAMETERS.map(|k| (k, utm.as_str())),
            ),
            referrer: Some(format!("https://news.example.org/{}", "r".repeat(480))),
        };
        let set = jar.set_cookie(&long);
        assert!(set.len() < 4000, "{} bytes", set.len());
        let found = jar.find(&sent_back(&[set]), "idp", &long.state).unwrap();
        assert_eq!(
            found.return_to, long.return_to,
            "the sign-in itself is kept whole"
        );
        assert!(found.context.referrer.is_none(), "the referrer went first");

        let mut short = login("short");
        short.context = long.context.clone();
        let found = jar
            .find(&sent_back(&[jar.set_cookie(&short)]), "idp", "short")
            .unwrap();
        assert_eq!(found.context, long.context, "with room, all of it is kept");
    }

    #[test]
    fn a_cookie_moved_to_another_state_name_does_not_open() {
        let jar = jar();
        let set = jar.set_cookie(&login("one"));
        let value = set
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1;
        let mut headers = HeaderMap::new();
        let forged = format!("{}={value}", jar.name("two"));
        headers.insert(COOKIE, HeaderValue::from_str(&forged).unwrap());
        assert!(jar.find(&headers, "idp", "two").is_none());
    }
}
