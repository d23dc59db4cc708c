//! DNS records managed in the store, per view. Records are validated by the DNS service, stored,
//! and served at once (the store's change bus tells the DNS service; the zone serial goes up).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use postern_store::{AdminSession, MANAGED_TYPES};
use serde::Deserialize;

use super::{
    action_button, back_to_list, check_csrf, csrf_field, field, invalid, layout, CsrfOnly, Errors,
};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

#[derive(Default, Deserialize)]
pub(crate) struct RecordForm {
    #[serde(default)]
    csrf: String,
    view: String,
    name: String,
    rtype: String,
    ttl: String,
    data: String,
}

async fn page(
    state: &Shared,
    s: &AdminSession,
    form: &RecordForm,
    errors: &Errors,
) -> Result<Markup, Response> {
    let Some(dns) = &state.services.dns else {
        return Ok(layout(
            "DNS",
            Some(s),
            html! { p { "The DNS service is not enabled (no listeners.dns)." } },
        ));
    };
    let views = dns.views();
    let records = state
        .services
        .store
        .dns_records(None)
        .await
        .map_err(internal)?;
    Ok(layout(
        "DNS",
        Some(s),
        html! {
            @if let Some(msg) = errors.get("record") { p.error role="alert" { (msg) } }
            form.card method="post" action="/dns" {
                (csrf_field(s))
                div.field {
                    label for="f-view" { "View" }
                    select id="f-view" name="view" {
                        @for v in &views { option value=(v.name) selected[v.name == form.view] { (v.name) } }
                    }
                }
                (field("Name", "name", "text", &form.name, errors))
                div.field {
                    label for="f-rtype" { "Type" }
                    select id="f-rtype" name="rtype" {
                        @for t in MANAGED_TYPES { option value=(t) selected[t == form.rtype] { (t) } }
                    }
                }
                (field("TTL", "ttl", "number", if form.ttl.is_empty() { "300" } else { &form.ttl }, errors))
                (field("Data", "data", "text", &form.data, errors))
                button type="submit" { "Add record" }
            }
            @for v in &views {
                h2 { "View " (v.name) }
                p { "Zones: " @for (i, z) in v.zones.iter().enumerate() { @if i > 0 { ", " } code { (z) } } }
                table data-view=(v.name) {
                    thead { tr { th { "Name" } th { "Type" } th { "TTL and data" } th {} } }
                    tbody {
                        @for r in records.iter().filter(|r| r.view == v.name) {
                            tr {
                                td { (r.name) }
                                td { (r.rtype) }
                                td {
                                    form.inline method="post" action=(format!("/dns/{}/edit", r.id)) {
                                        (csrf_field(s))
                                        input name="ttl" type="number" value=(r.ttl) aria-label="TTL";
                                        input name="data" type="text" value=(r.data) aria-label="data" size="40";
                                        button type="submit" { "Save" }
                                    }
                                }
                                td { (action_button(s, &format!("/dns/{}/delete", r.id), "Delete", Some("Delete this record?"))) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /dns`
pub(crate) async fn list(State(state): State<Shared>, AdminPage(s): AdminPage) -> Response {
    page(&state, &s, &RecordForm::default(), &Errors::default())
        .await
        .into_response()
}

async fn rerender(state: &Shared, s: &AdminSession, form: &RecordForm, errors: Errors) -> Response {
    match page(state, s, form, &errors).await {
        Ok(p) => invalid(p),
        Err(r) => r,
    }
}

/// Validates TTL and record with the DNS service; the message names the field at fault.
pub(crate) async fn validate_record(
    state: &Shared,
    view: &str,
    name: &str,
    rtype: &str,
    ttl: &str,
    data: &str,
) -> Result<u32, (&'static str, String)> {
    let ttl: u32 = ttl
        .trim()
        .parse()
        .ok()
        .filter(|t| *t <= i32::MAX as u32)
        .ok_or(("ttl", "TTL must be 0 to 2147483647 seconds".to_owned()))?;
    let dns = state
        .services
        .dns
        .as_ref()
        .ok_or(("record", "the DNS service is not enabled".to_owned()))?;
    if !dns.views().iter().any(|v| v.name == view) {
        return Err(("view", format!("no view named {view:?}")));
    }
    dns.validate(view, name, rtype, ttl, data)
        .await
        .map_err(|m| ("data", m))?;
    Ok(ttl)
}

/// `POST /dns`
pub(crate) async fn add(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Form(f): Form<RecordForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let ttl = match validate_record(&state, &f.view, &f.name, &f.rtype, &f.ttl, &f.data).await {
        Ok(t) => t,
        Err((field_name, msg)) => {
            let mut e = Errors::default();
            e.add(field_name, msg);
            return rerender(&state, &s, &f, e).await;
        }
    };
    match state
        .services
        .store
        .add_dns_record(&f.view, &f.name, &f.rtype, i64::from(ttl), &f.data)
        .await
    {
        Ok(_) => Redirect::to("/dns").into_response(),
        Err(e) => rerender(&state, &s, &f, Errors::from_store("data", &e)).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct EditForm {
    csrf: String,
    ttl: String,
    data: String,
}

/// `POST /dns/{id}/edit`
pub(crate) async fn edit(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(id): Path<i64>,
    Form(f): Form<EditForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let store = &state.services.store;
    let existing = match store.dns_records(None).await {
        Ok(all) => all.into_iter().find(|r| r.id == id),
        Err(e) => return internal(e),
    };
    let Some(r) = existing else {
        return Redirect::to("/dns").into_response();
    };
    let ttl = match validate_record(&state, &r.view, &r.name, &r.rtype, &f.ttl, &f.data).await {
        Ok(t) => t,
        Err((_, msg)) => {
            let mut e = Errors::default();
            e.add("record", format!("{} {}: {msg}", r.name, r.rtype));
            return rerender(&state, &s, &RecordForm::default(), e).await;
        }
    };
    match store.update_dns_record(id, i64::from(ttl), &f.data).await {
        Ok(_) => Redirect::to("/dns").into_response(),
        Err(e) => {
            rerender(
                &state,
                &s,
                &RecordForm::default(),
                Errors::from_store("record", &e),
            )
            .await
        }
    }
}

/// `POST /dns/{id}/delete`
pub(crate) async fn remove(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(id): Path<i64>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    back_to_list("/dns", state.services.store.remove_dns_record(id).await)
}
