//! One hosted domain's page: its users and aliases (links to the searched lists), its DKIM keys,
//! every record Postern's DNS serves for it in each view with where the record comes from (zone
//! file, admin record, or published for mail), the records to publish at another DNS provider
//! (what `postern dns records` prints), and the client setup links.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use postern_store::{DkimAlgorithm, DkimKey, DkimState};

use super::dns::{served_in_view, served_table};
use super::{layout, query_value};
use crate::auth::{internal, AdminPage};
use crate::state::Shared;

/// Whether `name` (absolute, any case) is `domain` or below it.
fn at_or_below(name: &str, domain: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n == domain || n.ends_with(&format!(".{domain}"))
}

fn key_row(k: &DkimKey, domain: &str) -> Markup {
    let algorithm = match k.algorithm {
        DkimAlgorithm::Rsa => "RSA 2048",
        DkimAlgorithm::Ed25519 => "Ed25519",
    };
    let state = match k.state {
        DkimState::Next => "next: published, not signing yet",
        DkimState::Active => "active: signing",
        DkimState::Retired => "retired: still published",
    };
    html! {
        tr {
            td data-label="Selector" { code { (k.selector) } }
            td data-label="Algorithm" { (algorithm) }
            td data-label="State" { (state) }
            td data-label="Published at" { code { (k.selector) "._domainkey." (domain) "." } }
        }
    }
}

/// `GET /domains/{name}`
pub(crate) async fn show(
    State(state): State<Shared>,
    AdminPage(s): AdminPage,
    Path(name): Path<String>,
) -> Response {
    let store = &state.services.store;
    let domain = match store.domain(&name).await {
        Ok(Some(d)) => d.name,
        Ok(None) => {
            let page = layout(
                "Domain not found",
                Some(&s),
                html! { p { (name) " is not a hosted domain. " a href="/domains" { "All domains" } } },
            );
            return (StatusCode::NOT_FOUND, page).into_response();
        }
        Err(e) => return internal(e),
    };
    let keys = match store.dkim_keys(&domain).await {
        Ok(k) => k,
        Err(e) => return internal(e),
    };
    let publish = match state.services.mail_records.for_domain(&domain).await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let mut served = Vec::new();
    if let Some(dns) = &state.services.dns {
        for v in dns.views() {
            let rows = match served_in_view(&state, dns.as_ref(), &v.name).await {
                Ok(rows) => rows,
                Err(r) => return r,
            };
            let rows: Vec<_> = rows
                .into_iter()
                .filter(|(r, _)| at_or_below(&r.name, &domain))
                .collect();
            served.push((v.name, rows));
        }
    }
    let search = query_value(&format!("@{domain}"));
    let client = state.services.client.as_ref().map(|c| c());
    let example = query_value(&format!("you@{domain}"));
    layout(
        &format!("Domain {domain}"),
        Some(&s),
        html! {
            p.links {
                a href=(format!("/users?q={search}")) { "Users of " (domain) }
                a href=(format!("/aliases?q={search}")) { "Aliases of " (domain) }
            }
            h2 { "DKIM keys" }
            @if keys.is_empty() { p.empty { "No DKIM keys: outgoing mail is not signed." } }
            @else {
                table #dkim {
                    thead { tr { th { "Selector" } th { "Algorithm" } th { "State" } th { "Published at" } } }
                    tbody { @for k in &keys { (key_row(k, &domain)) } }
                }
                p.hint { "Rotate with " code { "postern dns rotate-dkim " (domain) } "." }
            }
            h2 { "Served by Postern's DNS" }
            @if state.services.dns.is_none() {
                p.empty { "Postern's DNS service is off (no listeners.dns): publish the records below at your DNS provider." }
            }
            @for (view, rows) in &served {
                h3 { "View " (view) }
                @if rows.is_empty() {
                    p.empty { "This view serves no zone holding " (domain) "." }
                } @else {
                    (served_table(view, rows))
                }
            }
            h2 { "Records to publish elsewhere" }
            p { "When another server holds the zone of " (domain) ", publish these there ("
                code { "postern dns records " (domain) } " prints the same). Zone files and admin records of Postern's own DNS override them." }
            @for (view, lines) in &publish {
                @if let Some(v) = view { h3 { "View " (v) } }
                pre.records data-view=[view.as_deref()] { @for l in lines { (l) "\n" } }
            }
            h2 { "Client setup" }
            @if let Some(c) = client {
                table #client {
                    thead { tr { th { "Service" } th { "Server" } } }
                    tbody {
                        @if c.imaps_port != 0 { tr { td data-label="Service" { "IMAP (TLS)" } td data-label="Server" { code { (c.hostname) ":" (c.imaps_port) } } } }
                        @if c.submissions_port != 0 { tr { td data-label="Service" { "Submission (TLS)" } td data-label="Server" { code { (c.hostname) ":" (c.submissions_port) } } } }
                        @if c.submission_port != 0 { tr { td data-label="Service" { "Submission (STARTTLS)" } td data-label="Server" { code { (c.hostname) ":" (c.submission_port) } } } }
                    }
                }
                p { "User name: the full address; password: the mail password." }
                ul.links {
                    li { a href=(format!("/mail/config-v1.1.xml?emailaddress={example}")) { "Thunderbird autoconfig" }
                         ", fetched by clients from " code { "https://autoconfig." (domain) "/mail/config-v1.1.xml" } }
                    li { a href=(format!("/apple/mail.mobileconfig?email={example}")) { "Apple profile (.mobileconfig)" }
                         ": put the user's address in the link's " code { "email=" } }
                    li { a href=(format!("https://autodiscover.{domain}/autodiscover/autodiscover.xml")) { "Outlook autodiscover" }
                         ", answered by this server under that name" }
                    li { a href=(format!("https://mta-sts.{domain}/.well-known/mta-sts.txt")) { "MTA-STS policy" }
                         ", answered by this server under that name" }
                }
            } @else {
                p.empty { "Client settings are not published by this server." }
            }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::at_or_below;

    #[test]
    fn names_below_a_domain() {
        assert!(at_or_below("Example.TEST.", "example.test"));
        assert!(at_or_below("_dmarc.example.test.", "example.test"));
        assert!(!at_or_below("badexample.test.", "example.test"));
        assert!(!at_or_below("test.", "example.test"));
    }
}
