//! `/api/v1/users/{address}/send-as`: the addresses a user may send as (MAIL FROM and `From:` on
//! submission) besides their own address, `+tag` forms and the aliases that reach them.

use axum::extract::State;
use axum::routing::{delete, get};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use crate::api::{created, no_content, ok, store_error, ApiResult};
use crate::auth::ApiAdmin;
use crate::json::{ApiJson, ApiPath};
use crate::state::Shared;

/// The send-as routes.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v1/users/{address}/send-as", get(list).post(add))
        .route("/api/v1/users/{address}/send-as/{send_as}", delete(remove))
}

async fn list(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(user): ApiPath<String>,
) -> ApiResult {
    let list = state
        .services
        .store
        .list_send_as(&user)
        .await
        .map_err(store_error("address"))?;
    ok(json!(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendAs {
    address: String,
}

async fn add(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath(user): ApiPath<String>,
    ApiJson(body): ApiJson<SendAs>,
) -> ApiResult {
    state
        .services
        .store
        .add_send_as(&user, &body.address)
        .await
        .map_err(store_error("address"))?;
    created(json!({"address": body.address}))
}

async fn remove(
    State(state): State<Shared>,
    _: ApiAdmin,
    ApiPath((user, address)): ApiPath<(String, String)>,
) -> ApiResult {
    state
        .services
        .store
        .remove_send_as(&user, &address)
        .await
        .map_err(store_error("address"))?;
    no_content()
}
