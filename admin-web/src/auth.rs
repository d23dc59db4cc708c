//! Who is asking: admin browser sessions (cookie + CSRF token on every form), API bearer tokens,
//! and mail users on the self-service page. Passwords are checked by the store's one login service
//! ([`postern_store::Store::login`]), which every other service shares.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::Method;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postern_store::{AdminSession, LoginOutcome, SessionKind, TokenScope, UserSession};
use subtle::ConstantTimeEq;

use crate::state::Shared;

/// Cookie holding an admin's browser session secret.
pub(crate) const ADMIN_COOKIE: &str = "postern_admin";
/// Cookie holding a mail user's self-service session secret.
pub(crate) const USER_COOKIE: &str = "postern_user";

/// The value of cookie `name` in the request, if present.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure over HTTPS; `max_age` 0 deletes it.
pub(crate) fn set_cookie(name: &str, value: &str, https: bool, max_age: i64) -> HeaderValue {
    let mut c = cookie::Cookie::build((name.to_owned(), value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(https)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    if max_age == 0 {
        c.make_removal();
    }
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Compares a submitted CSRF token with the session's in constant time.
pub(crate) fn csrf_ok(expected: &str, given: &str) -> bool {
    !given.is_empty() && expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The client's address (set by the server for every connection).
pub(crate) fn client_ip(parts: &Parts) -> std::net::IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// An admin logged in with a browser session; pages without one redirect to `/login`.
pub(crate) struct AdminPage(pub AdminSession);

impl FromRequestParts<Shared> for AdminPage {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let secret = cookie(&parts.headers, ADMIN_COOKIE)
            .ok_or_else(|| Redirect::to("/login").into_response())?;
        match state.services.store.session(&secret).await {
            Ok(Some(s)) if s.kind == SessionKind::Browser => Ok(AdminPage(s)),
            Ok(_) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(internal(e)),
        }
    }
}

/// An API caller with a valid bearer token (`Authorization: Bearer ...`) whose scope allows the
/// request: others get 401 (no, unknown, revoked or expired token) or 403 (a `metrics` token
/// anywhere but `/metrics`, a `read` token on anything but GET and HEAD).
pub(crate) struct ApiAdmin(pub AdminSession);

/// Whether a token of `scope` may make a `method` request to `path`.
fn scope_allows(scope: TokenScope, method: &Method, path: &str) -> bool {
    match scope {
        TokenScope::Admin => true,
        TokenScope::Read => method == Method::GET || method == Method::HEAD,
        TokenScope::Metrics => {
            path == "/metrics" && (method == Method::GET || method == Method::HEAD)
        }
    }
}

impl FromRequestParts<Shared> for ApiAdmin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        let unauthorized = || {
            let body = axum::Json(serde_json::json!({"error": "a valid bearer token is required"}));
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                body,
            )
                .into_response()
        };
        let Some(token) = token else {
            return Err(unauthorized());
        };
        let session = match state.services.store.session(token).await {
            Ok(Some(s)) if s.kind == SessionKind::ApiToken => s,
            Ok(_) => return Err(unauthorized()),
            Err(e) => return Err(internal(e)),
        };
        if !scope_allows(session.scope, &parts.method, parts.uri.path()) {
            let body = axum::Json(serde_json::json!({
                "error": format!("a {} token may not make this request", session.scope)
            }));
            return Err((StatusCode::FORBIDDEN, body).into_response());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if session
            .last_used_at
            .is_none_or(|t| t <= now - postern_store::TOUCH_INTERVAL)
        {
            // Bookkeeping only: a failure to record the use must not refuse the request.
            if let Err(e) = state.services.store.touch_token(token).await {
                tracing::warn!(error = %e, "could not record an API token's use");
            }
        }
        Ok(ApiAdmin(session))
    }
}

/// The token of an `Authorization: Bearer <token>` value (RFC 6750 §2.1). The scheme name is
/// matched case-insensitively (RFC 9110 §11.1), and any amount of whitespace may follow it.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A mail user logged in to the self-service page, if any.
pub(crate) struct MaybeUser(pub Option<(String, UserSession)>);

impl FromRequestParts<Shared> for MaybeUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = cookie(&parts.headers, USER_COOKIE) else {
            return Ok(MaybeUser(None));
        };
        match state.services.store.user_session(&secret).await {
            Ok(s) => Ok(MaybeUser(s.map(|s| (secret, s)))),
            Err(e) => Err(internal(e)),
        }
    }
}

/// The client address of the request, for rate limiting.
pub(crate) struct ClientIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

/// Why a login form is shown again instead of logging in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginRefusal {
    /// Wrong name or password.
    Wrong,
    /// The store's login limiter refused the attempt unverified.
    Throttled(std::time::Duration),
    /// The store could not check the login.
    Unavailable,
}

impl LoginRefusal {
    /// Takes a [`LoginOutcome`] from [`postern_store::Store::login`] or `login_admin` apart.
    pub(crate) fn check<T>(outcome: LoginOutcome<T>) -> Result<T, LoginRefusal> {
        match outcome {
            LoginOutcome::Success(found) => Ok(found),
            LoginOutcome::Failed => Err(LoginRefusal::Wrong),
            LoginOutcome::Throttled { retry_after } => Err(LoginRefusal::Throttled(retry_after)),
            LoginOutcome::Unavailable => Err(LoginRefusal::Unavailable),
        }
    }

    /// The message shown under the password field.
    pub(crate) fn message(self) -> String {
        match self {
            LoginRefusal::Wrong => "Wrong name or password.".to_owned(),
            LoginRefusal::Throttled(after) => format!(
                "Too many failed logins. Try again in {} minutes.",
                after.as_secs().div_ceil(60).max(1)
            ),
            LoginRefusal::Unavailable => {
                "The server could not check the login; try again later.".to_owned()
            }
        }
    }

    /// `page` (the form with [`LoginRefusal::message`]) with the matching status: 400 for wrong
    /// credentials, 429 with `Retry-After` when throttled (RFC 6585 §4), 503 when the store failed.
    pub(crate) fn respond(self, page: maud::Markup) -> Response {
        match self {
            LoginRefusal::Wrong => (StatusCode::BAD_REQUEST, page).into_response(),
            LoginRefusal::Throttled(after) => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, after.as_secs().max(1).to_string())],
                page,
            )
                .into_response(),
            LoginRefusal::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, page).into_response(),
        }
    }
}

/// 500 for an unexpected store error; the details go to the log, not the client.
pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "admin request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the server log",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, scope_allows};
    use axum::http::Method;
    use postern_store::TokenScope;

    #[test]
    fn scopes_limit_methods_and_paths() {
        use TokenScope::*;
        for (scope, method, path, ok) in [
            (Admin, Method::POST, "/api/v1/domains", true),
            (Read, Method::GET, "/api/v1/domains", true),
            (Read, Method::GET, "/metrics", true),
            (Read, Method::POST, "/api/v1/domains", false),
            (
                Read,
                Method::DELETE,
                "/api/v1/tokens/0123456789abcdef",
                false,
            ),
            (Metrics, Method::GET, "/metrics", true),
            (Metrics, Method::GET, "/api/v1/domains", false),
            (Metrics, Method::POST, "/metrics", false),
        ] {
            assert_eq!(
                scope_allows(scope, &method, path),
                ok,
                "{scope} {method} {path}"
            );
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER  abc ", "bEaReR\tabc"] {
            assert_eq!(bearer_token(v), Some("abc"), "{v:?}");
        }
        for v in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(v), None, "{v:?}");
        }
    }
}
