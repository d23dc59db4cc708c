//! Aliases and catch-alls (`@domain`), listed a page at a time, with search.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use postern_store::{AdminSession, Alias, StoreError};
use serde::Deserialize;

use super::confirm::prompt_field;
use super::flash::{done, notice, Flash};
use super::listing::{pager, return_to, search_form, ListQuery, PAGE_SIZE};
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

/// The key of the error shown in the row of `source → destination`.
fn row_key(source: &str, destination: &str) -> String {
    format!("row {source} {destination}")
}

async fn page(
    state: &Shared,
    s: &AdminSession,
    query: &ListQuery,
    form: &AliasForm,
    errors: &Errors,
    done: Option<&str>,
) -> Result<Markup, Response> {
    let found = state
        .services
        .store
        .find_aliases(&query.q, query.offset(), PAGE_SIZE)
        .await
        .map_err(internal)?;
    Ok(layout(
        "Aliases",
        Some(s),
        html! {
            (notice(done))
            form.card method="post" action="/aliases" {
                (csrf_field(s))
                (field("Source (address, or @domain for a catch-all)", "source", "text", &form.source, errors))
                (field("Destination", "destination", "text", &form.destination, errors))
                button type="submit" { "Add alias" }
            }
            (search_form("/aliases", query, "Search aliases"))
            @if !found.items.is_empty() {
                table #aliases {
                    thead { tr { th { "Source" } th { "Destination" } th { "Delete" } } }
                    tbody { @for a in &found.items { (alias_row(s, a, errors)) } }
                }
            }
            (pager("/aliases", query, found.items.len(), found.total, "No aliases yet: add the first one above."))
        },
    ))
}

fn alias_row(s: &AdminSession, a: &Alias, errors: &Errors) -> Markup {
    html! {
        tr data-source=(a.source) {
            td data-label="Source" {
                (a.source) @if a.source.starts_with('@') { " " em { "(catch-all)" } }
                @if let Some(msg) = errors.get(&row_key(&a.source, &a.destination)) { div.error role="alert" { (msg) } }
            }
            td data-label="Destination" { (a.destination) }
            td data-label="Delete" {
                @let question = format!("Delete {} → {}?", a.source, a.destination);
                form.inline method="post" action="/aliases/delete" data-confirm=(question) {
                    (csrf_field(s))
                    (prompt_field(&question))
                    input type="hidden" name="source" value=(a.source);
                    input type="hidden" name="destination" value=(a.destination);
                    button type="submit" { "Delete" }
                }
            }
        }
    }
}

/// `GET /aliases?q=&page=`
pub(crate) async fn list(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Query(query): Query<ListQuery>,
    flash: Flash,
) -> Response {
    let page = page(
        &state,
        &s,
        &query,
        &AliasForm::default(),
        &Errors::default(),
        flash.message(),
    )
    .await;
    flash.respond(&state, page)
}

async fn rerender(
    state: &Shared,
    s: &AdminSession,
    query: &ListQuery,
    form: &AliasForm,
    errors: Errors,
) -> Response {
    match page(state, s, query, form, &errors, None).await {
        Ok(p) => invalid(p),
        Err(r) => r,
    }
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
        Ok(a) => done(
            &state,
            "/aliases",
            &format!("Added alias {} → {}.", a.source, a.destination),
        ),
        Err(e) => {
            let errors = Errors::from_store(field_name, &e);
            rerender(&state, &s, &ListQuery::default(), &f, errors).await
        }
    }
}

/// `POST /aliases/delete`
pub(crate) async fn remove(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    headers: HeaderMap,
    Form(f): Form<AliasForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let result = state
        .services
        .store
        .remove_alias(&f.source, Some(&f.destination))
        .await;
    match result {
        Ok(()) => done(
            &state,
            &return_to(&headers, "/aliases"),
            &format!("Deleted alias {} → {}.", f.source, f.destination),
        ),
        Err(StoreError::NotFound(what)) => done(
            &state,
            &return_to(&headers, "/aliases"),
            &format!("Nothing changed: {what} no longer exists."),
        ),
        Err(e) => {
            let errors = Errors::from_store(&row_key(&f.source, &f.destination), &e);
            let query = ListQuery::find(&f.source);
            rerender(&state, &s, &query, &AliasForm::default(), errors).await
        }
    }
}
