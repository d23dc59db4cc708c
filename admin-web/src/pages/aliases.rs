//! Aliases and catch-alls (`@domain`).

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use postern_store::AdminSession;
use serde::Deserialize;

use super::{check_csrf, csrf_field, field, invalid, layout, Errors};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

#[derive(Default, Deserialize)]
pub(crate) struct AliasForm {
    #[serde(default)]
    csrf: String,
    source: String,
    destination: String,
}

async fn page(
    state: &Shared,
    s: &AdminSession,
    form: &AliasForm,
    errors: &Errors,
) -> Result<Markup, Response> {
    let aliases = state
        .services
        .store
        .list_aliases(None)
        .await
        .map_err(internal)?;
    Ok(layout(
        "Aliases",
        Some(s),
        html! {
            form.card method="post" action="/aliases" {
                (csrf_field(s))
                (field("Source (address, or @domain for a catch-all)", "source", "text", &form.source, errors))
                (field("Destination", "destination", "text", &form.destination, errors))
                button type="submit" { "Add alias" }
            }
            table {
                thead { tr { th { "Source" } th { "Destination" } th {} } }
                tbody {
                    @for a in &aliases {
                        tr {
                            td { (a.source) @if a.source.starts_with('@') { " " em { "(catch-all)" } } }
                            td { (a.destination) }
                            td {
                                form.inline method="post" action="/aliases/delete" data-confirm=(format!("Delete {} → {}?", a.source, a.destination)) {
                                    (csrf_field(s))
                                    input type="hidden" name="source" value=(a.source);
                                    input type="hidden" name="destination" value=(a.destination);
                                    button type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /aliases`
pub(crate) async fn list(State(state): State<Shared>, AdminPage(s): AdminPage) -> Response {
    page(&state, &s, &AliasForm::default(), &Errors::default())
        .await
        .into_response()
}

/// `POST /aliases`
pub(crate) async fn add(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Form(f): Form<AliasForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    // Which side is wrong decides where the message goes: validate the destination on its own.
    let field_name = if postern_store::normalize_address(&f.destination).is_err() {
        "destination"
    } else {
        "source"
    };
    match state
        .services
        .store
        .add_alias(&f.source, &f.destination)
        .await
    {
        Ok(_) => Redirect::to("/aliases").into_response(),
        Err(e) => match page(&state, &s, &f, &Errors::from_store(field_name, &e)).await {
            Ok(p) => invalid(p),
            Err(r) => r,
        },
    }
}

/// `POST /aliases/delete`
pub(crate) async fn remove(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Form(f): Form<AliasForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    match state
        .services
        .store
        .remove_alias(&f.source, Some(&f.destination))
        .await
    {
        Ok(()) => Redirect::to("/aliases").into_response(),
        Err(e) => match page(
            &state,
            &s,
            &AliasForm::default(),
            &Errors::from_store("source", &e),
        )
        .await
        {
            Ok(p) => invalid(p),
            Err(r) => r,
        },
    }
}
