//! Security headers on every admin response, added by one middleware layer around the whole router
//! (pages, API, `/metrics`, client autoconfiguration):
//!
//! - `Content-Security-Policy` (W3C CSP Level 3): everything from this origin only, no inline script
//!   or style (the pages load `/assets/app.js` and `/assets/style.css` and carry no inline code),
//!   no plugins, forms post only to this origin, and no framing (`frame-ancestors 'none'`).
//! - `X-Frame-Options: DENY` (RFC 7034) for browsers without CSP framing control.
//! - `X-Content-Type-Options: nosniff` (WHATWG Fetch §3.5): the declared types are the real ones.
//! - `Referrer-Policy: same-origin` (W3C Referrer Policy §3.4): admin URLs never leak to other
//!   sites. Not `no-referrer`: under that policy browsers send `Origin: null` on the forms' own POSTs
//!   (WHATWG Fetch, "append a request `Origin` header"), which would defeat the login forms' origin
//!   check (see `csrf.rs`).
//! - `Cache-Control: no-store` (RFC 9111 §5.2.2.5) on everything but the static assets, so pages
//!   and API answers holding accounts or tokens are never kept by a browser or proxy cache.
//! - `Strict-Transport-Security` (RFC 6797 §6.1) only on HTTPS listeners: sent over plain HTTP it
//!   would be ignored (§7.2) and would announce HTTPS where there is none.
//!
//! A handler that sets one of these headers itself keeps its own value.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderName};
use axum::http::HeaderValue;
use axum::middleware::{from_fn_with_state, FromFnLayer, Next};
use axum::response::Response;

/// The Content-Security-Policy of every response.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// HSTS on HTTPS listeners: one year (RFC 6797 §6.1.1), this host only.
pub(crate) const HSTS: &str = "max-age=31536000";

type Boxed = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;
type Middleware = fn(State<bool>, Request, Next) -> Boxed;

/// The layer adding the security headers, for `Router::layer`; `https` says whether the listener
/// speaks HTTPS (then HSTS is sent).
pub(crate) fn layer(https: bool) -> FromFnLayer<Middleware, bool, (State<bool>, Request)> {
    let f: Middleware = |s, r, n| Box::pin(add(s, r, n));
    from_fn_with_state(https, f)
}

async fn add(State(https): State<bool>, req: Request, next: Next) -> Response {
    let cacheable = req.uri().path().starts_with("/assets/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    if !cacheable {
        set(header::CACHE_CONTROL, "no-store");
    }
    if https {
        set(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    resp
}
