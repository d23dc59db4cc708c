//! Server-rendered pages. Every form carries the session's CSRF token; a POST that succeeds
//! redirects (post/redirect/get) and the next page says what was done (`flash`), one that fails
//! re-renders the page with the error next to the field or in the row it belongs to.

mod account;
mod aliases;
mod assets;
pub(crate) mod confirm;
mod counters;
mod dashboard;
mod dns;
mod domain;
mod domains;
mod flash;
mod listing;
mod login;
mod mail_rules;
mod queue;
mod send_as;
mod user_rules;
mod users;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use postern_store::{AdminSession, StoreError};

pub(crate) use dns::validate_record;

use crate::auth::{csrf_ok, internal};
use crate::state::Shared;

/// Every page route.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/tokens", post(dashboard::create_token))
        .route("/tokens/{id}/revoke", post(dashboard::revoke_token))
        .route("/domains", get(domains::list).post(domains::add))
        .route("/domains/{name}", get(domain::show))
        .route("/domains/{name}/delete", post(domains::remove))
        .route("/users", get(users::list).post(users::add))
        .route("/users/{address}/password", post(users::password))
        .route("/users/{address}/quota", post(users::quota))
        .route("/users/{address}/state", post(users::state))
        .route("/users/{address}/delete", post(users::remove))
        .route(
            "/users/{address}/send-as",
            get(send_as::list).post(send_as::add),
        )
        .route("/users/{address}/send-as/delete", post(send_as::remove))
        .route("/users/{address}/rules", get(user_rules::show))
        .route(
            "/users/{address}/rules/vacation",
            post(user_rules::vacation),
        )
        .route(
            "/users/{address}/rules/forwarding",
            post(user_rules::forwarding),
        )
        .route("/aliases", get(aliases::list).post(aliases::add))
        .route("/aliases/delete", post(aliases::remove))
        .route("/dns", get(dns::list).post(dns::add))
        .route("/dns/{id}/edit", post(dns::edit))
        .route("/dns/{id}/delete", post(dns::remove))
        .route("/queue", get(queue::list))
        .route("/queue/{id}/retry", post(queue::retry))
        .route("/queue/{id}/delete", post(queue::remove))
        .route("/account", get(account::show))
        .route("/account/login", post(account::login))
        .route("/account/password", post(account::password))
        .route("/account/vacation", post(account::vacation))
        .route("/account/forwarding", post(account::forwarding))
        .route("/account/logout", post(account::logout))
        .route("/assets/style.css", get(assets::style))
        .route("/assets/app.js", get(assets::script))
}

/// The frame of every admin page: title, navigation, logout.
pub(crate) fn layout(title: &str, session: Option<&AdminSession>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Postern" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header {
                    strong { "Postern" }
                    @if let Some(s) = session {
                        nav {
                            a href="/" { "Dashboard" }
                            a href="/domains" { "Domains" }
                            a href="/users" { "Users" }
                            a href="/aliases" { "Aliases" }
                            a href="/dns" { "DNS" }
                            a href="/queue" { "Queue" }
                        }
                        form.inline method="post" action="/logout" {
                            (csrf_field(s))
                            span.who { (s.admin.username) }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// `data` as one URL path segment (RFC 3986 §3.3): every byte except the unreserved characters
/// (§2.3) and `@` is percent-encoded (§2.1), so a `%`, `/`, `?` or `#` in a local part (all legal
/// atext, RFC 5322 §3.2.3) stays data. The router decodes a path parameter exactly once (axum's
/// `Path`), which gives back `data`. Every href and form action built from data goes through this.
pub(crate) fn segment(data: &str) -> String {
    const SEGMENT: AsciiSet = UNRESERVED.remove(b'@');
    utf8_percent_encode(data, &SEGMENT).to_string()
}

/// Every byte but the unreserved characters of RFC 3986 §2.3.
const UNRESERVED: AsciiSet = NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as a value in a URL query string (RFC 3986 §3.4): all but the unreserved characters
/// (so `&`, `=`, `#`, `%`, `+` among them) are percent-encoded.
pub(crate) fn query_value(text: &str) -> String {
    utf8_percent_encode(text, &UNRESERVED).to_string()
}

/// The hidden CSRF input every form carries.
pub(crate) fn csrf_field(s: &AdminSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf_token); }
}

/// An input with its label and, if any, its error message.
pub(crate) fn field(label: &str, name: &str, kind: &str, value: &str, errors: &Errors) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value);
            @if let Some(msg) = errors.get(name) {
                span.error role="alert" data-field=(name) { (msg) }
            }
        }
    }
}

/// Error messages by form field name.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<(String, String)>);

impl Errors {
    /// Adds a message for `field`.
    pub(crate) fn add(&mut self, field: &str, msg: impl Into<String>) {
        self.0.push((field.to_owned(), msg.into()));
    }

    /// The message for `field`, if any.
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// An error for a store failure, attached to `field`. Internal errors are logged, not shown.
    pub(crate) fn from_store(field: &str, e: &StoreError) -> Errors {
        let mut errors = Errors::default();
        let msg = match e {
            StoreError::Invalid { .. }
            | StoreError::Exists(_)
            | StoreError::NotFound(_)
            | StoreError::OverQuota(_) => e.to_string(),
            other => {
                tracing::error!(error = %other, "admin form failed");
                "The server could not save this; see the log.".to_owned()
            }
        };
        errors.add(field, capitalise(&msg));
        errors
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A form that carries nothing but the CSRF token (buttons).
#[derive(serde::Deserialize)]
pub(crate) struct CsrfOnly {
    /// The session's anti-CSRF token.
    pub csrf: String,
}

/// The answer to a delete or retry posted from a list page: back to the list, also when the item
/// was already gone (another admin, or the queue worker, got there first).
pub(crate) fn back_to_list(list: &'static str, result: Result<(), StoreError>) -> Response {
    match result {
        Ok(()) | Err(StoreError::NotFound(_)) => Redirect::to(list).into_response(),
        Err(e) => internal(e),
    }
}

/// 403 for a form whose CSRF token does not match the session's.
pub(crate) fn check_csrf(session: &AdminSession, given: &str) -> Result<(), Response> {
    if csrf_ok(&session.csrf_token, given) {
        Ok(())
    } else {
        Err((
            StatusCode::FORBIDDEN,
            "invalid or missing CSRF token: reload the page and try again",
        )
            .into_response())
    }
}

/// A page re-rendered with errors (400 so scripts and tests notice).
pub(crate) fn invalid(page: Markup) -> Response {
    (StatusCode::BAD_REQUEST, page).into_response()
}

/// A POST button (small form) with the CSRF token, e.g. for delete.
pub(crate) fn action_button(
    s: &AdminSession,
    action: &str,
    label: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf_field(s))
            @if let Some(question) = confirm { (confirm::prompt_field(question)) }
            button type="submit" { (label) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{query_value, segment};

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("alice@example.test"), "alice@example.test");
        assert_eq!(segment("a%62c@d.test"), "a%2562c@d.test");
        assert_eq!(segment("s/t@d"), "s%2Ft@d");
        assert_eq!(segment("h#x@d"), "h%23x@d");
        assert_eq!(segment("q?x@d"), "q%3Fx@d");
        assert_eq!(segment("é+ &"), "%C3%A9%2B%20%26");
        assert_eq!(query_value("you@x.test+1%#"), "you%40x.test%2B1%25%23");
    }
}
