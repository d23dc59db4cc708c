//! The confirmation step of destructive buttons (delete, revoke), done by the server so it works
//! without JavaScript. A POST to a path ending in `/delete` or `/revoke` acts only when its form
//! carries `confirmed=yes`; otherwise the answer is a page that names what will be removed and
//! posts the same form again with `confirmed=yes`. With JavaScript, `app.js` asks with
//! `window.confirm` and adds the field itself, so the browser needs one click as before.

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::listing::referer;
use super::{check_csrf, layout};
use crate::auth::AdminPage;
use crate::state::Shared;

/// The form field a confirmed request carries (value `yes`).
const CONFIRMED: &str = "confirmed";
/// The hidden form field with the question shown on the confirmation page.
const PROMPT: &str = "prompt";
/// Forms of the admin pages are small; a bigger body is not one of them.
const MAX_FORM: usize = 64 * 1024;

/// The hidden field that gives the confirmation page its question (put it in every form that has
/// `data-confirm`, with the same text).
pub(crate) fn prompt_field(question: &str) -> Markup {
    html! { input type="hidden" name=(PROMPT) value=(question); }
}

/// Middleware over the page routes: holds back unconfirmed destructive POSTs (see the module).
pub(crate) async fn require(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !destructive(request.uri().path()) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let session = match AdminPage::from_request_parts(&mut parts, &state).await {
        Ok(AdminPage(s)) => s,
        Err(rejection) => return rejection,
    };
    let Ok(bytes) = to_bytes(body, MAX_FORM).await else {
        return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if value(CONFIRMED) == Some("yes") {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    if let Err(forbidden) = check_csrf(&session, value("csrf").unwrap_or_default()) {
        return forbidden;
    }
    let action = parts.uri.path();
    let verb = if action.ends_with("/revoke") {
        "Revoke"
    } else {
        "Delete"
    };
    let question = value(PROMPT).unwrap_or("Remove this item? This cannot be undone.");
    let cancel = same_site_referer(&parts.headers).unwrap_or_else(|| "/".to_owned());
    layout(
        "Please confirm",
        Some(&session),
        html! {
            p.confirm-question { (question) }
            form.inline method="post" action=(action) {
                @for (name, value) in fields.iter().filter(|(k, _)| k != CONFIRMED) {
                    input type="hidden" name=(name) value=(value);
                }
                input type="hidden" name=(CONFIRMED) value="yes";
                button.danger type="submit" { (verb) }
            }
            " "
            a href=(cancel) { "Cancel" }
        },
    )
    .into_response()
}

/// Whether a POST path removes something (the routes ending in `/delete` or `/revoke`).
fn destructive(path: &str) -> bool {
    path.ends_with("/delete") || path.ends_with("/revoke")
}

/// The path of the page the form was posted from, when the Referer names this same server (the
/// Cancel link goes back there; anything else goes to the dashboard).
fn same_site_referer(headers: &axum::http::HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let from = referer(headers)?;
    let path = from.path_and_query()?.as_str();
    (from.authority()?.as_str() == host && path.starts_with('/') && !path.starts_with("//"))
        .then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{destructive, same_site_referer};
    use axum::http::{header, HeaderMap, HeaderValue};

    #[test]
    fn only_delete_and_revoke_paths_need_confirmation() {
        assert!(destructive("/users/a%40b/delete"));
        assert!(destructive("/tokens/x/revoke"));
        assert!(!destructive("/users/a%40b/state"));
        assert!(!destructive("/aliases"));
    }

    #[test]
    fn cancel_goes_back_only_to_this_server() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::REFERER,
            HeaderValue::from_static("http://127.0.0.1:8080/users?q=%25"),
        );
        assert_eq!(same_site_referer(&h).as_deref(), Some("/users?q=%25"));
        h.insert(
            header::REFERER,
            HeaderValue::from_static("https://evil.test/users"),
        );
        assert_eq!(same_site_referer(&h), None);
        h.insert(
            header::REFERER,
            HeaderValue::from_static("http://127.0.0.1:8080//evil.test/x"),
        );
        assert_eq!(same_site_referer(&h), None);
    }
}
