//! The outbound queue: what waits for delivery, why, and retry or delete.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use maud::html;
use postern_store::{unix_now, StoreError};

use super::flash::{done, notice, Flash};
use super::{action_button, check_csrf, layout, CsrfOnly};
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
pub(crate) async fn list(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    flash: Flash,
) -> Response {
    let entries = match state.services.store.list_queue().await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    let page = layout(
        "Outbound queue",
        Some(&s),
        html! {
            (notice(flash.message()))
            @if entries.is_empty() { p.empty { "The queue is empty: every message was delivered or bounced." } }
            @else {
                table {
                    thead { tr { th { "#" } th { "From" } th { "To" } th { "Size" } th { "Attempts" } th { "Next try" } th { "Last error" } th { "Retry" } th { "Delete" } } }
                    tbody {
                        @for e in &entries {
                            tr data-id=(e.id) {
                                td data-label="#" { (e.id) }
                                td data-label="From" { @if e.sender.is_empty() { "<>" } @else { (e.sender) } }
                                td data-label="To" { (e.recipient) }
                                td data-label="Size" { (super::users::bytes(e.size)) }
                                td data-label="Attempts" { (e.attempts) }
                                td data-label="Next try" { (relative(e.next_attempt)) }
                                td data-label="Last error" { code { (e.last_error.as_deref().unwrap_or("")) } }
                                td data-label="Retry" { (action_button(&s, &format!("/queue/{}/retry", e.id), "Retry now", None)) }
                                td data-label="Delete" { (action_button(&s, &format!("/queue/{}/delete", e.id), "Delete", Some("Delete this message without delivering it?"))) }
                            }
                        }
                    }
                }
            }
        },
    );
    flash.respond(&state, page)
}

/// Back to the queue with `message`; a message already gone (delivered, or deleted by another
/// admin) is said so.
fn back(state: &Shared, result: Result<(), StoreError>, message: &str) -> Response {
    match result {
        Ok(()) => done(state, "/queue", message),
        Err(StoreError::NotFound(_)) => done(
            state,
            "/queue",
            "Nothing changed: the message has left the queue.",
        ),
        Err(e) => internal(e),
    }
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
    let result = state.services.store.retry_queue(id).await;
    back(
        &state,
        result,
        &format!("Message {id} will be tried again now."),
    )
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
    let result = state.services.store.remove_queue(id).await;
    back(
        &state,
        result,
        &format!("Deleted message {id} without delivering it."),
    )
}
