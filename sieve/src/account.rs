//! The Sieve script generated from a user's vacation and forwarding settings (the account page,
//! the admin UI/API/CLI). Delivery runs it before the user's own active script, as Pigeonhole
//! runs `sieve_before` scripts, so scripts uploaded over ManageSieve keep working.

use postern_store::{AccountSettings, Store, StoreError};

/// Days between two replies to the same sender (RFC 5230 §4.1 `:days`; Pigeonhole's
/// `sieve_vacation_default_period` is 7 days).
pub const VACATION_DAYS: u32 = 7;

/// `text` as a Sieve quoted string (RFC 5228 §2.4.2) that means exactly `text`: `"` and `\\` are
/// written as encoded characters (RFC 5228 §2.4.2.4, `${hex:22}`, `${hex:5C}`), because
/// `sieve-rs` reads backslash escapes by the previous raw byte (`"\\"` does not end a string
/// there, and `\n` becomes a line end); every other character (CRLF, non-ASCII, `$`, a line
/// holding only ".") stands as it is. Bare CR or LF are written as CRLF, the only line end a
/// string may hold. `${` cannot be written at all (`sieve-rs` reads it as a variable even
/// without the `variables` extension): the store refuses it in the texts. Scripts using this
/// require `encoded-character`.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    for c in unified.chars() {
        match c {
            '"' => out.push_str("${hex:22}"),
            '\\' => out.push_str("${hex:5C}"),
            '\n' => out.push_str("\r\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The script for `settings`, or `None` when neither vacation nor forwarding is on. The
/// vacation reply is limited to its dates (server time) with the `date` extension's
/// `currentdate` test (RFC 5260 §5); forwarding is one `redirect :copy` (RFC 3894) per address
/// when a copy is kept, plain `redirect`s (which cancel the implicit keep, RFC 5228 §4.2)
/// otherwise.
pub fn account_script(settings: &AccountSettings) -> Option<String> {
    let vacation = settings.reply_enabled;
    let forward = settings.forward_enabled && settings.forward_destinations().next().is_some();
    if !vacation && !forward {
        return None;
    }
    let mut require = vec!["encoded-character"];
    let mut body = String::new();
    if vacation {
        require.push("vacation");
        let mut window = Vec::new();
        if let Some(start) = &settings.reply_startdate {
            window.push(format!(
                "currentdate :value \"ge\" \"date\" {}",
                quote(start)
            ));
        }
        if let Some(end) = &settings.reply_enddate {
            window.push(format!("currentdate :value \"le\" \"date\" {}", quote(end)));
        }
        let mut action = format!("vacation :days {VACATION_DAYS}");
        if !settings.reply_subject.is_empty() {
            action.push_str(&format!(" :subject {}", quote(&settings.reply_subject)));
        }
        action.push_str(&format!(" {};\r\n", quote(&settings.reply_body)));
        if window.is_empty() {
            body.push_str(&action);
        } else {
            require.extend(["date", "relational"]);
            body.push_str(&format!(
                "if allof ({}) {{\r\n    {action}}}\r\n",
                window.join(", ")
            ));
        }
    }
    if forward {
        let copy = if settings.forward_keep {
            require.push("copy");
            ":copy "
        } else {
            ""
        };
        for target in settings.forward_destinations() {
            body.push_str(&format!("redirect {copy}{};\r\n", quote(target)));
        }
    }
    let mut script =
        "# Generated from the account's vacation and forwarding settings.\r\n".to_owned();
    let names: Vec<String> = require.iter().map(|r| quote(r)).collect();
    script.push_str(&format!("require [{}];\r\n", names.join(", ")));
    script.push_str(&body);
    Some(script)
}

/// The generated script of user `user_id`, for delivery to run before the user's own script.
pub async fn account_script_for(store: &Store, user_id: i64) -> Result<Option<String>, StoreError> {
    Ok(account_script(&store.account_settings(user_id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vacation(subject: &str, body: &str) -> AccountSettings {
        AccountSettings {
            reply_enabled: true,
            reply_subject: subject.into(),
            reply_body: body.into(),
            ..AccountSettings::default()
        }
        .normalized()
        .unwrap()
    }

    /// The compiled script holds `text` exactly (sieve-rs keeps strings as `Text(..)`, so the
    /// debug form of the program contains the debug form of each string).
    fn holds(script: &str, text: &str) -> bool {
        let compiled = crate::compile(script).unwrap_or_else(|e| panic!("{e}:\n{script}"));
        format!("{compiled:?}").contains(&format!("{text:?}"))
    }

    #[test]
    fn nothing_on_means_no_script() {
        assert_eq!(account_script(&AccountSettings::default()), None);
        let s = AccountSettings {
            forward_destination: "bob@example.org".into(),
            ..AccountSettings::default()
        };
        assert_eq!(account_script(&s), None);
    }

    #[test]
    fn hostile_text_compiles_and_is_reproduced() {
        let subject = "Out \"of\" office \\ Abwesend: äöü 😀 \\";
        let body = "Price: $5, $$\" {x} $\\\r\nHello \"you\",\r\n.\r\nback\\slash \\\" and \"\\\r\n..\r\ntext:\r\n}\r\n# not a comment\r\nGrüße";
        let settings = vacation(subject, body);
        let script = account_script(&settings).unwrap();
        assert!(holds(&script, subject), "{script}");
        assert!(holds(&script, body), "{script}");
        assert!(script.contains(":days 7"));
    }

    #[test]
    fn dates_and_forwarding() {
        let mut s = vacation("Away", "Back soon.");
        s.reply_startdate = Some("2026-12-20".into());
        s.reply_enddate = Some("2027-01-06".into());
        s.forward_enabled = true;
        s.forward_destination = "bob@example.org".into();
        s.forward_keep = true;
        let script = account_script(&s).unwrap();
        assert!(holds(&script, "2026-12-20") && holds(&script, "2027-01-06"));
        assert!(script.contains(
            "require [\"encoded-character\", \"vacation\", \"date\", \"relational\", \"copy\"]"
        ));
        assert!(script.contains("redirect :copy \"bob@example.org\";"));
        s.forward_destination = "bob@example.org,carol@example.net".into();
        let script = account_script(&s).unwrap();
        assert!(script.contains(
            "redirect :copy \"bob@example.org\";\r\nredirect :copy \"carol@example.net\";\r\n"
        ));
        s.forward_destination = "bob@example.org".into();
        s.forward_keep = false;
        s.reply_enabled = false;
        let script = account_script(&s).unwrap();
        crate::compile(&script).unwrap();
        assert!(
            script.contains("redirect \"bob@example.org\";") && !script.contains("vacation :days")
        );
        s.reply_enabled = true;
        s.reply_startdate = None;
        let script = account_script(&s).unwrap();
        crate::compile(&script).unwrap();
        assert!(script.contains("currentdate :value \"le\"") && !script.contains("\"ge\""));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c$"), "\"a${hex:22}b${hex:5C}c$\"");
        assert_eq!(quote("a\nb\rc"), "\"a\r\nb\r\nc\"");
    }
}
