//! The JSON API under `/api/v1`, with the same capabilities as the pages, for bearer tokens created
//! in the UI or with `postern admin token`. Described by `openapi.yaml` (served at
//! `/api/v1/openapi.yaml`). Errors are `{"error": "...", "field": "..."}` with 400, 401, 404 or 409,
//! and for request bodies also 413, 415 and 422 (see [`crate::json`]).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use postern_store::{parse_quota, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::ApiAdmin;
use crate::json::{error, ApiJson, ApiPath, ApiQuery};
use crate::state::Shared;

/// Every API route (and `/metrics`).
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v1/openapi.yaml", get(openapi))
        .route("/api/v1/status", get(status))
        .route("/api/v1/domains", get(domains).post(add_domain))
        .route("/api/v1/domains/{name}", delete(remove_domain))
        .route("/api/v1/users", get(users).post(add_user))
        .route(
            "/api/v1/users/{address}",
            get(crate::api_account::user)
                .delete(remove_user)
                .patch(update_user),
        )
        .route(
            "/api/v1/aliases",
            get(aliases).post(add_alias).delete(remove_alias),
        )
        .route("/api/v1/dns/views", get(dns_views))
        .route("/api/v1/dns/records", get(dns_records).post(add_record))
        .route(
            "/api/v1/dns/records/{id}",
            delete(remove_record).put(update_record),
        )
        .route("/api/v1/queue", get(queue))
        .route("/api/v1/queue/{id}/retry", post(retry_queue))
        .route("/api/v1/queue/{id}", delete(remove_queue))
        .route("/metrics", get(metrics))
        .merge(crate::api_tokens::router())
        .merge(crate::api_send_as::router())
}

pub(crate) type ApiResult = Result<Response, Response>;

/// Maps a store error to its HTTP status; internal errors are logged, not shown.
pub(crate) fn store_error(field: &str) -> impl FnOnce(StoreError) -> Response + '_ {
    move |e| match &e {
        StoreError::Invalid { what, .. } => {
            error(StatusCode::BAD_REQUEST, Some(what), e.to_string())
        }
        StoreError::Exists(_) => error(StatusCode::CONFLICT, Some(field), e.to_string()),
        StoreError::NotFound(_) => error(StatusCode::NOT_FOUND, Some(field), e.to_string()),
        StoreError::OverQuota(_) => error(StatusCode::BAD_REQUEST, Some(field), e.to_string()),
        _ => {
            tracing::error!(error = %e, "API request failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "internal error; see the server log",
            )
        }
    }
}

pub(crate) fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

pub(crate) fn created(v: Value) -> ApiResult {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub(crate) fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/yaml")],
        include_str!("../openapi.yaml"),
    )
}

async fn status(State(state): State<Shared>, _: ApiAdmin) -> ApiResult {
    let s = (state.services.status)();
    // Keyed as on /metrics: `name{label="value",...}`.
    let counters: serde_json::Map<String, Value> = state
        .services
        .metrics
        .samples()
        .into_iter()
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            let key = if labels.is_empty() {
                s.name
            } else {
                format!("{}{{{}}}", s.name, labels.join(","))
            };
            (key, Value::from(s.value))
        })
        .collect();
    ok(
        json!({"uptime_seconds": state.started.elapsed().as_secs(), "listeners": s.listeners,
              "recent_events": s.recent_events, "counters": counters}),
    )
}

async fn domains(State(state): State<Shared>, _: ApiAdmin) -> ApiResult {
    let list = state
        .services
        .store
        .list_domains()
        .await
        .map_err(store_error("name"))?;
    ok(json!(list
        .iter()
        .map(|d| json!({"name": d.name}))
        .collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDomain {
    name: String,
}

async fn add_domain(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiJson(d): ApiJson<NewDomain>,
) -> ApiResult {
    let d = state
        .services
        .store
        .add_domain(&d.name)
        .await
        .map_err(store_error("name"))?;
    created(json!({"name": d.name}))
}

async fn remove_domain(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    state
        .services
        .store
        .remove_domain(&name)
        .await
        .map_err(store_error("name"))?;
    no_content()
}

#[derive(Deserialize)]
struct DomainFilter {
    domain: Option<String>,
}

/// A user as the API shows it in lists.
pub(crate) fn user_json(u: &postern_store::User) -> Value {
    json!({"address": u.address.to_string(), "quota_bytes": u.quota_bytes, "used_bytes": u.used_bytes, "disabled": u.disabled})
}

async fn users(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiQuery(q): ApiQuery<DomainFilter>,
) -> ApiResult {
    let list = state
        .services
        .store
        .list_users(q.domain.as_deref())
        .await
        .map_err(store_error("domain"))?;
    ok(json!(list.iter().map(user_json).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    address: String,
    password: String,
    #[serde(default)]
    quota: Option<Value>,
}

/// A quota given as a number of bytes or a string such as "2G".
fn quota_of(v: &Value) -> Result<i64, Response> {
    match v {
        Value::Number(n) => n.as_i64().filter(|q| *q >= 0).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                Some("quota"),
                "quota must be 0 or more bytes",
            )
        }),
        Value::String(s) => parse_quota(s).map_err(store_error("quota")),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            Some("quota"),
            "quota must be a number of bytes or a string like \"2G\"",
        )),
    }
}

async fn add_user(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiJson(u): ApiJson<NewUser>,
) -> ApiResult {
    let quota = u.quota.as_ref().map(quota_of).transpose()?.unwrap_or(0);
    let user = state
        .services
        .store
        .add_user(&u.address, &u.password, quota)
        .await
        .map_err(store_error("address"))?;
    created(user_json(&user))
}

/// The body of `PATCH /api/v1/users/{address}`: every field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserChanges {
    password: Option<String>,
    quota: Option<Value>,
    disabled: Option<bool>,
    pub(crate) forward_enabled: Option<bool>,
    pub(crate) forward_destination: Option<String>,
    pub(crate) forward_keep: Option<bool>,
    pub(crate) reply_enabled: Option<bool>,
    pub(crate) reply_subject: Option<String>,
    pub(crate) reply_body: Option<String>,
    pub(crate) reply_startdate: Option<String>,
    pub(crate) reply_enddate: Option<String>,
}

async fn update_user(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(address): ApiPath<String>,
    ApiJson(c): ApiJson<UserChanges>,
) -> ApiResult {
    let store = &state.services.store;
    let user = crate::api_account::find(store, &address).await?;
    let quota = c.quota.as_ref().map(quota_of).transpose()?;
    // Settings first: they are the likeliest to be refused, and then nothing has changed.
    crate::api_account::apply(store, &user, &c).await?;
    if let Some(p) = &c.password {
        store
            .set_password(&address, p)
            .await
            .map_err(store_error("password"))?;
    }
    if let Some(q) = quota {
        store
            .set_quota(&address, q)
            .await
            .map_err(store_error("quota"))?;
    }
    if let Some(d) = c.disabled {
        store
            .set_disabled(&address, d)
            .await
            .map_err(store_error("disabled"))?;
    }
    let user = crate::api_account::find(store, &address).await?;
    ok(crate::api_account::detail_json(store, &user).await?)
}

async fn remove_user(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(address): ApiPath<String>,
) -> ApiResult {
    state
        .services
        .store
        .remove_user(&address)
        .await
        .map_err(store_error("address"))?;
    no_content()
}

async fn aliases(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiQuery(q): ApiQuery<DomainFilter>,
) -> ApiResult {
    let list = state
        .services
        .store
        .list_aliases(q.domain.as_deref())
        .await
        .map_err(store_error("domain"))?;
    ok(json!(list
        .iter()
        .map(|a| json!({"source": a.source, "destination": a.destination}))
        .collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasBody {
    source: String,
    destination: Option<String>,
}

async fn add_alias(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiJson(a): ApiJson<AliasBody>,
) -> ApiResult {
    let Some(dest) = a.destination else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            Some("destination"),
            "destination is required",
        ));
    };
    let a = state
        .services
        .store
        .add_alias(&a.source, &dest)
        .await
        .map_err(store_error("source"))?;
    created(json!({"source": a.source, "destination": a.destination}))
}

async fn remove_alias(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiQuery(a): ApiQuery<AliasBody>,
) -> ApiResult {
    state
        .services
        .store
        .remove_alias(&a.source, a.destination.as_deref())
        .await
        .map_err(store_error("source"))?;
    no_content()
}

async fn dns_views(State(state): State<Shared>, _: ApiAdmin) -> ApiResult {
    ok(json!(state
        .services
        .dns
        .as_ref()
        .map(|d| d.views())
        .unwrap_or_default()))
}

#[derive(Deserialize)]
struct ViewFilter {
    view: Option<String>,
}

fn record_json(r: &postern_store::DnsRecord) -> Value {
    json!({"id": r.id, "view": r.view, "name": r.name, "type": r.rtype, "ttl": r.ttl, "data": r.data})
}

async fn dns_records(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiQuery(q): ApiQuery<ViewFilter>,
) -> ApiResult {
    let list = state
        .services
        .store
        .dns_records(q.view.as_deref())
        .await
        .map_err(store_error("view"))?;
    ok(json!(list.iter().map(record_json).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRecord {
    view: String,
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default = "default_ttl")]
    ttl: i64,
    data: String,
}

fn default_ttl() -> i64 {
    300
}

async fn add_record(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiJson(r): ApiJson<NewRecord>,
) -> ApiResult {
    let ttl = crate::pages::validate_record(
        &state,
        &r.view,
        &r.name,
        &r.rtype,
        &r.ttl.to_string(),
        &r.data,
    )
    .await
    .map_err(|(field, msg)| error(StatusCode::BAD_REQUEST, Some(field), msg))?;
    let rec = state
        .services
        .store
        .add_dns_record(&r.view, &r.name, &r.rtype, i64::from(ttl), &r.data)
        .await
        .map_err(store_error("data"))?;
    created(record_json(&rec))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordChanges {
    ttl: i64,
    data: String,
}

async fn update_record(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(c): ApiJson<RecordChanges>,
) -> ApiResult {
    let store = &state.services.store;
    let all = store.dns_records(None).await.map_err(store_error("id"))?;
    let Some(r) = all.into_iter().find(|r| r.id == id) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            Some("id"),
            format!("DNS record {id} not found"),
        ));
    };
    let ttl = crate::pages::validate_record(
        &state,
        &r.view,
        &r.name,
        &r.rtype,
        &c.ttl.to_string(),
        &c.data,
    )
    .await
    .map_err(|(field, msg)| error(StatusCode::BAD_REQUEST, Some(field), msg))?;
    let rec = store
        .update_dns_record(id, i64::from(ttl), &c.data)
        .await
        .map_err(store_error("data"))?;
    ok(record_json(&rec))
}

async fn remove_record(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    state
        .services
        .store
        .remove_dns_record(id)
        .await
        .map_err(store_error("id"))?;
    no_content()
}

async fn queue(State(state): State<Shared>, _: ApiAdmin) -> ApiResult {
    let list = state
        .services
        .store
        .list_queue()
        .await
        .map_err(store_error("id"))?;
    ok(json!(list
        .iter()
        .map(|e| json!({"id": e.id, "sender": e.sender, "recipient": e.recipient, "size": e.size, "attempts": e.attempts,
                        "next_attempt": e.next_attempt, "expires_at": e.expires_at, "last_error": e.last_error}))
        .collect::<Vec<_>>()))
}

async fn retry_queue(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    state
        .services
        .store
        .retry_queue(id)
        .await
        .map_err(store_error("id"))?;
    no_content()
}

async fn remove_queue(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    state
        .services
        .store
        .remove_queue(id)
        .await
        .map_err(store_error("id"))?;
    no_content()
}

/// `/metrics`: every metric in Prometheus text format (bearer token required, as for the API).
async fn metrics(State(state): State<Shared>, _: ApiAdmin) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.services.metrics.render().await,
    )
}
