//! Mail users: create with a password and quota, reset password, change quota, disable, delete;
//! listed a page at a time, with search.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use postern_store::{parse_quota, AdminSession, StoreError, User};
use serde::Deserialize;

use super::flash::{done, notice, Flash};
use super::listing::{pager, return_to, search_form, ListQuery, PAGE_SIZE};
use super::{
    action_button, check_csrf, csrf_field, field, invalid, layout, segment, CsrfOnly, Errors,
};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

/// Human-readable byte count.
pub(crate) fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A quota as the shortest exact form `parse_quota` reads back ("100M", "2G", "1500").
fn quota_text(bytes: i64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[derive(Default, Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    csrf: String,
    address: String,
    password: String,
    #[serde(default)]
    quota: String,
}

/// The key of the error shown in the row of user `address`.
fn row_key(address: &str) -> String {
    format!("row {address}")
}

async fn page(
    state: &Shared,
    s: &AdminSession,
    query: &ListQuery,
    form: &AddForm,
    errors: &Errors,
    done: Option<&str>,
) -> Result<Markup, Response> {
    let found = state
        .services
        .store
        .find_users(&query.q, query.offset(), PAGE_SIZE)
        .await
        .map_err(internal)?;
    Ok(layout(
        "Users",
        Some(s),
        html! {
            (notice(done))
            form.card method="post" action="/users" {
                (csrf_field(s))
                (field("Address", "address", "email", &form.address, errors))
                (field("Password", "password", "password", "", errors))
                (field("Quota (e.g. 2G, 0 = unlimited)", "quota", "text", &form.quota, errors))
                button type="submit" { "Add user" }
            }
            (search_form("/users", query, "Search users"))
            @if !found.items.is_empty() {
                table #users {
                    thead { tr { th { "Address" } th { "Usage" } th { "Password" } th { "Quota" } th { "Send as" } th { "Vacation, forwarding" } th { "State" } th { "Delete" } } }
                    tbody { @for u in &found.items { (user_row(s, u, errors)) } }
                }
            }
            (pager("/users", query, found.items.len(), found.total, "No users yet: add the first one above."))
        },
    ))
}

/// One user's row: the address (with the row's error, if any) and a form per action; Delete
/// sits alone in the last cell, apart from the other buttons.
fn user_row(s: &AdminSession, u: &User, errors: &Errors) -> Markup {
    let address = u.address.to_string();
    let base = format!("/users/{}", segment(&address));
    html! {
        tr data-address=(address) {
            td data-label="Address" {
                (address) @if u.disabled { " " em { "(disabled)" } }
                @if let Some(msg) = errors.get(&row_key(&address)) { div.error role="alert" { (msg) } }
            }
            td data-label="Usage" { (bytes(u.used_bytes)) " of " @if u.quota_bytes == 0 { "unlimited" } @else { (bytes(u.quota_bytes)) } }
            td data-label="Password" {
                form.inline method="post" action=(format!("{base}/password")) {
                    (csrf_field(s))
                    input name="password" type="password" placeholder="new password" aria-label=(format!("new password for {address}"));
                    button type="submit" { "Set" }
                }
            }
            td data-label="Quota" {
                form.inline method="post" action=(format!("{base}/quota")) {
                    (csrf_field(s))
                    input name="quota" type="text" size="6" value=(quota_text(u.quota_bytes)) aria-label=(format!("quota for {address}"));
                    button type="submit" { "Set" }
                }
            }
            td data-label="Send as" { a href=(format!("{base}/send-as")) { "Send as…" } }
            td data-label="Vacation, forwarding" { a href=(format!("{base}/rules")) { "Vacation, forwarding…" } }
            td data-label="State" { (action_button(s, &format!("{base}/state"), if u.disabled { "Enable" } else { "Disable" }, None)) }
            td data-label="Delete" { (action_button(s, &format!("{base}/delete"), "Delete", Some(&format!("Delete {address} and all their mail?")))) }
        }
    }
}

/// The page again with `e` next to the add form's field or in the row of `row` (the list then
/// searches for that address, so the row is shown).
async fn rerender(
    state: &Shared,
    s: &AdminSession,
    form: &AddForm,
    row: Option<&str>,
    e: &StoreError,
) -> Response {
    let (query, errors) = match row {
        Some(address) => (
            ListQuery::find(address),
            Errors::from_store(&row_key(address), e),
        ),
        None => (ListQuery::default(), Errors::from_store(field_of(e), e)),
    };
    match page(state, s, &query, form, &errors, None).await {
        Ok(p) => invalid(p),
        Err(r) => r,
    }
}

/// `GET /users?q=&page=`
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
        &AddForm::default(),
        &Errors::default(),
        flash.message(),
    )
    .await;
    flash.respond(&state, page)
}

/// The form field a store validation error belongs to.
fn field_of(e: &StoreError) -> &'static str {
    match e {
        StoreError::Invalid {
            what: "password", ..
        } => "password",
        StoreError::Invalid { what: "quota", .. } => "quota",
        _ => "address",
    }
}

/// `POST /users`
pub(crate) async fn add(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Form(f): Form<AddForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let quota = if f.quota.trim().is_empty() {
        Ok(0)
    } else {
        parse_quota(&f.quota)
    };
    let result = match quota {
        Ok(q) => {
            state
                .services
                .store
                .add_user(&f.address, &f.password, q)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(u) => done(&state, "/users", &format!("Added user {}.", u.address)),
        Err(e) => rerender(&state, &s, &f, None, &e).await,
    }
}

/// The answer to a row action on user `address`: back to the list page it came from with
/// `message`, or that page's row with the error.
async fn row_result(
    state: &Shared,
    s: &AdminSession,
    headers: &HeaderMap,
    address: &str,
    result: Result<(), StoreError>,
    message: String,
) -> Response {
    match result {
        Ok(()) => done(state, &return_to(headers, "/users"), &message),
        // Another admin got there first: the row is gone, so say so above the list.
        Err(StoreError::NotFound(what)) => done(
            state,
            &return_to(headers, "/users"),
            &format!("Nothing changed: {what} no longer exists."),
        ),
        Err(e) => rerender(state, s, &AddForm::default(), Some(address), &e).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    csrf: String,
    password: String,
}

/// `POST /users/{address}/password`
pub(crate) async fn password(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(address): Path<String>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let result = state
        .services
        .store
        .set_password(&address, &f.password)
        .await;
    let message = format!("Set a new password for {address}.");
    row_result(&state, &s, &headers, &address, result, message).await
}

#[derive(Deserialize)]
pub(crate) struct QuotaForm {
    csrf: String,
    quota: String,
}

/// `POST /users/{address}/quota`
pub(crate) async fn quota(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(address): Path<String>,
    headers: HeaderMap,
    Form(f): Form<QuotaForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let result = match parse_quota(&f.quota) {
        Ok(q) => state.services.store.set_quota(&address, q).await,
        Err(e) => Err(e),
    };
    let message = format!("Set the quota of {address} to {}.", f.quota.trim());
    row_result(&state, &s, &headers, &address, result, message).await
}

/// `POST /users/{address}/state`: toggles disabled.
pub(crate) async fn state(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(address): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let store = &state.services.store;
    let (result, message) = match store.user(&address).await {
        Ok(Some(u)) => (
            store.set_disabled(&address, !u.disabled).await,
            if u.disabled {
                format!("Enabled {address}.")
            } else {
                format!("Disabled {address}: it can neither log in nor receive mail.")
            },
        ),
        Ok(None) => (
            Err(StoreError::NotFound(format!("user {address}"))),
            String::new(),
        ),
        Err(e) => (Err(e), String::new()),
    };
    row_result(&state, &s, &headers, &address, result, message).await
}

/// `POST /users/{address}/delete`
pub(crate) async fn remove(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(address): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let result = state.services.store.remove_user(&address).await;
    let message = format!("Deleted {address} and all their mail.");
    row_result(&state, &s, &headers, &address, result, message).await
}

#[cfg(test)]
mod tests {
    use super::{bytes, quota_text};

    #[test]
    fn quota_text_round_trips() {
        for q in [0, 1500, 2048, 100 << 20, 3 << 30, (1 << 30) + 1] {
            assert_eq!(postern_store::parse_quota(&quota_text(q)).unwrap(), q);
        }
        assert_eq!(quota_text(100 << 20), "100M");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12), "12 B");
    }
}
