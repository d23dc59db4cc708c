//! Unauthenticated health probes for load balancers and Kubernetes, on the admin listener:
//! `/healthz` answers 200 while the process serves HTTP (liveness); `/readyz` answers 200 only
//! when every listener is bound and the store answers a trivial query within
//! [`STORE_TIMEOUT`], else 503 with the reason (readiness). Bodies are one short plain-text line
//! and, like every admin response, carry `Cache-Control: no-store`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::Shared;

/// How long `/readyz` waits for the store before it reports not ready.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// `/healthz` and `/readyz`.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(state): State<Shared>) -> Response {
    if (state.services.status)().listeners.is_empty() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "listeners not bound\n");
    }
    match tokio::time::timeout(STORE_TIMEOUT, state.services.store.ping()).await {
        Ok(Ok(())) => text(StatusCode::OK, "ready\n"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            text(StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n")
        }
        Err(_) => {
            tracing::warn!("readiness: store did not answer within {STORE_TIMEOUT:?}");
            text(StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n")
        }
    }
}
