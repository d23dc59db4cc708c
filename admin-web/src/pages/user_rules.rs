//! An administrator sets a user's vacation reply and forwarding (what the user sets on
//! `/account`): `/users/{address}/rules`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use postern_store::{AccountSettings, AdminSession};

use super::flash::{done, notice, Flash};
use super::mail_rules::{self, ForwardForm, Posted, VacationForm};
use super::{check_csrf, invalid, layout, segment, Errors};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

fn page(
    s: &AdminSession,
    user: &str,
    settings: &AccountSettings,
    errors: &Errors,
    message: Option<&str>,
) -> maud::Markup {
    let base = format!("/users/{}/rules", segment(user));
    layout(
        &format!("Vacation and forwarding of {user}"),
        Some(s),
        html! {
            (notice(message))
            (mail_rules::sections(&base, &s.csrf_token, settings, errors))
        },
    )
}

/// The user's id, or a 404 page.
async fn user_id(state: &Shared, user: &str) -> Result<i64, Response> {
    match state.services.store.user(user).await {
        Ok(Some(u)) => Ok(u.id),
        Ok(None) => {
            Err((axum::http::StatusCode::NOT_FOUND, format!("no user {user}")).into_response())
        }
        Err(e) => Err(internal(e)),
    }
}

/// `GET /users/{address}/rules`
pub(crate) async fn show(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(user): Path<String>,
    flash: Flash,
) -> Response {
    let id = match user_id(&state, &user).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    match state.services.store.account_settings(id).await {
        Ok(settings) => {
            let p = page(&s, &user, &settings, &Errors::default(), flash.message());
            flash.respond(&state, p)
        }
        Err(e) => internal(e),
    }
}

/// `POST /users/{address}/rules/vacation`
pub(crate) async fn vacation(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(user): Path<String>,
    Form(f): Form<VacationForm>,
) -> Response {
    save(&state, &s, &user, Posted::Vacation(f)).await
}

/// `POST /users/{address}/rules/forwarding`
pub(crate) async fn forwarding(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(user): Path<String>,
    Form(f): Form<ForwardForm>,
) -> Response {
    save(&state, &s, &user, Posted::Forward(f)).await
}

async fn save(state: &Shared, s: &AdminSession, user: &str, posted: Posted) -> Response {
    if let Err(r) = check_csrf(s, posted.csrf()) {
        return r;
    }
    let id = match user_id(state, user).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    match mail_rules::save(&state.services.store, id, &posted).await {
        Ok(message) => done(
            state,
            &format!("/users/{}/rules", segment(user)),
            &message.replace("Your", "The"),
        ),
        Err((unsaved, errors)) => invalid(page(s, user, &unsaved, &errors, None)),
    }
}
