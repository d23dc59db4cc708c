//! A user's vacation reply and forwarding in the API, under mailu's field names
//! (`forward_enabled`, `forward_destination`, `forward_keep`, `reply_enabled`, `reply_subject`,
//! `reply_body`, `reply_startdate`, `reply_enddate`): `GET /api/v1/users/{address}` shows them
//! with the generated Sieve script, `PATCH` changes any of them.

use axum::extract::State;
use axum::http::StatusCode;
use postern_store::{AccountSettings, Store, User};
use serde_json::{json, Value};

use crate::api::{ok, store_error, ApiResult, UserChanges};
use crate::auth::ApiAdmin;
use crate::json::{error, ApiPath};
use crate::state::Shared;

/// `GET /api/v1/users/{address}`: the user, their vacation and forwarding settings and the Sieve
/// script generated from them.
pub(crate) async fn user(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(address): ApiPath<String>,
) -> ApiResult {
    let store = &state.services.store;
    let user = find(store, &address).await?;
    ok(detail_json(store, &user).await?)
}

/// The user `address`, or 404.
pub(crate) async fn find(store: &Store, address: &str) -> Result<User, axum::response::Response> {
    store
        .user(address)
        .await
        .map_err(store_error("address"))?
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                Some("address"),
                format!("user {address} not found"),
            )
        })
}

/// Applies the settings fields of a PATCH (those given; an empty date clears it) and stores them
/// if any was given. Nothing is stored when they do not validate.
pub(crate) async fn apply(
    store: &Store,
    user: &User,
    c: &UserChanges,
) -> Result<(), axum::response::Response> {
    let mut s = store
        .account_settings(user.id)
        .await
        .map_err(store_error("address"))?;
    let before = s.clone();
    set(&mut s.forward_enabled, c.forward_enabled);
    set(&mut s.forward_destination, c.forward_destination.clone());
    set(&mut s.forward_keep, c.forward_keep);
    set(&mut s.reply_enabled, c.reply_enabled);
    set(&mut s.reply_subject, c.reply_subject.clone());
    set(&mut s.reply_body, c.reply_body.clone());
    if let Some(d) = &c.reply_startdate {
        s.reply_startdate = Some(d.clone());
    }
    if let Some(d) = &c.reply_enddate {
        s.reply_enddate = Some(d.clone());
    }
    if s != before {
        store
            .set_account_settings(user.id, &s)
            .await
            .map_err(store_error("address"))?;
    }
    Ok(())
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// The user's JSON with the settings fields and `sieve` (the generated script, or null).
pub(crate) async fn detail_json(
    store: &Store,
    user: &User,
) -> Result<Value, axum::response::Response> {
    let s: AccountSettings = store
        .account_settings(user.id)
        .await
        .map_err(store_error("address"))?;
    let mut v = crate::api::user_json(user);
    v["forward_enabled"] = json!(s.forward_enabled);
    v["forward_destination"] = json!(s.forward_destination);
    v["forward_keep"] = json!(s.forward_keep);
    v["reply_enabled"] = json!(s.reply_enabled);
    v["reply_subject"] = json!(s.reply_subject);
    v["reply_body"] = json!(s.reply_body);
    v["reply_startdate"] = json!(s.reply_startdate);
    v["reply_enddate"] = json!(s.reply_enddate);
    v["sieve"] = json!(postern_sieve::account_script(&s));
    Ok(v)
}
