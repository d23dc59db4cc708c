//! The dashboard: services and their addresses, counters (named for people, with units), recent
//! warnings, API tokens (listed with scope, use and expiry; created with a scope and lifetime;
//! revoked after a confirmation).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use postern_store::{parse_lifetime, AdminSession, TokenScope};
use serde::Deserialize;

use super::counters::counters;
use super::queue::relative;
use super::{
    action_button, back_to_list, check_csrf, csrf_field, invalid, layout, segment, CsrfOnly,
};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

/// A past Unix time as "3 h ago", or "just now" within the last minute.
fn past(t: i64) -> String {
    if postern_store::unix_now() - t < 60 {
        "just now".to_owned()
    } else {
        relative(t)
    }
}

async fn page(
    state: &Shared,
    s: &AdminSession,
    new_token: Option<&str>,
    token_error: Option<&str>,
) -> Result<Markup, Response> {
    let store = &state.services.store;
    let tokens = store.list_tokens().await.map_err(internal)?;
    let counts = store.counts().await.map_err(internal)?;
    let status = (state.services.status)();
    let samples = state.services.metrics.samples();
    let uptime = state.started.elapsed().as_secs();
    Ok(layout(
        "Dashboard",
        Some(s),
        html! {
            div.stats {
                div.stat { b { (counts.domains) } "domains" }
                div.stat { b { (counts.users) } "users" }
                div.stat { b { (counts.aliases) } "aliases" }
                div.stat #queue {
                    b { (counts.queue.total()) }
                    "in the queue: " (counts.queue.new) " new, " (counts.queue.deferred) " deferred"
                }
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
            h2 { "Counters since start" }
            (counters(&samples))
            h2 { "Recent warnings and errors" }
            @if status.recent_events.is_empty() { p { "None." } }
            @else { pre { @for e in status.recent_events.iter().rev() { (e) "\n" } } }
            h2 { "API tokens" }
            @if let Some(t) = new_token {
                p.notice { "New token (shown once): " code #new-token { (t) } }
            }
            @if tokens.is_empty() { p { "No API tokens yet." } }
            @else {
                table #tokens {
                    thead { tr { th { "Label" } th { "Scope" } th { "Administrator" } th { "Created" } th { "Last used" } th { "Expires" } th {} } }
                    tbody {
                        @for t in &tokens {
                            tr data-token=(t.id) {
                                td { (t.label) }
                                td { (t.scope) }
                                td { (t.admin) }
                                td { (past(t.created_at)) }
                                td { (t.last_used_at.map_or("never".to_owned(), past)) }
                                td { (t.expires_at.map_or("never".to_owned(), relative)) }
                                td { (action_button(s, &format!("/tokens/{}/revoke", segment(&t.id)), "Revoke",
                                    Some(&format!("Revoke the API token {:?}? Programs using it will get 401.", t.label)))) }
                            }
                        }
                    }
                }
            }
            form.card method="post" action="/tokens" {
                (csrf_field(s))
                @if let Some(e) = token_error { p.error { (e) } }
                div.field { label for="f-label" { "Label" } input #f-label name="label" type="text"; }
                div.field {
                    label for="f-scope" { "Scope" }
                    select #f-scope name="scope" {
                        option value="admin" { "admin: everything" }
                        option value="read" { "read: GET requests only" }
                        option value="metrics" { "metrics: /metrics only" }
                    }
                }
                div.field {
                    label for="f-expires" { "Expires after" }
                    input #f-expires name="expires" type="text" placeholder="never (or 30d, 12h, 2w)";
                }
                button type="submit" { "Create API token" }
            }
        },
    ))
}

/// `GET /`
pub(crate) async fn show(State(state): State<Shared>, AdminPage(s): AdminPage) -> Response {
    page(&state, &s, None, None).await.into_response()
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires: String,
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
    let scope = if f.scope.is_empty() {
        Ok(TokenScope::Admin)
    } else {
        f.scope.parse::<TokenScope>()
    };
    let expires = f.expires.trim();
    let lifetime = (!expires.is_empty())
        .then(|| parse_lifetime(expires))
        .transpose();
    let (scope, lifetime) = match (scope, lifetime) {
        (Ok(scope), Ok(lifetime)) => (scope, lifetime),
        (Err(e), _) | (_, Err(e)) => {
            return match page(&state, &s, None, Some(&e.to_string())).await {
                Ok(p) => invalid(p),
                Err(r) => r,
            };
        }
    };
    match state
        .services
        .store
        .create_token(s.admin.id, &f.label, scope, lifetime)
        .await
    {
        Ok(token) => page(&state, &s, Some(&token), None).await.into_response(),
        Err(e) => internal(e),
    }
}

/// `POST /tokens/{id}/revoke`
pub(crate) async fn revoke_token(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = check_csrf(&s, &f.csrf) {
        return r;
    }
    back_to_list("/", state.services.store.revoke_token(&id).await)
}
