//! Hosted mail domains.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use postern_store::AdminSession;
use serde::Deserialize;

use super::{
    action_button, check_csrf, csrf_field, field, invalid, layout, segment, CsrfOnly, Errors,
};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

async fn page(
    state: &Shared,
    s: &AdminSession,
    name: &str,
    errors: &Errors,
) -> Result<Markup, Response> {
    let domains = state
        .services
        .store
        .list_domains()
        .await
        .map_err(internal)?;
    Ok(layout(
        "Domains",
        Some(s),
        html! {
            form.card method="post" action="/domains" {
                (csrf_field(s))
                (field("New domain", "name", "text", name, errors))
                button type="submit" { "Add domain" }
            }
            table {
                thead { tr { th { "Domain" } th {} } }
                tbody {
                    @for d in &domains {
                        tr {
                            td { (d.name) }
                            td { (action_button(s, &format!("/domains/{}/delete", segment(&d.name)), "Delete",
                                Some(&format!("Delete {} with all its users, mail and aliases?", d.name)))) }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /domains`
pub(crate) async fn list(State(state): State<Shared>, AdminPage(s): AdminPage) -> Response {
    page(&state, &s, "", &Errors::default())
        .await
        .into_response()
}

/// Add-domain form.
#[derive(Deserialize)]
pub(crate) struct AddForm {
    csrf: String,
    name: String,
}

/// `POST /domains`
pub(crate) async fn add(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Form(f): Form<AddForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    match state.services.store.add_domain(&f.name).await {
        Ok(_) => Redirect::to("/domains").into_response(),
        Err(e) => match page(&state, &s, &f.name, &Errors::from_store("name", &e)).await {
            Ok(p) => invalid(p),
            Err(r) => r,
        },
    }
}

/// `POST /domains/{name}/delete`
pub(crate) async fn remove(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    match state.services.store.remove_domain(&name).await {
        Ok(()) => Redirect::to("/domains").into_response(),
        Err(e) => match page(&state, &s, "", &Errors::from_store("name", &e)).await {
            Ok(p) => invalid(p),
            Err(r) => r,
        },
    }
}
