//! Cross-site request forgery protection of the two login forms (admin `/login`, mail user
//! `/account/login`), which run before any session exists and so cannot use the per-session CSRF
//! token of the other forms. Without it another site could log a victim's browser into an account
//! of the attacker's choosing ("login CSRF").
//!
//! Two independent checks, both must pass:
//!
//! - **Double-submit token**: showing a login form sets a random token in a `SameSite=Strict`,
//!   `HttpOnly` cookie and puts the same token in a hidden field; the POST must carry both, equal.
//!   A cross-site POST carries no `SameSite=Strict` cookie (RFC 6265bis §5.6.7.1), and another
//!   site can neither read nor set the cookie.
//! - **Origin check**: a browser names the page a POST comes from in `Origin` (RFC 6454 §7,
//!   WHATWG Fetch) or at least `Referer` (RFC 9110 §10.1.3), and tells in `Sec-Fetch-Site` whether it
//!   is another site. Any of them naming a different origin than this server (scheme, `Host`) gets
//!   403. Clients that send none of them are not browsers, and no other site can drive them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use crate::auth::{cookie, csrf_ok, set_cookie};
use crate::state::Shared;

/// Cookie holding the pre-login CSRF token.
pub(crate) const LOGIN_COOKIE: &str = "postern_login";

/// How long a login form stays usable, in seconds.
const LOGIN_TOKEN_TTL: i64 = 12 * 3600;

/// The pre-login token for a login form: the one in the request's cookie, or a new one that
/// [`LoginToken::respond`] sets.
pub(crate) struct LoginToken {
    /// The token value.
    pub(crate) value: String,
    /// Whether the cookie must be (re)set.
    fresh: bool,
}

/// A token looks like what [`LoginToken`] makes: 64 hex digits.
fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

impl<S: Send + Sync> FromRequestParts<S> for LoginToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(
            match cookie(&parts.headers, LOGIN_COOKIE).filter(|t| well_formed(t)) {
                Some(value) => LoginToken {
                    value,
                    fresh: false,
                },
                None => LoginToken {
                    value: hex::encode(rand::random::<[u8; 32]>()),
                    fresh: true,
                },
            },
        )
    }
}

impl LoginToken {
    /// The hidden form field carrying the token.
    pub(crate) fn field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.value); }
    }

    /// `page` with the token cookie set if it is new.
    pub(crate) fn respond(&self, https: bool, page: impl IntoResponse) -> Response {
        if self.fresh {
            let c = set_cookie(LOGIN_COOKIE, &self.value, https, LOGIN_TOKEN_TTL);
            ([(header::SET_COOKIE, c)], page).into_response()
        } else {
            page.into_response()
        }
    }
}

/// What a login POST's headers say about where it comes from, checked by [`LoginPost::check`]
/// once the form is read (refusing before reading the body would cost the client its keep-alive
/// connection).
pub(crate) struct LoginPost {
    /// `Origin`, `Referer` and `Sec-Fetch-Site` do not point to another site.
    same_origin: bool,
    /// The pre-login cookie's token, if sent.
    cookie: Option<String>,
}

impl FromRequestParts<Shared> for LoginPost {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let authority = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        let scheme = if state.https { "https" } else { "http" };
        let same_origin = same_origin(&parts.headers, &format!("{scheme}://{authority}"));
        if !same_origin {
            tracing::warn!(
                ip = %crate::auth::client_ip(parts),
                path = parts.uri.path(),
                "cross-site login POST refused"
            );
        }
        Ok(LoginPost {
            same_origin,
            cookie: cookie(&parts.headers, LOGIN_COOKIE),
        })
    }
}

impl LoginPost {
    /// 403 unless the request came from this site and the form's token `given` equals the login
    /// cookie's.
    pub(crate) fn check(&self, given: &str) -> Result<(), Response> {
        match &self.cookie {
            Some(c) if self.same_origin && csrf_ok(c, given) => Ok(()),
            _ => Err(forbidden()),
        }
    }
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "login refused: the form did not come from this site (reload the login page and try again)",
    )
        .into_response()
}

/// Whether the browser headers of a request allow it to come from origin `own`
/// (`scheme://host[:port]`): `Sec-Fetch-Site` is not `cross-site`/`same-site`, and `Origin` (or,
/// without it, `Referer`) names `own`. A request with none of these headers passes.
fn same_origin(headers: &HeaderMap, own: &str) -> bool {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(site) = text("sec-fetch-site") {
        if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
            return false;
        }
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        // An opaque origin ("null": sandboxed frames, data: URLs) is never this server.
        return origin.eq_ignore_ascii_case(own);
    }
    if let Some(referer) = text(header::REFERER.as_str()) {
        let referer = referer.to_ascii_lowercase();
        let own = own.to_ascii_lowercase();
        return referer == own
            || referer
                .strip_prefix(&own)
                .is_some_and(|rest| rest.starts_with(['/', '?', '#']));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::same_origin;
    use axum::http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_rules() {
        let own = "http://127.0.0.1:8080";
        let ok = |p: &[(&'static str, &'static str)]| same_origin(&headers(p), own);
        assert!(ok(&[]));
        assert!(ok(&[("origin", "http://127.0.0.1:8080")]));
        assert!(ok(&[("referer", "http://127.0.0.1:8080/login")]));
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        assert!(!ok(&[("origin", "http://evil.test")]));
        assert!(!ok(&[("origin", "null")]));
        assert!(!ok(&[("origin", "https://127.0.0.1:8080")]));
        assert!(!ok(&[("referer", "http://127.0.0.1:80801/login")]));
        assert!(!ok(&[("referer", "http://evil.test/")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-site")
        ]));
    }
}
