//! Admin login and logout.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use postern_store::{LoginAttempt, Service, SessionKind};
use serde::Deserialize;

use super::{field, layout, Errors};
use crate::auth::{cookie, internal, set_cookie, AdminPage, ClientIp, LoginRefusal, ADMIN_COOKIE};
use crate::csrf::{LoginPost, LoginToken};
use crate::state::Shared;

fn page(username: &str, token: &LoginToken, errors: &Errors) -> maud::Markup {
    layout(
        "Log in",
        None,
        html! {
            form.card method="post" action="/login" {
                (token.field())
                (field("Admin name", "username", "text", username, errors))
                (field("Password", "password", "password", "", errors))
                button type="submit" { "Log in" }
            }
            p { "Mail users: " a href="/account" { "change your password here" } "." }
        },
    )
}

/// `GET /login`: the form, with a fresh pre-login CSRF token if the browser has none.
pub(crate) async fn form(State(state): State<Shared>, token: LoginToken) -> Response {
    token.respond(state.https, page("", &token, &Errors::default()))
}

/// Login form fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: String,
}

/// `POST /login`: refused (403) from other sites, checked by the store's login service (shared
/// limits); sets the session cookie and goes to the dashboard.
pub(crate) async fn submit(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    guard: LoginPost,
    token: LoginToken,
    Form(f): Form<LoginForm>,
) -> Response {
    if let Err(r) = guard.check(&f.csrf) {
        return r;
    }
    let store = &state.services.store;
    let attempt = LoginAttempt {
        service: Service::AdminWeb,
        client: ip,
        username: &f.username,
        password: &f.password,
    };
    let admin = match LoginRefusal::check(store.login_admin(attempt).await) {
        Ok(a) => a,
        Err(refusal) => {
            let mut errors = Errors::default();
            errors.add("password", refusal.message());
            return refusal.respond(page(&f.username, &token, &errors));
        }
    };
    let ttl = state.config.session_ttl;
    match store
        .create_session(admin.id, SessionKind::Browser, "", ttl)
        .await
    {
        Ok(secret) => {
            tracing::info!(admin = %admin.username, %ip, "admin logged in");
            let cookie = set_cookie(ADMIN_COOKIE, &secret, state.https, ttl);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(e) => internal(e),
    }
}

/// `POST /logout`: ends the session (the CSRF token is checked so other sites cannot log you out).
pub(crate) async fn logout(
    State(state): State<Shared>,
    AdminPage(session): AdminPage,
    headers: axum::http::HeaderMap,
    Form(f): Form<super::CsrfOnly>,
) -> Response {
    if let Err(r) = super::check_csrf(&session, &f.csrf) {
        return r;
    }
    if let Some(secret) = cookie(&headers, ADMIN_COOKIE) {
        if let Err(e) = state.services.store.delete_session(&secret).await {
            return internal(e);
        }
    }
    let cookie = set_cookie(ADMIN_COOKIE, "", state.https, 0);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
