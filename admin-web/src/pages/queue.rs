//! The outbound queue: what waits for delivery, why, and retry or delete.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use postern_store::unix_now;

use super::{action_button, back_to_list, check_csrf, layout, CsrfOnly};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

/// "in 5 min" / "3 h ago" for a Unix time relative to now.
pub(crate) fn relative(t: i64) -> String {
    let d = t - unix_now();
    let (n, unit) = match d.abs() {
        a if a < 120 => (a, "s"),
        a if a < 7200 => (a / 60, "min"),
        a if a < 172_800 => (a / 3600, "h"),
        a => (a / 86400, "d"),
    };
    if d >= 0 {
        format!("in {n} {unit}")
    } else {
        format!("{n} {unit} ago")
    }
}

/// `GET /queue`
pub(crate) async fn list(State(state): State<Shared>, AdminPage(s): AdminPage) -> Response {
    let entries = match state.services.store.list_queue().await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    layout(
        "Outbound queue",
        Some(&s),
        html! {
            @if entries.is_empty() { p { "The queue is empty." } }
            @else {
                table {
                    thead { tr { th { "#" } th { "From" } th { "To" } th { "Size" } th { "Attempts" } th { "Next try" } th { "Last error" } th {} } }
                    tbody {
                        @for e in &entries {
                            tr {
                                td { (e.id) }
                                td { @if e.sender.is_empty() { "<>" } @else { (e.sender) } }
                                td { (e.recipient) }
                                td { (super::users::bytes(e.size)) }
                                td { (e.attempts) }
                                td { (relative(e.next_attempt)) }
                                td { code { (e.last_error.as_deref().unwrap_or("")) } }
                                td {
                                    (action_button(&s, &format!("/queue/{}/retry", e.id), "Retry now", None))
                                    (action_button(&s, &format!("/queue/{}/delete", e.id), "Delete", Some("Delete this message without delivering it?")))
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// `POST /queue/{id}/retry`
pub(crate) async fn retry(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(id): Path<i64>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    back_to_list("/queue", state.services.store.retry_queue(id).await)
}

/// `POST /queue/{id}/delete`
pub(crate) async fn remove(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(id): Path<i64>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    back_to_list("/queue", state.services.store.remove_queue(id).await)
}
