//! One user's "send as" list: addresses the user may use as sender on submission (MAIL FROM and
//! `From:`) besides their own address, its `+tag` forms and the aliases that reach them.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use postern_store::AdminSession;
use serde::Deserialize;

use super::confirm::prompt_field;
use super::{check_csrf, csrf_field, field, invalid, layout, segment, Errors};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

#[derive(Default, Deserialize)]
pub(crate) struct SendAsForm {
    #[serde(default)]
    csrf: String,
    address: String,
}

async fn page(
    state: &Shared,
    s: &AdminSession,
    user: &str,
    form: &SendAsForm,
    errors: &Errors,
) -> Result<Markup, Response> {
    let list = state
        .services
        .store
        .list_send_as(user)
        .await
        .map_err(internal)?;
    let base = format!("/users/{}/send-as", segment(user));
    Ok(layout(
        &format!("{user} may send as"),
        Some(s),
        html! {
            p { "Besides " (user) ", its +tag forms and the aliases that reach this user." }
            form.card method="post" action=(base) {
                (csrf_field(s))
                (field("Address", "address", "email", &form.address, errors))
                button type="submit" { "Allow" }
            }
            table {
                thead { tr { th { "Address" } th {} } }
                tbody {
                    @for a in &list {
                        tr {
                            td { (a) }
                            td {
                                @let question = format!("{user} may no longer send as {a}?");
                                form.inline method="post" action=(format!("{base}/delete")) data-confirm=(question) {
                                    (csrf_field(s))
                                    (prompt_field(&question))
                                    input type="hidden" name="address" value=(a);
                                    button type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /users/{address}/send-as`
pub(crate) async fn list(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(user): Path<String>,
) -> Response {
    page(
        &state,
        &s,
        &user,
        &SendAsForm::default(),
        &Errors::default(),
    )
    .await
    .into_response()
}

/// `POST /users/{address}/send-as`
pub(crate) async fn add(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(user): Path<String>,
    Form(f): Form<SendAsForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let done = state.services.store.add_send_as(&user, &f.address).await;
    finish(&state, &s, &user, &f, done).await
}

/// `POST /users/{address}/send-as/delete`
pub(crate) async fn remove(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(user): Path<String>,
    Form(f): Form<SendAsForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let done = state.services.store.remove_send_as(&user, &f.address).await;
    finish(&state, &s, &user, &SendAsForm::default(), done).await
}

/// Back to the list, or the page again with the error.
async fn finish(
    state: &Shared,
    s: &AdminSession,
    user: &str,
    form: &SendAsForm,
    done: postern_store::Result<()>,
) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/users/{}/send-as", segment(user))).into_response(),
        Err(e) => match page(state, s, user, form, &Errors::from_store("address", &e)).await {
            Ok(p) => invalid(p),
            Err(r) => r,
        },
    }
}
