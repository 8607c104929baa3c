//! The development provider's pages (askama templates `dev_idp_*.html`): the sign-in form and
//! a small message page for errors and sign-out. Every page carries the development banner.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::account::{TypedAccount, MAX_EMAIL_CHARS, MAX_FIELD_CHARS, MAX_PHONE_CHARS};
use super::personas::PERSONAS;
use super::request::ValidRequest;

#[derive(Template)]
#[template(path = "dev_idp_authorize.html")]
pub struct SignInPage {
    client_id: String,
    /// Where the person will be sent back to, shown so they know.
    return_origin: String,
    hidden: Vec<(&'static str, String)>,
    personas: Vec<PersonaView>,
    persona_error: Option<String>,
    fields: Vec<FieldView>,
    /// Problems with the typed fields, for the summary at the top of that section.
    typed_errors: Vec<(&'static str, String)>,
}

struct PersonaView {
    id: &'static str,
    name: String,
    email: &'static str,
    summary: &'static str,
    details: String,
    checked: bool,
}

struct FieldView {
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    max_chars: usize,
    required: bool,
    value: String,
    error: Option<String>,
}

impl SignInPage {
    /// The form for `request`; `selected` persona and `typed` values are kept after an error.
    pub fn new(
        request: &ValidRequest,
        selected: &str,
        typed: TypedAccount,
        errors: Vec<(&'static str, String)>,
    ) -> SignInPage {
        let selected = if PERSONAS.iter().any(|p| p.id == selected) {
            selected
        } else {
            PERSONAS[0].id
        };
        let personas = PERSONAS
            .iter()
            .map(|p| PersonaView {
                id: p.id,
                name: p.name(),
                email: p.email,
                summary: p.summary,
                details: [
                    p.title,
                    p.company,
                    location(p.city, p.country).as_deref(),
                    p.phone,
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
                checked: p.id == selected,
            })
            .collect();
        let error_for = |id: &str| {
            errors
                .iter()
                .find(|(f, _)| *f == id)
                .map(|(_, m)| m.clone())
        };
        let field = |id, label, kind, autocomplete, max_chars, required, value: String| FieldView {
            id,
            label,
            kind,
            autocomplete,
            max_chars,
            required,
            value,
            error: error_for(id),
        };
        let fields = vec![
            field(
                "name",
                "Full name",
                "text",
                "name",
                MAX_FIELD_CHARS,
                false,
                typed.name,
            ),
            field(
                "email",
                "Email (required)",
                "email",
                "email",
                MAX_EMAIL_CHARS,
                true,
                typed.email,
            ),
            field(
                "company",
                "Company",
                "text",
                "organization",
                MAX_FIELD_CHARS,
                false,
                typed.company,
            ),
            field(
                "title",
                "Job title",
                "text",
                "organization-title",
                MAX_FIELD_CHARS,
                false,
                typed.title,
            ),
            field(
                "city",
                "City",
                "text",
                "address-level2",
                MAX_FIELD_CHARS,
                false,
                typed.city,
            ),
            field(
                "country",
                "Country",
                "text",
                "country-name",
                MAX_FIELD_CHARS,
                false,
                typed.country,
            ),
            field(
                "phone",
                "Phone",
                "tel",
                "tel",
                MAX_PHONE_CHARS,
                false,
                typed.phone,
            ),
        ];
        let persona_error = error_for("persona");
        let typed_errors = errors
            .into_iter()
            .filter(|(f, _)| *f != "persona")
            .collect();
        SignInPage {
            client_id: request.client.client_id.clone(),
            return_origin: request.redirect_uri.origin().ascii_serialization(),
            hidden: request.params.hidden_fields(),
            personas,
            persona_error,
            fields,
            typed_errors,
        }
    }

    pub fn into_response_with(self, status: StatusCode) -> Response {
        render(status, self.render())
    }
}

/// "Chicago, US", "Chicago" or "US".
fn location(city: Option<&str>, country: Option<&str>) -> Option<String> {
    match (city, country) {
        (Some(city), Some(country)) => Some(format!("{city}, {country}")),
        (one, other) => one.or(other).map(str::to_string),
    }
}

#[derive(Template)]
#[template(path = "dev_idp_message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    is_error: bool,
    link: Option<(String, String)>,
}

/// A page with a title, a message and an optional `(href, text)` link.
pub fn message_page(
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(String, String)>,
) -> Response {
    let page = MessagePage {
        title,
        message,
        is_error: !status.is_success(),
        link,
    };
    render(status, page.render())
}

fn render(status: StatusCode, html: Result<String, askama::Error>) -> Response {
    let mut response = match html {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "development provider page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    };
    // The form carries state, nonce and the PKCE challenge: keep it out of caches.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
