//! Hosted mail domains; each links to its page (records, DKIM keys, client setup).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use postern_store::AdminSession;
use serde::Deserialize;

use super::flash::{done, notice, Flash};
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
    done: Option<&str>,
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
            (notice(done))
            form.card method="post" action="/domains" {
                (csrf_field(s))
                (field("New domain", "name", "text", name, errors))
                button type="submit" { "Add domain" }
            }
            @if domains.is_empty() {
                p.empty { "No domains yet: add the first one above, then its users." }
            } @else {
                table #domains {
                    thead { tr { th { "Domain" } th { "Delete" } } }
                    tbody {
                        @for d in &domains {
                            tr data-domain=(d.name) {
                                td data-label="Domain" {
                                    a href=(format!("/domains/{}", segment(&d.name))) { (d.name) }
                                    @if let Some(msg) = errors.get(&format!("row {}", d.name)) { div.error role="alert" { (msg) } }
                                }
                                td data-label="Delete" { (action_button(s, &format!("/domains/{}/delete", segment(&d.name)), "Delete",
                                    Some(&format!("Delete {} with all its users, mail and aliases?", d.name)))) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /domains`
pub(crate) async fn list(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    flash: Flash,
) -> Response {
    let page = page(&state, &s, "", &Errors::default(), flash.message()).await;
    flash.respond(&state, page)
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
        Ok(d) => done(
            &state,
            "/domains",
            &format!(
                "Added {}: its DKIM keys are made; its page lists the DNS records it needs.",
                d.name
            ),
        ),
        Err(e) => match page(&state, &s, &f.name, &Errors::from_store("name", &e), None).await {
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
        Ok(()) => done(
            &state,
            "/domains",
            &format!("Deleted {name} with its users, mail and aliases."),
        ),
        Err(e) => match page(
            &state,
            &s,
            "",
            &Errors::from_store(&format!("row {name}"), &e),
            None,
        )
        .await
        {
            Ok(p) => invalid(p),
            Err(r) => r,
        },
    }
}
