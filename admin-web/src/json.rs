//! The API's JSON request bodies. [`ApiJson`] replaces axum's `Json` extractor so that every
//! refusal is the documented `{"error": "...", "field": ...}` object instead of axum's plain text:
//!
//! | status | when |
//! |---|---|
//! | 415 | `Content-Type` is not `application/json` (or `application/*+json`), RFC 9110 §15.5.16 |
//! | 400 | the body is not JSON at all (RFC 8259 syntax), or cannot be read |
//! | 413 | the body is larger than the server's limit |
//! | 422 | well-formed JSON of the wrong shape: not an object, a missing, unknown or mistyped field (RFC 9110 §15.5.21) |
//!
//! A body must be a JSON object: serde would otherwise accept an array such as `["x"]` as the
//! struct's fields in order. [`ApiQuery`] and [`ApiPath`] do the same for query strings and path
//! parameters (400 with a JSON body).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// A JSON object request body deserialized into `T`; refusals are JSON errors (see the module).
pub(crate) struct ApiJson<T>(pub T);

/// The documented error body with `status`.
pub(crate) fn error(status: StatusCode, field: Option<&str>, msg: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": msg.into(), "field": field})),
    )
        .into_response()
}

/// Whether `Content-Type` names JSON: `application/json` or `application/<x>+json`, any
/// parameters (RFC 6838 §4.2.8 structured syntax suffix).
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub.len() > 5
                && sub
                    .get(sub.len() - 5..)
                    .is_some_and(|s| s.eq_ignore_ascii_case("+json")))
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = json_content_type(req.headers());
        // The body is read even when it will be refused: an unread body costs the client its
        // keep-alive connection (hyper closes it), which clients then see as a reset.
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            error(
                status,
                None,
                format!("cannot read the body: {}", e.body_text()),
            )
        })?;
        if !is_json {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        parse(&bytes).map(ApiJson)
    }
}

/// A query string deserialized into `T`; a refusal (400) is a JSON error.
pub(crate) struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(error(e.status(), None, e.body_text())),
        }
    }
}

/// Path parameters (percent-decoded once) deserialized into `T`; a refusal (400, e.g. an id that
/// is not a number) is a JSON error.
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(error(e.status(), None, e.body_text())),
        }
    }
}

/// Parses a JSON object body into `T`, with the refusals of the module table.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            None,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            "the body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // Missing and unknown fields are reported at the object itself; their name is in the
        // message ("missing field `password`").
        let field = if path == "." {
            message.split('`').nth(1).map(str::to_owned)
        } else {
            Some(path)
        };
        error(StatusCode::UNPROCESSABLE_ENTITY, field.as_deref(), message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        on: Option<bool>,
    }

    async fn refusal(bytes: &[u8]) -> (StatusCode, Value) {
        let r = parse::<Body>(bytes).expect_err("refused");
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn refusals_are_json_with_the_field() {
        let (s, b) = refusal(b"{\"name\": ").await;
        assert_eq!((s, &b["field"]), (StatusCode::BAD_REQUEST, &Value::Null));
        let (s, b) = refusal(b"[\"x\"]").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        let (s, b) = refusal(b"{}").await;
        assert_eq!(
            (s, b["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
        );
        let (s, b) = refusal(b"{\"name\": \"x\", \"colour\": 1}").await;
        assert_eq!(
            (s, b["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("colour"))
        );
        let (s, b) = refusal(b"{\"name\": \"x\", \"on\": \"yes\"}").await;
        assert_eq!(
            (s, b["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("on"))
        );
        assert!(b["error"].as_str().unwrap().contains("invalid type"), "{b}");
        assert_eq!(parse::<Body>(b" {\"name\": \"x\"} ").unwrap().name, "x");
    }

    #[test]
    fn content_types() {
        let ok = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            json_content_type(&h)
        };
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/x-www-form-urlencoded"));
        assert!(!ok("application/+json"));
        assert!(!json_content_type(&HeaderMap::new()));
    }
}
