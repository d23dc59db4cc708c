//! HTTP helpers for the admin UI and API tests: a client that reports every status, the JSON API
//! with a bearer token, form posts with cookies, and the login forms' CSRF flow.

use serde_json::Value;

/// An HTTP client that reports every status instead of failing, and does not follow redirects.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// A client of the JSON API with a bearer token.
pub struct Api {
    /// `http://addr`.
    pub base: String,
    /// The bearer token sent when a call names none.
    pub token: String,
    /// The HTTP client.
    pub agent: ureq::Agent,
}

impl Api {
    /// The API of a started server, with a new token of the first admin.
    pub fn for_server(inst: &super::Instance, server: &super::Server) -> Api {
        let token = inst
            .ok(&["admin", "token", "admin", "--label", "tests"], "")
            .trim()
            .to_owned();
        Api {
            base: format!("http://{}", server.addr("admin")),
            token,
            agent: agent(),
        }
    }

    /// Calls `method path` with an optional JSON body and token (default: the API's token; "" sends
    /// none); returns the status and the body as JSON (or a JSON string when it is not JSON).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = ureq::http::Request::builder().method(method).uri(&url);
        let req = match token.or(Some(&self.token)).filter(|t| !t.is_empty()) {
            Some(t) => req.header("Authorization", format!("Bearer {t}")),
            None => req,
        };
        let resp = match body {
            Some(b) => self.agent.run(
                req.header("Content-Type", "application/json")
                    .body(b.to_string())
                    .unwrap(),
            ),
            None => self.agent.run(req.body(()).unwrap()),
        }
        .expect("HTTP request");
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    /// `GET path` with the API's token.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, None)
    }
}

/// Posts a form (url-encoded) with an optional cookie.
pub fn post_form(
    agent: &ureq::Agent,
    url: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let body: String = fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = ureq::http::Request::builder()
        .method("POST")
        .uri(url)
        .header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let resp = agent.run(req.body(body).unwrap()).unwrap();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        resp.status().as_u16(),
        resp.into_body().read_to_string().unwrap_or_default(),
        set_cookie,
    )
}

/// GETs a page with an optional cookie; returns status, body and `Location`.
pub fn get_page(
    agent: &ureq::Agent,
    url: &str,
    cookie: Option<&str>,
) -> (u16, String, Option<String>) {
    let mut req = ureq::http::Request::builder().method("GET").uri(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let resp = agent.run(req.body(()).unwrap()).unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        resp.status().as_u16(),
        resp.into_body().read_to_string().unwrap_or_default(),
        location,
    )
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends a request with extra headers; returns status, response headers and body.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> (u16, ureq::http::HeaderMap, String) {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = match body {
        Some(b) => agent.run(req.body(b).unwrap()),
        None => agent.run(req.body(()).unwrap()),
    }
    .expect("HTTP request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (
        status,
        headers,
        resp.into_body().read_to_string().unwrap_or_default(),
    )
}

/// Opens a login form (`/login` or `/account`) as a browser does: returns the pre-login cookie
/// (`name=value`) and the form's CSRF token.
pub fn login_form(agent: &ureq::Agent, url: &str) -> (String, String) {
    let (s, headers, page) = send(agent, "GET", url, &[], None);
    assert_eq!(s, 200, "{page}");
    let cookie = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("postern_login="))
        .expect("pre-login cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    (pair, csrf_of(&page))
}

/// Posts a login form the way the browser does: with the pre-login cookie and token.
pub fn login_post(
    agent: &ureq::Agent,
    base: &str,
    form: &str,
    fields: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let (cookie, token) = login_form(agent, &format!("{base}{form}"));
    let action = if form == "/login" {
        "/login"
    } else {
        "/account/login"
    };
    let mut all = vec![("csrf", token.as_str())];
    all.extend_from_slice(fields);
    post_form(agent, &format!("{base}{action}"), Some(&cookie), &all)
}

/// Logs in to the admin UI as `admin` with `password`; returns the session cookie (`name=value`).
pub fn admin_session(agent: &ureq::Agent, base: &str, password: &str) -> String {
    let (s, _, cookie) = login_post(
        agent,
        base,
        "/login",
        &[("username", "admin"), ("password", password)],
    );
    assert_eq!(s, 303, "admin login");
    let cookie = cookie.expect("session cookie");
    cookie.split(';').next().unwrap().to_owned()
}

/// The value of the first `csrf` hidden field of a page.
pub fn csrf_of(page: &str) -> String {
    let i =
        page.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    page[i..].chars().take_while(|c| *c != '"').collect()
}
