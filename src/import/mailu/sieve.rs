//! A Mailu user's filters as Sieve (RFC 5228): the forward and auto-reply settings of the `user`
//! table turned into one script, and the user's own scripts from the Dovecot Sieve directory
//! (`/mail/<user>/sieve/*.sieve`, the active one linked from `/mail/<user>/.dovecot.sieve`).

use std::path::Path;

use super::db::MailuUser;

/// The name the script made from a user's Mailu settings is stored under.
pub const SETTINGS_SCRIPT: &str = "mailu";

/// The script doing what the user's Mailu forward and auto-reply settings did, if any is on.
///
/// Mailu forwards in Postfix before delivery (to `forward_destination`, keeping a copy when
/// `forward_keep`), and its auto-reply is a Sieve `vacation` (RFC 5230) with `:days 1` that
/// Dovecot runs at delivery between `reply_startdate` and `reply_enddate`, not for senders whose
/// address contains `noreply`/`no-reply`. A message forwarded without a copy never reached
/// Dovecot, so then no auto-reply was sent either.
pub fn settings_script(user: &MailuUser) -> Option<String> {
    let forward = user.forward_enabled && !user.forward_destination.is_empty();
    let reply = user.reply_enabled && (!forward || user.forward_keep);
    if !forward && !reply {
        return None;
    }
    let mut require = Vec::new();
    let mut body = String::new();
    if reply {
        require.push("vacation");
        let mut range = Vec::new();
        for (value, default, op) in [
            (&user.reply_startdate, "1900-01-01", "ge"),
            (&user.reply_enddate, "2999-12-31", "le"),
        ] {
            if is_iso_date(value) && value != default {
                range.push(format!("currentdate :value \"{op}\" \"date\" \"{value}\""));
            }
        }
        if !range.is_empty() {
            require.extend(["date", "relational"]);
        }
        let mut tests = vec![
            "not address :localpart :contains [\"From\", \"Reply-To\"] [\"noreply\", \"no-reply\"]"
                .to_owned(),
        ];
        tests.extend(range);
        let from = if user.displayed_name.is_empty() {
            String::new()
        } else {
            format!(
                ":from {} ",
                quote(&format!("\"{}\" <{}>", user.displayed_name, user.email))
            )
        };
        body.push_str(&format!(
            "if allof({}) {{\n  vacation :days 1 {from}:subject {} {};\n}}\n",
            tests.join(", "),
            quote(&user.reply_subject),
            quote(&user.reply_body)
        ));
    }
    if forward {
        for destination in &user.forward_destination {
            body.push_str(&format!("redirect {};\n", quote(destination)));
        }
        if user.forward_keep {
            body.push_str("keep;\n");
        }
    }
    let mut script = format!(
        "# Made by `postern import mailu` from {}'s Mailu forward and auto-reply settings.\n",
        user.email
    );
    if !require.is_empty() {
        let names: Vec<String> = require.iter().map(|r| quote(r)).collect();
        script.push_str(&format!("require [{}];\n", names.join(", ")));
    }
    script.push_str(&body);
    Some(script)
}

/// A Sieve quoted string (RFC 5228 §2.4.2: `"` and `\` escaped).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// One script of the user's Dovecot Sieve directory.
#[derive(Debug)]
pub struct UserScript {
    /// Its name (the file name without `.sieve`).
    pub name: String,
    /// Its text.
    pub content: String,
    /// Whether `.dovecot.sieve` links to it.
    pub active: bool,
}

/// The scripts in `<home>/sieve/*.sieve` (not following symbolic links), with the one that
/// `<home>/.dovecot.sieve` links to marked active. Unreadable or non-UTF-8 scripts are reported
/// through `warn` and left out.
pub fn user_scripts(home: &Path, warn: &mut dyn FnMut(String)) -> Vec<UserScript> {
    let dir = home.join("sieve");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let active = std::fs::read_link(home.join(".dovecot.sieve"))
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_owned()));
    let mut all = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let file = entry.file_name();
        let Some(name) = file.to_str().and_then(|n| n.strip_suffix(".sieve")) else {
            continue;
        };
        let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if !is_file || name.is_empty() {
            continue;
        }
        let mut bytes = Vec::new();
        let read = super::super::sources::open_no_follow(&path)
            .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes));
        match read {
            Ok(_) => {}
            Err(e) => {
                warn(format!("{}: {e}, skipped", path.display()));
                continue;
            }
        }
        let Ok(content) = String::from_utf8(bytes) else {
            warn(format!("{}: not UTF-8, skipped", path.display()));
            continue;
        };
        all.push(UserScript {
            name: name.to_owned(),
            content,
            active: active.as_deref() == Some(file.as_os_str()),
        });
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> MailuUser {
        MailuUser {
            email: "a@example.test".into(),
            password: String::new(),
            quota_bytes: 0,
            enabled: true,
            global_admin: false,
            enable_imap: true,
            displayed_name: String::new(),
            forward_enabled: false,
            forward_destination: vec![],
            forward_keep: true,
            reply_enabled: false,
            reply_subject: String::new(),
            reply_body: String::new(),
            reply_startdate: "1900-01-01".into(),
            reply_enddate: "2999-12-31".into(),
        }
    }

    #[test]
    fn settings_become_scripts_that_compile() {
        assert_eq!(settings_script(&user()), None);
        let mut u = user();
        u.forward_enabled = true;
        u.forward_destination = vec!["x@remote.test".into(), "y@remote.test".into()];
        u.forward_keep = false;
        u.reply_enabled = true;
        let s = settings_script(&u).expect("script");
        assert!(s.contains("redirect \"x@remote.test\";\nredirect \"y@remote.test\";\n"));
        assert!(!s.contains("keep;") && !s.contains("vacation"), "{s}");
        postern_sieve::compile(&s).expect("compiles");

        let mut u = user();
        u.reply_enabled = true;
        u.displayed_name = "Ann \"A\" Smith".into();
        u.reply_subject = "Away \\ gone".into();
        u.reply_body = "Back on\nMonday".into();
        u.reply_startdate = "2026-01-02".into();
        let s = settings_script(&u).expect("script");
        assert!(
            s.contains("currentdate :value \"ge\" \"date\" \"2026-01-02\""),
            "{s}"
        );
        assert!(!s.contains("\"le\""), "{s}");
        assert!(s.contains(":subject \"Away \\\\ gone\""), "{s}");
        postern_sieve::compile(&s).expect("compiles");
    }
}
