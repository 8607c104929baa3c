//! `GET /authorize` (check the request, show the sign-in form) and `POST /authorize` (build the
//! account from the chosen persona or the typed fields, issue a code, send the browser back).
//!
//! RFC 6749 §4.1.2.1: when the client or redirect URI cannot be trusted, the person gets an
//! error page and is never redirected; every other problem goes back to the client as
//! `error=…`. The request parameters ride along in hidden fields, so the POST checks them all
//! again: they are as untrusted as the query string.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use url::Url;

use super::account::{Account, TypedAccount};
use super::personas::Persona;
use super::request::{AuthParams, ValidRequest};
use super::store::{random_secret, CodeGrant, CODE_TTL};
use super::views::{message_page, SignInPage};
use super::{DevIdp, USER_SCOPES};

/// Longest `state` / `nonce` accepted.
const MAX_OPAQUE_CHARS: usize = 512;

/// What the sign-in form posts: the request again, which button, and the chosen person.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(flatten)]
    params: AuthParams,
    #[serde(default)]
    action: String,
    #[serde(default)]
    persona: String,
    #[serde(flatten)]
    typed: TypedAccount,
}

/// Why a request is refused, and how the person learns about it.
pub enum Refusal {
    /// The client or redirect URI is unknown: an error page, never a redirect.
    Page(String),
    /// Reported to the client at its (registered) redirect URI.
    Redirect {
        /// Boxed: a `Url` is large and the refusal travels in every `Err`.
        to: Box<Url>,
        error: &'static str,
        description: String,
        /// Echoed when the request had one.
        state: String,
    },
}

pub async fn show_sign_in(State(idp): State<DevIdp>, Query(params): Query<AuthParams>) -> Response {
    match check_request(&idp, params) {
        Ok(request) => SignInPage::new(&request, "", TypedAccount::default(), vec![])
            .into_response_with(StatusCode::OK),
        Err(refusal) => refuse(&idp, refusal),
    }
}

#[tracing::instrument(name = "dev_idp_sign_in", skip_all, fields(action = %form.action))]
pub async fn sign_in(State(idp): State<DevIdp>, Form(form): Form<SignInForm>) -> Response {
    let request = match check_request(&idp, form.params) {
        Ok(request) => request,
        Err(refusal) => return refuse(&idp, refusal),
    };
    let account = match form.action.as_str() {
        "cancel" => {
            let refusal = Refusal::Redirect {
                to: Box::new(request.redirect_uri),
                error: "access_denied",
                description: "The person cancelled the sign-in.".into(),
                state: request.params.state,
            };
            return refuse(&idp, refusal);
        }
        "persona" => match Persona::find(&form.persona) {
            Some(persona) => persona.account(),
            None => {
                let errors = vec![("persona", "Choose one of the people listed.".to_string())];
                return SignInPage::new(&request, &form.persona, form.typed, errors)
                    .into_response_with(StatusCode::UNPROCESSABLE_ENTITY);
            }
        },
        "typed" => match form.typed.to_account() {
            Ok(account) => account,
            Err(errors) => {
                return SignInPage::new(&request, &form.persona, form.typed, errors)
                    .into_response_with(StatusCode::UNPROCESSABLE_ENTITY);
            }
        },
        _ => {
            return refuse(
                &idp,
                Refusal::Page("The sign-in form was not filled in as expected.".into()),
            )
        }
    };
    issue_code(&idp, request, account)
}

/// Remember the grant under a fresh code and send the browser back with `code`, `state` and
/// `iss` (RFC 9207, so the client can tell which provider answered).
fn issue_code(idp: &DevIdp, request: ValidRequest, account: Account) -> Response {
    let code = random_secret();
    let grant = CodeGrant {
        client_id: request.client.client_id.clone(),
        redirect_uri: request.redirect_uri.to_string(),
        code_challenge: request.params.code_challenge.clone(),
        nonce: request.params.nonce.clone(),
        scope: request.scope.clone(),
        account,
    };
    if idp.codes().insert(&code, grant, CODE_TTL).is_err() {
        let refusal = Refusal::Redirect {
            to: Box::new(request.redirect_uri),
            error: "temporarily_unavailable",
            description: "Too many sign-ins in progress at the development provider.".into(),
            state: request.params.state,
        };
        return refuse(idp, refusal);
    }
    tracing::info!(client_id = %request.client.client_id, "development provider issued a code");
    let mut url = request.redirect_uri;
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &request.params.state)
        .append_pair("iss", idp.issuer().as_str());
    Redirect::to(url.as_str()).into_response()
}

/// Every check, in the order RFC 6749 asks: client and redirect URI first (page), then the
/// rest (redirect).
pub fn check_request(idp: &DevIdp, params: AuthParams) -> Result<ValidRequest, Refusal> {
    let client = idp
        .client(&params.client_id)
        .filter(|c| c.allows_grant("authorization_code"))
        .ok_or_else(|| {
            Refusal::Page(format!(
                "The application asking you to sign in (client_id {:?}) is not registered with the development provider.",
                truncate(&params.client_id)
            ))
        })?;
    // Exact string match with a registered URI: no prefix or pattern matching.
    let redirect_uri = client
        .redirect_uris
        .iter()
        .find(|u| u.as_str() == params.redirect_uri)
        .cloned()
        .ok_or_else(|| {
            Refusal::Page(format!(
                "The address to return to ({:?}) is not registered for this application, so the development provider will not send you there.",
                truncate(&params.redirect_uri)
            ))
        })?;
    let bad = |error: &'static str, description: &str| {
        Err(Refusal::Redirect {
            to: Box::new(redirect_uri.clone()),
            error,
            description: description.to_string(),
            state: params.state.chars().take(MAX_OPAQUE_CHARS).collect(),
        })
    };
    if params.response_type != "code" {
        return bad(
            "unsupported_response_type",
            "Only response_type=code is supported.",
        );
    }
    let scopes: Vec<&str> = params.scope.split_whitespace().collect();
    if !scopes.contains(&"openid") {
        return bad("invalid_scope", "The scope must include openid.");
    }
    if params.code_challenge_method != "S256" || !is_s256_challenge(&params.code_challenge) {
        return bad(
            "invalid_request",
            "PKCE is required: code_challenge with code_challenge_method=S256.",
        );
    }
    if params.state.is_empty() || params.state.chars().count() > MAX_OPAQUE_CHARS {
        return bad(
            "invalid_request",
            "A state parameter (at most 512 characters) is required.",
        );
    }
    if params.nonce.is_empty() || params.nonce.chars().count() > MAX_OPAQUE_CHARS {
        return bad(
            "invalid_request",
            "A nonce parameter (at most 512 characters) is required.",
        );
    }
    let scope = scopes
        .iter()
        .filter(|s| USER_SCOPES.contains(s))
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(ValidRequest {
        client,
        redirect_uri,
        scope,
        params,
    })
}

/// A base64url SHA-256 digest: 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn refuse(idp: &DevIdp, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(message) => {
            tracing::warn!(%message, "development provider refused an authorization request");
            let title = "This sign-in request cannot be completed";
            message_page(StatusCode::BAD_REQUEST, title, &message, None)
        }
        Refusal::Redirect {
            mut to,
            error,
            description,
            state,
        } => {
            {
                let mut query = to.query_pairs_mut();
                query
                    .append_pair("error", error)
                    .append_pair("error_description", &description);
                if !state.is_empty() {
                    query.append_pair("state", &state);
                }
                query.append_pair("iss", idp.issuer().as_str());
            }
            Redirect::to(to.as_str()).into_response()
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}
