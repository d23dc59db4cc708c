//! Public, unauthenticated endpoints mail clients and senders fetch from the mail host names:
//! Thunderbird autoconfig, Outlook POX autodiscover (and the JSON probe of newer Outlook), the
//! MTA-STS policy (RFC 8461 §3.2) and an Apple `.mobileconfig` profile. They answer only for hosted
//! domains.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::auth::internal;
use crate::state::Shared;

/// What clients are told about this server: host name and the public ports (which may differ
/// from the bound ports behind NAT). A port of 0 means the service is not offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// The mail host name clients connect to.
    pub hostname: String,
    /// IMAP over implicit TLS (RFC 8314), normally 993.
    pub imaps_port: u16,
    /// IMAP with STARTTLS, normally 143.
    pub imap_port: u16,
    /// Submission over implicit TLS, normally 465.
    pub submissions_port: u16,
    /// Submission with STARTTLS, normally 587.
    pub submission_port: u16,
    /// MTA-STS policy mode: `enforce`, `testing` or `none`.
    pub mta_sts_mode: String,
    /// MTA-STS max_age in seconds.
    pub mta_sts_max_age: u32,
}

impl ClientSettings {
    /// The MTA-STS policy body (RFC 8461 §3.2): CRLF lines, our host as the only MX.
    pub fn mta_sts_policy(&self) -> String {
        format!(
            "version: STSv1\r\nmode: {}\r\nmx: {}\r\nmax_age: {}\r\n",
            self.mta_sts_mode, self.hostname, self.mta_sts_max_age
        )
    }
}

/// The public routes.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/mail/config-v1.1.xml", get(thunderbird))
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(thunderbird),
        )
        .route("/autodiscover/autodiscover.xml", post(outlook).get(outlook))
        .route("/Autodiscover/Autodiscover.xml", post(outlook).get(outlook))
        .route("/autodiscover/autodiscover.json", get(outlook_json))
        .route(
            "/autodiscover/autodiscover.json/v1.0/{address}",
            get(outlook_json),
        )
        .route("/.well-known/mta-sts.txt", get(mta_sts))
        .route("/apple/mail.mobileconfig", get(apple))
}

/// XML-escapes text for element content and attribute values.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The hosted domain a request is about: from the address if given, else from the Host header
/// (`autoconfig.example.org`, `mta-sts.example.org`, or the domain itself); 404 if none is hosted.
async fn hosted_domain(
    state: &Shared,
    address: Option<&str>,
    headers: &HeaderMap,
) -> Result<String, Response> {
    let from_address = address
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_owned());
    let from_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':').map_or(h, |(name, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    name
                } else {
                    h
                }
            })
        })
        .map(|h| {
            let h = h.to_ascii_lowercase();
            ["autoconfig.", "autodiscover.", "mta-sts."]
                .iter()
                .find_map(|p| h.strip_prefix(p).map(str::to_owned))
                .unwrap_or(h)
        });
    for candidate in [from_address, from_host].into_iter().flatten() {
        if let Some(d) = state
            .services
            .store
            .domain(&candidate)
            .await
            .map_err(internal)?
        {
            return Ok(d.name);
        }
    }
    Err((
        StatusCode::NOT_FOUND,
        "no mail domain hosted here by that name",
    )
        .into_response())
}

fn settings(state: &Shared) -> Result<Arc<ClientSettings>, Response> {
    state
        .services
        .client
        .as_ref()
        .map(|current| current())
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                "mail client settings are not published",
            )
                .into_response()
        })
}

#[derive(Deserialize)]
pub(crate) struct AddressQuery {
    emailaddress: Option<String>,
    email: Option<String>,
}

/// Thunderbird autoconfig (`config-v1.1.xml`).
async fn thunderbird(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<AddressQuery>,
) -> Response {
    let s = match settings(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let domain = match hosted_domain(&state, q.emailaddress.as_deref(), &headers).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (d, h) = (xml(&domain), xml(&s.hostname));
    let mut servers = String::new();
    for (kind, port, socket) in [
        ("incomingServer type=\"imap\"", s.imaps_port, "SSL"),
        ("incomingServer type=\"imap\"", s.imap_port, "STARTTLS"),
        ("outgoingServer type=\"smtp\"", s.submissions_port, "SSL"),
        (
            "outgoingServer type=\"smtp\"",
            s.submission_port,
            "STARTTLS",
        ),
    ] {
        if port == 0 {
            continue;
        }
        let close = kind.split(' ').next().unwrap_or(kind);
        servers.push_str(&format!(
            "    <{kind}>\n      <hostname>{h}</hostname>\n      <port>{port}</port>\n      <socketType>{socket}</socketType>\n      \
             <username>%EMAILADDRESS%</username>\n      <authentication>password-cleartext</authentication>\n    </{close}>\n"
        ));
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  <emailProvider id=\"{d}\">\n    \
         <domain>{d}</domain>\n    <displayName>{d} mail</displayName>\n    <displayShortName>{d}</displayShortName>\n{servers}  \
         </emailProvider>\n</clientConfig>\n"
    );
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The `<EMailAddress>` of an Outlook autodiscover request body, if any.
fn requested_address(body: &str) -> Option<String> {
    let start = body.find("<EMailAddress>")? + "<EMailAddress>".len();
    let end = body[start..].find("</EMailAddress>")? + start;
    Some(body[start..end].trim().to_owned())
}

/// Outlook POX autodiscover: an `Autodiscover` response with one IMAP and one SMTP protocol.
async fn outlook(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let s = match settings(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let address = requested_address(&body);
    let domain = match hosted_domain(&state, address.as_deref(), &headers).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let login = xml(address.as_deref().unwrap_or(""));
    let h = xml(&s.hostname);
    let protocol = |kind: &str, port: u16| {
        if port == 0 {
            return String::new();
        }
        format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{h}</Server>\n        <Port>{port}</Port>\n        \
             <DomainRequired>off</DomainRequired>\n        <LoginName>{login}</LoginName>\n        <SPA>off</SPA>\n        \
             <SSL>on</SSL>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n"
        )
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <User><DisplayName>{}</DisplayName></User>\n    <Account>\n      <AccountType>email</AccountType>\n      \
         <Action>settings</Action>\n{}{}    </Account>\n  </Response>\n</Autodiscover>\n",
        xml(&domain),
        protocol("IMAP", s.imaps_port),
        protocol("SMTP", s.submissions_port),
    );
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Newer Outlook first asks for JSON; point it at the POX endpoint instead of failing.
async fn outlook_json(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let host = match hosted_domain(&state, None, &headers).await {
        Ok(d) => format!("autodiscover.{d}"),
        Err(r) => return r,
    };
    let body = serde_json::json!({"Protocol": "AutodiscoverV1", "Url": format!("https://{host}/autodiscover/autodiscover.xml")});
    axum::Json(body).into_response()
}

/// The MTA-STS policy for `mta-sts.<domain>`.
async fn mta_sts(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let s = match settings(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match hosted_domain(&state, None, &headers).await {
        Ok(_) => ([(header::CONTENT_TYPE, "text/plain")], s.mta_sts_policy()).into_response(),
        Err(r) => r,
    }
}

/// An Apple configuration profile with a `com.apple.mail.managed` payload for one address.
async fn apple(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<AddressQuery>,
) -> Response {
    let s = match settings(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(address) = q.email.or(q.emailaddress) else {
        return (StatusCode::BAD_REQUEST, "add ?email=you@example.org").into_response();
    };
    let domain = match hosted_domain(&state, Some(&address), &headers).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (a, h, d) = (xml(&address), xml(&s.hostname), xml(&domain));
    let id = |kind: &str| {
        format!(
            "{}.{kind}",
            domain.split('.').rev().collect::<Vec<_>>().join(".")
        )
    };
    let uuid = |salt: &str| {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (salt, &address).hash(&mut hasher);
        let x = hasher.finish();
        format!(
            "{:08X}-{:04X}-4{:03X}-8{:03X}-{:012X}",
            x >> 32,
            (x >> 16) & 0xffff,
            x & 0xfff,
            (x >> 20) & 0xfff,
            x & 0xffff_ffff_ffff
        )
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
<plist version=\"1.0\">\n<dict>\n\
  <key>PayloadContent</key>\n  <array>\n    <dict>\n\
      <key>EmailAccountDescription</key><string>{a}</string>\n\
      <key>EmailAccountType</key><string>EmailTypeIMAP</string>\n\
      <key>EmailAddress</key><string>{a}</string>\n\
      <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
      <key>IncomingMailServerHostName</key><string>{h}</string>\n\
      <key>IncomingMailServerPortNumber</key><integer>{}</integer>\n\
      <key>IncomingMailServerUseSSL</key><true/>\n\
      <key>IncomingMailServerUsername</key><string>{a}</string>\n\
      <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
      <key>OutgoingMailServerHostName</key><string>{h}</string>\n\
      <key>OutgoingMailServerPortNumber</key><integer>{}</integer>\n\
      <key>OutgoingMailServerUseSSL</key><true/>\n\
      <key>OutgoingMailServerUsername</key><string>{a}</string>\n\
      <key>OutgoingPasswordSameAsIncomingPassword</key><true/>\n\
      <key>PayloadDisplayName</key><string>{d} mail</string>\n\
      <key>PayloadIdentifier</key><string>{}</string>\n\
      <key>PayloadType</key><string>com.apple.mail.managed</string>\n\
      <key>PayloadUUID</key><string>{}</string>\n\
      <key>PayloadVersion</key><integer>1</integer>\n\
    </dict>\n  </array>\n\
  <key>PayloadDisplayName</key><string>{d} mail</string>\n\
  <key>PayloadIdentifier</key><string>{}</string>\n\
  <key>PayloadType</key><string>Configuration</string>\n\
  <key>PayloadUUID</key><string>{}</string>\n\
  <key>PayloadVersion</key><integer>1</integer>\n\
</dict>\n</plist>\n",
        s.imaps_port,
        s.submissions_port,
        xml(&id("mail")),
        uuid("mail"),
        xml(&id("profile")),
        uuid("profile"),
    );
    (
        [
            (
                header::CONTENT_TYPE,
                "application/x-apple-aspen-config".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{domain}.mobileconfig\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_requested_address() {
        let body = "<Autodiscover xmlns=\"...\"><Request><EMailAddress> alice@example.test </EMailAddress>\
                    <AcceptableResponseSchema>x</AcceptableResponseSchema></Request></Autodiscover>";
        assert_eq!(
            requested_address(body).as_deref(),
            Some("alice@example.test")
        );
        assert_eq!(requested_address("<x/>"), None);
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(xml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }

    #[test]
    fn policy_has_crlf_lines() {
        let s = ClientSettings {
            hostname: "mail.example.test".into(),
            imaps_port: 993,
            imap_port: 143,
            submissions_port: 465,
            submission_port: 587,
            mta_sts_mode: "enforce".into(),
            mta_sts_max_age: 86400,
        };
        assert_eq!(
            s.mta_sts_policy(),
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 86400\r\n"
        );
    }
}
