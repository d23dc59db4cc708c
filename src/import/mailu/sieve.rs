//! A Mailu user's filters: the forward and auto-reply settings of the `user` table, which become
//! the user's vacation and forwarding settings (the `account_settings` the account page shows and
//! delivery runs as a generated Sieve script), and the user's own scripts from the Dovecot Sieve
//! directory (`/mail/<user>/sieve/*.sieve`, the active one linked from `/mail/<user>/.dovecot.sieve`).

use std::path::Path;

use postern_store::AccountSettings;

use super::db::MailuUser;

/// The vacation and forwarding settings doing what the user's Mailu settings did (not yet
/// normalised), or `None` when Mailu had nothing set.
///
/// Mailu forwards in Postfix before delivery (to every `forward_destination`, keeping a copy when
/// `forward_keep`), and its auto-reply is a Sieve `vacation` that Dovecot runs at delivery between
/// `reply_startdate` and `reply_enddate` (`1900-01-01` and `2999-12-31` mean no limit). A message
/// forwarded without a copy never reached Dovecot, so then no auto-reply was sent: the reply's
/// texts are kept with the reply off.
pub fn account_settings(user: &MailuUser) -> Option<AccountSettings> {
    let forward = user.forward_enabled && !user.forward_destination.is_empty();
    let date = |value: &str, unlimited: &str| {
        (is_iso_date(value) && value != unlimited).then(|| value.to_owned())
    };
    let settings = AccountSettings {
        forward_enabled: forward,
        forward_destination: user.forward_destination.join(","),
        forward_keep: user.forward_keep,
        reply_enabled: user.reply_enabled && (!forward || user.forward_keep),
        reply_subject: user.reply_subject.clone(),
        reply_body: user.reply_body.clone(),
        reply_startdate: date(&user.reply_startdate, "1900-01-01"),
        reply_enddate: date(&user.reply_enddate, "2999-12-31"),
    };
    let nothing = AccountSettings {
        forward_keep: settings.forward_keep,
        ..AccountSettings::default()
    };
    (settings != nothing).then_some(settings)
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
    fn settings_map_to_account_settings() {
        assert_eq!(account_settings(&user()), None);
        let mut u = user();
        u.forward_enabled = true;
        u.forward_destination = vec!["x@remote.test".into(), "y@remote.test".into()];
        u.forward_keep = false;
        u.reply_enabled = true;
        u.reply_body = "Away".into();
        let s = account_settings(&u).expect("settings");
        assert_eq!(s.forward_destination, "x@remote.test,y@remote.test");
        assert!(s.forward_enabled && !s.forward_keep);
        assert!(
            !s.reply_enabled,
            "Mailu sent no reply to mail forwarded without a copy"
        );
        assert_eq!(s.reply_body, "Away");

        let mut u = user();
        u.reply_enabled = true;
        u.reply_subject = "Away \\".into();
        u.reply_startdate = "2026-01-02".into();
        let s = account_settings(&u).expect("settings");
        assert!(s.reply_enabled && !s.forward_enabled);
        assert_eq!(s.reply_startdate.as_deref(), Some("2026-01-02"));
        assert_eq!(s.reply_enddate, None);
        assert_eq!(s.reply_subject, "Away \\");
    }
}
