//! Self-service for mail users: log in with the mail password, change it, and set a vacation
//! reply and forwarding (with the Sieve script generated from them shown). A mail user's session
//! is separate from admin sessions and opens no admin page.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use postern_store::{AccountSettings, LoginAttempt, Service, UserSession};
use serde::Deserialize;

use super::flash::{done, notice, Flash};
use super::mail_rules::{self, ForwardForm, Posted, VacationForm};
use super::{field, invalid, layout, Errors};
use crate::auth::{csrf_ok, internal, set_cookie, ClientIp, LoginRefusal, MaybeUser, USER_COOKIE};
use crate::csrf::{LoginPost, LoginToken};
use crate::state::Shared;

fn login_page(address: &str, token: &LoginToken, errors: &Errors) -> Markup {
    layout(
        "Your mail account",
        None,
        html! {
            form.card method="post" action="/account/login" {
                (token.field())
                (field("Mail address", "address", "email", address, errors))
                (field("Password", "password", "password", "", errors))
                button type="submit" { "Log in" }
            }
        },
    )
}

fn account_page(
    address: &str,
    csrf: &str,
    settings: &AccountSettings,
    errors: &Errors,
    done: Option<&str>,
) -> Markup {
    layout(
        "Your mail account",
        None,
        html! {
            p { "Logged in as " strong #account-address { (address) } "." }
            (notice(done))
            h2 { "Password" }
            form.card method="post" action="/account/password" {
                input type="hidden" name="csrf" value=(csrf);
                (field("Current password", "current", "password", "", errors))
                (field("New password", "new", "password", "", errors))
                (field("Repeat new password", "repeat", "password", "", errors))
                button type="submit" { "Change password" }
            }
            (mail_rules::sections("/account", csrf, settings, errors))
            form.inline method="post" action="/account/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Log out" }
            }
        },
    )
}

/// `GET /account`: the account page, or the login form (with a pre-login CSRF token).
pub(crate) async fn show(
    State(state): State<Shared>,
    token: LoginToken,
    MaybeUser(user): MaybeUser,
    flash: Flash,
) -> Response {
    match user {
        Some((_, s)) => {
            let settings = match state.services.store.account_settings(s.user_id).await {
                Ok(settings) => settings,
                Err(e) => return internal(e),
            };
            let page = account_page(
                &s.address,
                &s.csrf_token,
                &settings,
                &Errors::default(),
                flash.message(),
            );
            flash.respond(&state, page)
        }
        None => token.respond(state.https, login_page("", &token, &Errors::default())),
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    address: String,
    password: String,
}

/// `POST /account/login`: refused (403) from other sites, checked by the store's login service
/// like every login.
pub(crate) async fn login(
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
        service: Service::Account,
        client: ip,
        username: &f.address,
        password: &f.password,
    };
    let user = match LoginRefusal::check(store.login(attempt).await) {
        Ok(u) => u,
        Err(refusal) => {
            let mut e = Errors::default();
            e.add("password", refusal.message());
            return refusal.respond(login_page(&f.address, &token, &e));
        }
    };
    match store.create_user_session(user.id, 3600).await {
        Ok(secret) => {
            let cookie = set_cookie(USER_COOKIE, &secret, state.https, 3600);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/account")).into_response()
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

/// `POST /account/password`: needs the current password too, so a hijacked session alone cannot
/// take the account over. Success redirects to `GET /account` (post/redirect/get), so reloading
/// the page does not post the passwords again.
pub(crate) async fn password(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    MaybeUser(user): MaybeUser,
    Form(f): Form<PasswordForm>,
) -> Response {
    let Some((_, s)) = user else {
        return Redirect::to("/account").into_response();
    };
    if !csrf_ok(&s.csrf_token, &f.csrf) {
        return (axum::http::StatusCode::FORBIDDEN, "invalid CSRF token").into_response();
    }
    let settings = match state.services.store.account_settings(s.user_id).await {
        Ok(settings) => settings,
        Err(e) => return internal(e),
    };
    let mut errors = Errors::default();
    if f.new != f.repeat {
        errors.add("repeat", "The new passwords differ.");
    } else {
        let store = &state.services.store;
        let attempt = LoginAttempt {
            service: Service::Account,
            client: ip,
            username: &s.address,
            password: &f.current,
        };
        match LoginRefusal::check(store.login(attempt).await) {
            Ok(_) => match store.set_password(&s.address, &f.new).await {
                Ok(()) => return done(&state, "/account", "Your password has been changed."),
                Err(e) => errors = Errors::from_store("new", &e),
            },
            Err(refusal) => {
                errors.add("current", refusal.message());
                if refusal != LoginRefusal::Wrong {
                    let page = account_page(&s.address, &s.csrf_token, &settings, &errors, None);
                    return refusal.respond(page);
                }
            }
        }
    }
    invalid(account_page(
        &s.address,
        &s.csrf_token,
        &settings,
        &errors,
        None,
    ))
}

/// `POST /account/vacation`: the user's vacation reply.
pub(crate) async fn vacation(
    State(state): State<Shared>,
    MaybeUser(user): MaybeUser,
    Form(f): Form<VacationForm>,
) -> Response {
    rules(&state, user, Posted::Vacation(f)).await
}

/// `POST /account/forwarding`: the user's forwarding.
pub(crate) async fn forwarding(
    State(state): State<Shared>,
    MaybeUser(user): MaybeUser,
    Form(f): Form<ForwardForm>,
) -> Response {
    rules(&state, user, Posted::Forward(f)).await
}

/// Saves a posted rules form for the logged-in user: back to the page with a notice, or the page
/// again with the error next to its field.
async fn rules(state: &Shared, user: Option<(String, UserSession)>, posted: Posted) -> Response {
    let Some((_, s)) = user else {
        return Redirect::to("/account").into_response();
    };
    if !csrf_ok(&s.csrf_token, posted.csrf()) {
        return (axum::http::StatusCode::FORBIDDEN, "invalid CSRF token").into_response();
    }
    match mail_rules::save(&state.services.store, s.user_id, &posted).await {
        Ok(message) => done(state, "/account", message),
        Err((unsaved, errors)) => invalid(account_page(
            &s.address,
            &s.csrf_token,
            &unsaved,
            &errors,
            None,
        )),
    }
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf: String,
}

/// `POST /account/logout`
pub(crate) async fn logout(
    State(state): State<Shared>,
    MaybeUser(user): MaybeUser,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Some((secret, s)) = user {
        if !csrf_ok(&s.csrf_token, &f.csrf) {
            return (axum::http::StatusCode::FORBIDDEN, "invalid CSRF token").into_response();
        }
        if let Err(e) = state.services.store.delete_user_session(&secret).await {
            return internal(e);
        }
    }
    let cookie = set_cookie(USER_COOKIE, "", state.https, 0);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/account")).into_response()
}
