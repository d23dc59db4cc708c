//! The stylesheet and the one small script, embedded in the binary.

use axum::http::header;
use axum::response::IntoResponse;

/// `/assets/style.css`
pub(crate) async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/style.css"),
    )
}

/// `/assets/app.js`
pub(crate) async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/app.js"),
    )
}
