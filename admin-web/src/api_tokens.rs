//! `/api/v1/tokens`: list API tokens (never their secrets), create one with a scope and an
//! optional lifetime (the secret is in the 201 answer, once), revoke one by id.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::Router;
use postern_store::{parse_lifetime, ApiToken, TokenScope};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{created, no_content, store_error, ApiResult};
use crate::auth::ApiAdmin;
use crate::json::{ApiJson, ApiPath};
use crate::state::Shared;

/// The token routes.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v1/tokens", get(list).post(add))
        .route("/api/v1/tokens/{id}", delete(revoke))
}

/// A token as the API shows it.
pub(crate) fn token_json(t: &ApiToken) -> Value {
    json!({
        "id": t.id,
        "admin": t.admin,
        "label": t.label,
        "scope": t.scope.as_str(),
        "created_at": t.created_at,
        "last_used_at": t.last_used_at,
        "expires_at": t.expires_at,
    })
}

async fn list(State(state): State<Shared>, _: ApiAdmin) -> ApiResult {
    let tokens = state
        .services
        .store
        .list_tokens()
        .await
        .map_err(store_error("id"))?;
    Ok(axum::Json(tokens.iter().map(token_json).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    #[serde(default)]
    label: String,
    #[serde(default = "admin_scope")]
    scope: String,
    /// `30d`, `12h`, ...; absent: never expires.
    expires: Option<String>,
}

fn admin_scope() -> String {
    TokenScope::Admin.as_str().to_owned()
}

async fn add(
    State(state): State<Shared>,
    ApiAdmin(session): ApiAdmin,
    ApiJson(t): ApiJson<NewToken>,
) -> ApiResult {
    let scope: TokenScope = t.scope.parse().map_err(store_error("scope"))?;
    let lifetime = t
        .expires
        .as_deref()
        .map(parse_lifetime)
        .transpose()
        .map_err(store_error("expires"))?;
    let store = &state.services.store;
    let secret = store
        .create_token(session.admin.id, &t.label, scope, lifetime)
        .await
        .map_err(store_error("label"))?;
    let id: String = postern_store::token_id(&secret);
    let listed = store
        .list_tokens()
        .await
        .map_err(store_error("id"))?
        .into_iter()
        .find(|x| x.id == id);
    let mut body = listed.as_ref().map(token_json).unwrap_or(json!({"id": id}));
    body["token"] = Value::String(secret);
    created(body)
}

async fn revoke(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult {
    state
        .services
        .store
        .revoke_token(&id)
        .await
        .map_err(store_error("id"))?;
    no_content()
}
