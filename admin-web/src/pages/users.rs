//! Mail users: create with a password and quota, reset password, change quota, disable, delete.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use postern_store::{parse_quota, AdminSession, StoreError};
use serde::Deserialize;

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

async fn page(
    state: &Shared,
    s: &AdminSession,
    form: &AddForm,
    errors: &Errors,
) -> Result<Markup, Response> {
    let users = state
        .services
        .store
        .list_users(None)
        .await
        .map_err(internal)?;
    Ok(layout(
        "Users",
        Some(s),
        html! {
            @if let Some(msg) = errors.get("user") { p.error role="alert" { (msg) } }
            form.card method="post" action="/users" {
                (csrf_field(s))
                (field("Address", "address", "email", &form.address, errors))
                (field("Password", "password", "password", "", errors))
                (field("Quota (e.g. 2G, 0 = unlimited)", "quota", "text", &form.quota, errors))
                button type="submit" { "Add user" }
            }
            table {
                thead { tr { th { "Address" } th { "Usage" } th { "Password" } th { "Quota" } th {} } }
                tbody {
                    @for u in &users {
                        @let base = format!("/users/{}", segment(&u.address.to_string()));
                        tr data-address=(u.address) {
                            td { (u.address) @if u.disabled { " " em { "(disabled)" } } }
                            td { (bytes(u.used_bytes)) " of " @if u.quota_bytes == 0 { "unlimited" } @else { (bytes(u.quota_bytes)) } }
                            td {
                                form.inline method="post" action=(format!("{base}/password")) {
                                    (csrf_field(s))
                                    input name="password" type="password" placeholder="new password" aria-label=(format!("new password for {}", u.address));
                                    button type="submit" { "Set" }
                                }
                            }
                            td {
                                form.inline method="post" action=(format!("{base}/quota")) {
                                    (csrf_field(s))
                                    input name="quota" type="text" size="6" value=(quota_text(u.quota_bytes)) aria-label=(format!("quota for {}", u.address));
                                    button type="submit" { "Set" }
                                }
                            }
                            td {
                                (action_button(s, &format!("{base}/state"), if u.disabled { "Enable" } else { "Disable" }, None))
                                (action_button(s, &format!("{base}/delete"), "Delete", Some(&format!("Delete {} and all their mail?", u.address))))
                                a href=(format!("{base}/send-as")) { "Send as…" }
                            }
                        }
                    }
                }
            }
        },
    ))
}

async fn rerender(
    state: &Shared,
    s: &AdminSession,
    form: &AddForm,
    field_name: &str,
    e: &StoreError,
) -> Response {
    match page(state, s, form, &Errors::from_store(field_name, e)).await {
        Ok(p) => invalid(p),
        Err(r) => r,
    }
}

/// `GET /users`
pub(crate) async fn list(State(state): State<Shared>, AdminPage(s): AdminPage) -> Response {
    page(&state, &s, &AddForm::default(), &Errors::default())
        .await
        .into_response()
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
        Ok(_) => Redirect::to("/users").into_response(),
        Err(e) => rerender(&state, &s, &f, field_of(&e), &e).await,
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
    Form(f): Form<PasswordForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    match state
        .services
        .store
        .set_password(&address, &f.password)
        .await
    {
        Ok(()) => Redirect::to("/users").into_response(),
        Err(e) => rerender(&state, &s, &AddForm::default(), "user", &e).await,
    }
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
    Form(f): Form<QuotaForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let result = match parse_quota(&f.quota) {
        Ok(q) => state.services.store.set_quota(&address, q).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/users").into_response(),
        Err(e) => rerender(&state, &s, &AddForm::default(), "user", &e).await,
    }
}

/// `POST /users/{address}/state`: toggles disabled.
pub(crate) async fn state(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(address): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    let store = &state.services.store;
    let result = match store.user(&address).await {
        Ok(Some(u)) => store.set_disabled(&address, !u.disabled).await,
        Ok(None) => Err(StoreError::NotFound(format!("user {address}"))),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/users").into_response(),
        Err(e) => rerender(&state, &s, &AddForm::default(), "user", &e).await,
    }
}

/// `POST /users/{address}/delete`
pub(crate) async fn remove(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(address): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    match state.services.store.remove_user(&address).await {
        Ok(()) => Redirect::to("/users").into_response(),
        Err(e) => rerender(&state, &s, &AddForm::default(), "user", &e).await,
    }
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
