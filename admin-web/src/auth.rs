//! Who is asking: admin browser sessions (cookie + CSRF token on every form), API bearer tokens,
//! and mail users on the self-service page. Login attempts are rate limited per client address and
//! account with the store's [`postern_store::AuthLimiter`].

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postern_store::{AdminSession, SessionKind, UserSession, Verdict};
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

/// An API caller with a valid bearer token (`Authorization: Bearer ...`); others get 401.
pub(crate) struct ApiAdmin;

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
        match state.services.store.session(token).await {
            Ok(Some(s)) if s.kind == SessionKind::ApiToken => Ok(ApiAdmin),
            Ok(_) => Err(unauthorized()),
            Err(e) => Err(internal(e)),
        }
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

/// Applies the login rate limit, then `check`; records the outcome. `Err` carries a message for
/// the login form.
pub(crate) async fn limited_login<T, F>(
    state: &Shared,
    ip: std::net::IpAddr,
    account: &str,
    check: F,
) -> Result<T, String>
where
    F: std::future::Future<Output = Result<Option<T>, postern_store::StoreError>>,
{
    match state.limiter.check(ip, account) {
        Verdict::Locked(left) => {
            metrics::counter!("postern_logins_total", "service" => "admin-web", "result" => "locked").increment(1);
            return Err(format!(
                "Too many failed logins. Try again in {} minutes.",
                left.as_secs() / 60 + 1
            ));
        }
        Verdict::Allow(delay) => tokio::time::sleep(delay).await,
    }
    match check.await {
        Ok(Some(found)) => {
            metrics::counter!("postern_logins_total", "service" => "admin-web", "result" => "success").increment(1);
            state.limiter.success(ip, account);
            Ok(found)
        }
        Ok(None) => {
            metrics::counter!("postern_logins_total", "service" => "admin-web", "result" => "failure").increment(1);
            state.limiter.failure(ip, account);
            tracing::warn!(%ip, account, "admin web login failed");
            Err("Wrong name or password.".to_owned())
        }
        Err(e) => {
            tracing::error!(error = %e, "login check failed");
            Err("The server could not check the login; see the log.".to_owned())
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
    use super::bearer_token;

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
