//! The vacation reply and forwarding forms, shared by the user's own `/account` page and the
//! admin's `/users/{address}/rules` page, and the read-only Sieve script generated from them.
//! Field names are the store's (mailu's), so a refused value is shown next to its field.

use maud::{html, Markup};
use postern_store::{AccountSettings, Store, StoreError};
use serde::Deserialize;

use super::Errors;

/// The vacation form: on/off, subject, text and the days it applies.
#[derive(Deserialize)]
pub(crate) struct VacationForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    reply_enabled: Option<String>,
    #[serde(default)]
    reply_subject: String,
    #[serde(default)]
    reply_body: String,
    #[serde(default)]
    reply_startdate: String,
    #[serde(default)]
    reply_enddate: String,
}

/// The forwarding form: on/off, address, keep a copy.
#[derive(Deserialize)]
pub(crate) struct ForwardForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    forward_enabled: Option<String>,
    #[serde(default)]
    forward_destination: String,
    #[serde(default)]
    forward_keep: Option<String>,
}

/// Which form was posted.
pub(crate) enum Posted {
    /// The vacation form.
    Vacation(VacationForm),
    /// The forwarding form.
    Forward(ForwardForm),
}

impl Posted {
    /// The CSRF token the form carried.
    pub(crate) fn csrf(&self) -> &str {
        match self {
            Posted::Vacation(f) => &f.csrf,
            Posted::Forward(f) => &f.csrf,
        }
    }

    /// `current` with the posted form's fields in place (a checkbox not sent is off).
    fn merged(&self, current: &AccountSettings) -> AccountSettings {
        let mut s = current.clone();
        match self {
            Posted::Vacation(f) => {
                s.reply_enabled = f.reply_enabled.is_some();
                s.reply_subject = f.reply_subject.clone();
                s.reply_body = f.reply_body.clone();
                s.reply_startdate = Some(f.reply_startdate.clone());
                s.reply_enddate = Some(f.reply_enddate.clone());
            }
            Posted::Forward(f) => {
                s.forward_enabled = f.forward_enabled.is_some();
                s.forward_destination = f.forward_destination.clone();
                s.forward_keep = f.forward_keep.is_some();
            }
        }
        s
    }

    /// What a successful save says.
    fn done_message(&self) -> &'static str {
        match self {
            Posted::Vacation(_) => "Your vacation reply has been saved.",
            Posted::Forward(_) => "Your forwarding has been saved.",
        }
    }
}

/// Stores the posted form for `user_id`: the success message, or the unsaved values with the
/// errors to show next to their fields.
pub(crate) async fn save(
    store: &Store,
    user_id: i64,
    posted: &Posted,
) -> Result<&'static str, (AccountSettings, Errors)> {
    let current = store.account_settings(user_id).await.map_err(|e| {
        (
            AccountSettings::default(),
            Errors::from_store("reply_body", &e),
        )
    })?;
    let wanted = posted.merged(&current);
    match store.set_account_settings(user_id, &wanted).await {
        Ok(_) => Ok(posted.done_message()),
        Err(e) => {
            let field = match &e {
                StoreError::Invalid { what, .. } => *what,
                _ => "reply_body",
            };
            Err((wanted, Errors::from_store(field, &e)))
        }
    }
}

fn checkbox(label: &str, name: &str, checked: bool) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.field.check {
            input id=(id) name=(name) type="checkbox" value="on" checked[checked];
            label for=(id) { (label) }
        }
    }
}

fn error(errors: &Errors, name: &str) -> Markup {
    html! {
        @if let Some(msg) = errors.get(name) {
            span.error role="alert" data-field=(name) { (msg) }
        }
    }
}

/// Both forms posting to `{base}/vacation` and `{base}/forwarding`, each carrying `csrf`, and
/// the generated script below them.
pub(crate) fn sections(base: &str, csrf: &str, s: &AccountSettings, errors: &Errors) -> Markup {
    let field = super::field;
    html! {
        h2 { "Vacation reply" }
        form.card #vacation method="post" action=(format!("{base}/vacation")) {
            input type="hidden" name="csrf" value=(csrf);
            (checkbox("Send a vacation reply", "reply_enabled", s.reply_enabled))
            (field("Subject", "reply_subject", "text", &s.reply_subject, errors))
            div.field.wide {
                label for="f-reply_body" { "Text" }
                textarea id="f-reply_body" name="reply_body" rows="6" { (s.reply_body.replace("\r\n", "\n")) }
                (error(errors, "reply_body"))
            }
            (field("First day", "reply_startdate", "date", s.reply_startdate.as_deref().unwrap_or(""), errors))
            (field("Last day", "reply_enddate", "date", s.reply_enddate.as_deref().unwrap_or(""), errors))
            button type="submit" { "Save vacation reply" }
        }
        p.hint { "Each sender gets at most one reply every " (postern_sieve::VACATION_DAYS) " days." }
        h2 { "Forwarding" }
        form.card #forwarding method="post" action=(format!("{base}/forwarding")) {
            input type="hidden" name="csrf" value=(csrf);
            (checkbox("Forward incoming mail", "forward_enabled", s.forward_enabled))
            div.field {
                label for="f-forward_destination" { "To addresses (separated by commas)" }
                input id="f-forward_destination" name="forward_destination" type="email" multiple value=(s.forward_destination);
                (error(errors, "forward_destination"))
            }
            (checkbox("Keep a copy here", "forward_keep", s.forward_keep))
            button type="submit" { "Save forwarding" }
        }
        h2 { "Generated Sieve script" }
        @match postern_sieve::account_script(s) {
            Some(script) => pre #generated-sieve { (script.replace("\r\n", "\n")) },
            None => p #generated-sieve { "None: vacation reply and forwarding are off." },
        }
    }
}
