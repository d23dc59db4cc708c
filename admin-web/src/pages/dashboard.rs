//! The dashboard: services and their addresses, counters, recent warnings, API tokens.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use postern_store::{AdminSession, SessionKind};
use serde::Deserialize;

use super::{check_csrf, csrf_field, layout};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

/// `(name{labels}, value)` for every sample of the Prometheus text whose name starts with `postern_`.
pub(crate) fn samples(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter(|l| l.starts_with("postern_"))
        .filter_map(|l| l.rsplit_once(' '))
        .collect()
}

async fn page(
    state: &Shared,
    s: &AdminSession,
    new_token: Option<&str>,
) -> Result<Markup, Response> {
    let store = &state.services.store;
    let domains = store.list_domains().await.map_err(internal)?.len();
    let users = store.list_users(None).await.map_err(internal)?.len();
    let aliases = store.list_aliases(None).await.map_err(internal)?.len();
    let queued = store.list_queue().await.map_err(internal)?.len();
    let status = (state.services.status)();
    let metrics = (state.services.metrics)();
    let uptime = state.started.elapsed().as_secs();
    Ok(layout(
        "Dashboard",
        Some(s),
        html! {
            div.stats {
                div.stat { b { (domains) } "domains" }
                div.stat { b { (users) } "users" }
                div.stat { b { (aliases) } "aliases" }
                div.stat { b { (queued) } "queued messages" }
                div.stat { b { (uptime / 3600) "h " (uptime % 3600 / 60) "m" } "uptime" }
            }
            h2 { "Services" }
            table {
                thead { tr { th { "Service" } th { "Listening on" } } }
                tbody {
                    @for (name, addrs) in &status.listeners {
                        tr { td { (name) } td { @for a in addrs { code { (a) } " " } } }
                    }
                }
            }
            h2 { "Counters" }
            table {
                thead { tr { th { "Counter" } th { "Value" } } }
                tbody { @for (name, value) in samples(&metrics) { tr { td { code { (name) } } td { (value) } } } }
            }
            h2 { "Recent warnings and errors" }
            @if status.recent_events.is_empty() { p { "None." } }
            @else { pre { @for e in status.recent_events.iter().rev() { (e) "\n" } } }
            h2 { "API tokens" }
            @if let Some(t) = new_token {
                p.notice { "New token (shown once): " code #new-token { (t) } }
            }
            form.card method="post" action="/tokens" {
                (csrf_field(s))
                div.field { label for="f-label" { "Label" } input #f-label name="label" type="text"; }
                button type="submit" { "Create API token" }
            }
        },
    ))
}

/// `GET /`
pub(crate) async fn show(State(state): State<Shared>, AdminPage(s): AdminPage) -> Response {
    page(&state, &s, None).await.into_response()
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    csrf: String,
    #[serde(default)]
    label: String,
}

/// `POST /tokens`: creates an API bearer token and shows it once.
pub(crate) async fn create_token(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    match state
        .services
        .store
        .create_session(s.admin.id, SessionKind::ApiToken, &f.label, 0)
        .await
    {
        Ok(token) => page(&state, &s, Some(&token)).await.into_response(),
        Err(e) => internal(e),
    }
}
