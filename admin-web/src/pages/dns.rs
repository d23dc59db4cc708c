//! DNS records managed in the store, per view. Records are validated by the DNS service, stored,
//! and served at once (the store's change bus tells the DNS service; the zone serial goes up).
//! Beside the editable records, each view lists read-only what else it serves: zone-file records
//! and the records published for hosted mail domains.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use postern_store::{AdminSession, StoreError, MANAGED_TYPES};
use serde::Deserialize;

use super::flash::{done, notice, Flash};
use super::{action_button, check_csrf, csrf_field, field, invalid, layout, CsrfOnly, Errors};
use crate::auth::{internal, AdminPage};
use crate::state::{DnsAdmin, ServedRecord, Shared};

/// Where a served record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A zone file (wins over the store per RRset).
    ZoneFile,
    /// A record in the store: added here, through the API or by dynamic UPDATE.
    Admin,
    /// Published for a hosted mail domain (MX, SPF, DKIM, ...).
    Mail,
}

impl Source {
    /// A stable key for markup and tests.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Source::ZoneFile => "zone-file",
            Source::Admin => "admin",
            Source::Mail => "mail",
        }
    }

    /// What the admin reads.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Source::ZoneFile => "zone file",
            Source::Admin => "admin record",
            Source::Mail => "published for mail",
        }
    }
}

/// An owner name compared case-insensitively, without the trailing dot.
fn owner_key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Every record `view` serves, with its source: zone-file RRsets are marked by the DNS service;
/// of the rest, an RRset the store holds for the view is an admin record and any other was
/// published for mail.
pub(crate) async fn served_in_view(
    state: &Shared,
    dns: &dyn DnsAdmin,
    view: &str,
) -> Result<Vec<(ServedRecord, Source)>, Response> {
    let stored = state
        .services
        .store
        .dns_records(Some(view))
        .await
        .map_err(internal)?;
    let admin: HashSet<(String, String)> = stored
        .iter()
        .map(|r| (owner_key(&r.name), r.rtype.to_ascii_uppercase()))
        .collect();
    Ok(dns
        .served(view)
        .into_iter()
        .map(|r| {
            let source = if r.from_file {
                Source::ZoneFile
            } else if admin.contains(&(owner_key(&r.name), r.rtype.clone())) {
                Source::Admin
            } else {
                Source::Mail
            };
            (r, source)
        })
        .collect())
}

/// Served records of `view`, read-only, with their source.
pub(crate) fn served_table<'a>(
    view: &str,
    rows: impl IntoIterator<Item = &'a (ServedRecord, Source)>,
) -> Markup {
    html! {
        table.served data-view=(view) {
            thead { tr { th { "Name" } th { "Type" } th { "TTL" } th { "Data" } th { "From" } } }
            tbody {
                @for (r, source) in rows {
                    tr data-source=(source.key()) {
                        td data-label="Name" { (r.name) }
                        td data-label="Type" { (r.rtype) }
                        td data-label="TTL" { (r.ttl) }
                        td data-label="Data" { code { (r.data) } }
                        td data-label="From" { (source.label()) }
                    }
                }
            }
        }
    }
}

/// The key of the error shown in the row of stored record `id`.
fn row_key(id: i64) -> String {
    format!("row {id}")
}

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
    done: Option<&str>,
) -> Result<Markup, Response> {
    let Some(dns) = &state.services.dns else {
        return Ok(layout(
            "DNS",
            Some(s),
            html! { p.empty { "The DNS service is not enabled (no listeners.dns)." } },
        ));
    };
    let views = dns.views();
    let records = state
        .services
        .store
        .dns_records(None)
        .await
        .map_err(internal)?;
    let mut served = Vec::with_capacity(views.len());
    for v in &views {
        served.push(served_in_view(state, dns.as_ref(), &v.name).await?);
    }
    Ok(layout(
        "DNS",
        Some(s),
        html! {
            (notice(done))
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
            @for (v, served) in views.iter().zip(&served) {
                @let own: Vec<_> = records.iter().filter(|r| r.view == v.name).collect();
                @let file_sets: HashSet<(String, &str)> = served.iter()
                    .filter(|(_, src)| *src == Source::ZoneFile)
                    .map(|(r, _)| (owner_key(&r.name), r.rtype.as_str())).collect();
                h2 { "View " (v.name) }
                p { "Zones: " @for (i, z) in v.zones.iter().enumerate() { @if i > 0 { ", " } code { (z) } } }
                h3 { "Admin records" }
                @if own.is_empty() {
                    p.empty { "No admin records in this view: add one above." }
                } @else {
                    table.editable data-view=(v.name) {
                        thead { tr { th { "Name" } th { "Type" } th { "TTL and data" } th { "Delete" } } }
                        tbody {
                            @for r in &own {
                                tr data-id=(r.id) {
                                    td data-label="Name" {
                                        (r.name)
                                        @if file_sets.contains(&(owner_key(&r.name), r.rtype.as_str())) {
                                            " " em { "(not served: the zone file's records win)" }
                                        }
                                        @if let Some(msg) = errors.get(&row_key(r.id)) { div.error role="alert" { (msg) } }
                                    }
                                    td data-label="Type" { (r.rtype) }
                                    td data-label="TTL and data" {
                                        form.inline method="post" action=(format!("/dns/{}/edit", r.id)) {
                                            (csrf_field(s))
                                            input name="ttl" type="number" value=(r.ttl) aria-label="TTL";
                                            input name="data" type="text" value=(r.data) aria-label="data" size="40";
                                            button type="submit" { "Save" }
                                        }
                                    }
                                    td data-label="Delete" { (action_button(s, &format!("/dns/{}/delete", r.id), "Delete", Some("Delete this record?"))) }
                                }
                            }
                        }
                    }
                }
                h3 { "Also served (read-only)" }
                @let fixed: Vec<_> = served.iter().filter(|(_, src)| *src != Source::Admin).collect();
                @if fixed.is_empty() {
                    p.empty { "Nothing else: no zone file records or mail records are served in this view." }
                } @else {
                    (served_table(&v.name, fixed))
                }
            }
        },
    ))
}

/// `GET /dns`
pub(crate) async fn list(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    flash: Flash,
) -> Response {
    let page = page(
        &state,
        &s,
        &RecordForm::default(),
        &Errors::default(),
        flash.message(),
    )
    .await;
    flash.respond(&state, page)
}

async fn rerender(state: &Shared, s: &AdminSession, form: &RecordForm, errors: Errors) -> Response {
    match page(state, s, form, &errors, None).await {
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
        Ok(r) => done(
            &state,
            "/dns",
            &format!("Added {} {} in view {}.", r.name, r.rtype, r.view),
        ),
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
            e.add(&row_key(id), msg);
            return rerender(&state, &s, &RecordForm::default(), e).await;
        }
    };
    match store.update_dns_record(id, i64::from(ttl), &f.data).await {
        Ok(_) => done(
            &state,
            "/dns",
            &format!("Saved {} {} in view {}.", r.name, r.rtype, r.view),
        ),
        Err(e) => {
            let errors = Errors::from_store(&row_key(id), &e);
            rerender(&state, &s, &RecordForm::default(), errors).await
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
    match state.services.store.remove_dns_record(id).await {
        Ok(()) | Err(StoreError::NotFound(_)) => done(&state, "/dns", "Deleted the record."),
        Err(e) => internal(e),
    }
}
