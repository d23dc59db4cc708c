//! Success messages after a POST (post/redirect/get): the redirect sets a short-lived cookie
//! holding the message, and the page it leads to shows the message once and deletes the cookie.
//! A cookie rather than a query parameter, so that no link can make a page claim a success.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};

use crate::auth::{cookie, set_cookie};
use crate::state::Shared;

/// The cookie carrying the message from the POST to the page after it.
const FLASH_COOKIE: &str = "postern_flash";
/// Lifetime of the cookie: the redirect is followed at once.
const FLASH_SECONDS: i64 = 60;

/// The answer to a POST that did what it was asked: a redirect to `to` whose page says
/// `message`.
pub(crate) fn done(state: &Shared, to: &str, message: &str) -> Response {
    // Percent-encoded: a cookie value may not hold spaces, quotes, `;` or non-ASCII (RFC 6265 §4.1.1).
    let value = utf8_percent_encode(message, NON_ALPHANUMERIC).to_string();
    let cookie = set_cookie(FLASH_COOKIE, &value, state.https, FLASH_SECONDS);
    ([(header::SET_COOKIE, cookie)], Redirect::to(to)).into_response()
}

/// The message the previous POST left for this page, if any.
pub(crate) struct Flash(Option<String>);

impl FromRequestParts<Shared> for Flash {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &Shared) -> Result<Self, Self::Rejection> {
        Ok(Flash(cookie(&parts.headers, FLASH_COOKIE).map(|v| {
            percent_decode_str(&v).decode_utf8_lossy().into_owned()
        })))
    }
}

impl Flash {
    /// The message, if any.
    pub(crate) fn message(&self) -> Option<&str> {
        self.0.as_deref().filter(|m| !m.is_empty())
    }

    /// `page` as the answer; once the message is shown its cookie is deleted.
    pub(crate) fn respond(&self, state: &Shared, page: impl IntoResponse) -> Response {
        if self.0.is_some() {
            let clear = set_cookie(FLASH_COOKIE, "", state.https, 0);
            ([(header::SET_COOKIE, clear)], page).into_response()
        } else {
            page.into_response()
        }
    }
}

/// The success message at the top of a page.
pub(crate) fn notice(message: Option<&str>) -> Markup {
    html! { @if let Some(m) = message { p.notice.success role="status" { (m) } } }
}
