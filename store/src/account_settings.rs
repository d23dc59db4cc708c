//! A user's own vacation reply (RFC 5230) and forwarding, set on the account page or by an
//! administrator, stored under mailu's names (`forward_enabled`, `forward_destination`,
//! `forward_keep`, `reply_enabled`, `reply_subject`, `reply_body`, `reply_startdate`,
//! `reply_enddate`). The store validates and keeps them; `postern-sieve` turns them into the Sieve
//! script that delivery runs before the user's own one.

use crate::aliases::Resolution;
use crate::db::{get, Store};
use crate::error::{Result, StoreError};
use crate::{normalize_address, unix_now, JunkTraining};

/// Longest vacation subject, in characters.
pub const MAX_REPLY_SUBJECT_CHARS: usize = 255;
/// Longest vacation text, in bytes.
pub const MAX_REPLY_BODY_BYTES: usize = 16 * 1024;
/// Most forwarding addresses one user may have.
pub const MAX_FORWARD_DESTINATIONS: usize = 16;

/// Vacation and forwarding settings of one user (mailu's field names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSettings {
    /// Forward incoming mail.
    pub forward_enabled: bool,
    /// Where to: normalised addresses separated by `,` (mailu's `CommaSeparatedList`; may be
    /// kept while forwarding is off). [`AccountSettings::forward_destinations`] splits it.
    pub forward_destination: String,
    /// Keep a copy in the mailbox when forwarding.
    pub forward_keep: bool,
    /// Answer incoming mail with the vacation reply.
    pub reply_enabled: bool,
    /// The reply's subject (one line; empty lets the interpreter use `Auto: <subject>`).
    pub reply_subject: String,
    /// The reply's text, lines ending in CRLF.
    pub reply_body: String,
    /// First day the reply is sent (`YYYY-MM-DD`, server time), if limited.
    pub reply_startdate: Option<String>,
    /// Last day the reply is sent (`YYYY-MM-DD`, server time), if limited.
    pub reply_enddate: Option<String>,
}

impl AccountSettings {
    /// The forwarding addresses, in order.
    pub fn forward_destinations(&self) -> impl Iterator<Item = &str> {
        self.forward_destination
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
    }

    /// Checks and normalises every field except the forwarding loop check (which needs the
    /// store): subject one line within [`MAX_REPLY_SUBJECT_CHARS`], body within
    /// [`MAX_REPLY_BODY_BYTES`] with CRLF line ends and no other control characters than tab,
    /// neither (nor the forwarding addresses) holding `${` (the Sieve interpreter reads a
    /// variable there whatever the script requires, so the script could not say it),
    /// real calendar dates with the start not after the end, a valid forwarding address, and
    /// text to send when the reply is on.
    pub fn normalized(&self) -> Result<AccountSettings> {
        let subject = self.reply_subject.trim();
        if subject.chars().count() > MAX_REPLY_SUBJECT_CHARS {
            return Err(StoreError::invalid(
                "reply_subject",
                format!("longer than {MAX_REPLY_SUBJECT_CHARS} characters"),
            ));
        }
        if subject.chars().any(char::is_control) {
            return Err(StoreError::invalid(
                "reply_subject",
                "it must be one line without control characters",
            ));
        }
        let body = crlf_lines(&self.reply_body);
        if body.len() > MAX_REPLY_BODY_BYTES {
            return Err(StoreError::invalid(
                "reply_body",
                format!("longer than {MAX_REPLY_BODY_BYTES} bytes"),
            ));
        }
        if body
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\r' | '\n' | '\t'))
        {
            return Err(StoreError::invalid(
                "reply_body",
                "it contains a control character",
            ));
        }
        if self.reply_enabled && body.trim().is_empty() {
            return Err(StoreError::invalid(
                "reply_body",
                "a vacation reply needs a text",
            ));
        }
        for (what, text) in [("reply_subject", subject), ("reply_body", body.as_str())] {
            if text.contains("${") {
                return Err(StoreError::invalid(
                    what,
                    "it may not contain \"${\" (Sieve would read a variable there)",
                ));
            }
        }
        let start = optional_date("reply_startdate", self.reply_startdate.as_deref())?;
        let end = optional_date("reply_enddate", self.reply_enddate.as_deref())?;
        if let (Some(s), Some(e)) = (&start, &end) {
            if s > e {
                return Err(StoreError::invalid(
                    "reply_enddate",
                    "the last day is before the first",
                ));
            }
        }
        let mut destinations: Vec<String> = Vec::new();
        for d in self.forward_destinations() {
            let d = normalize_address(d)
                .map_err(|e| StoreError::invalid("forward_destination", e.to_string()))?
                .to_string();
            if !destinations.contains(&d) {
                destinations.push(d);
            }
        }
        if destinations.len() > MAX_FORWARD_DESTINATIONS {
            return Err(StoreError::invalid(
                "forward_destination",
                format!("more than {MAX_FORWARD_DESTINATIONS} addresses"),
            ));
        }
        if self.forward_enabled && destinations.is_empty() {
            return Err(StoreError::invalid(
                "forward_destination",
                "forwarding needs an address",
            ));
        }
        let destination = destinations.join(",");
        if destination.contains("${") {
            return Err(StoreError::invalid(
                "forward_destination",
                "it may not contain \"${\" (Sieve would read a variable there)",
            ));
        }
        Ok(AccountSettings {
            forward_enabled: self.forward_enabled,
            forward_destination: destination,
            forward_keep: self.forward_keep,
            reply_enabled: self.reply_enabled,
            reply_subject: subject.to_owned(),
            reply_body: body,
            reply_startdate: start,
            reply_enddate: end,
        })
    }
}

/// `text` with every line end (CRLF, LF or CR) as CRLF and trailing white space and blank lines
/// removed, so a form's and an API client's text come out the same.
fn crlf_lines(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let trimmed = unified.trim_end_matches(['\n', ' ', '\t']);
    trimmed.replace('\n', "\r\n")
}

/// A `YYYY-MM-DD` date that exists in the calendar, or `None` for an empty value.
fn optional_date(what: &'static str, value: Option<&str>) -> Result<Option<String>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || StoreError::invalid(what, format!("{v:?} is not a date (YYYY-MM-DD)"));
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |s: &str| {
        s.parse::<u32>()
            .ok()
            .filter(|_| s.bytes().all(|c| c.is_ascii_digit()))
    };
    let (Some(y), Some(m), Some(d)) = (num(&v[..4]), num(&v[5..7]), num(&v[8..])) else {
        return Err(bad());
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if y < 1970 || d == 0 || d > days {
        return Err(bad());
    }
    Ok(Some(v.to_owned()))
}

/// The columns of `account_settings` that [`settings_from_row`] reads.
const SETTINGS_COLUMNS: &str =
    "forward_enabled, forward_destination, forward_keep, reply_enabled, \
     reply_subject, reply_body, reply_startdate, reply_enddate";

/// The settings of a row holding [`SETTINGS_COLUMNS`].
fn settings_from_row(r: &sqlx::any::AnyRow) -> Result<AccountSettings> {
    Ok(AccountSettings {
        forward_enabled: get::<i64>(r, "forward_enabled")? != 0,
        forward_destination: get(r, "forward_destination")?,
        forward_keep: get::<i64>(r, "forward_keep")? != 0,
        reply_enabled: get::<i64>(r, "reply_enabled")? != 0,
        reply_subject: get(r, "reply_subject")?,
        reply_body: get(r, "reply_body")?,
        reply_startdate: get(r, "reply_startdate")?,
        reply_enddate: get(r, "reply_enddate")?,
    })
}

/// What delivery to a user runs, read in one query ([`Store::delivery_filters`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFilters {
    /// The vacation and forwarding settings (all off if never saved).
    pub settings: AccountSettings,
    /// The active Sieve script, if any.
    pub script: Option<crate::SieveScript>,
    /// How many messages the user's junk statistics were trained with.
    pub junk: JunkTraining,
}

impl AccountSettings {
    /// The settings of an account that never saved any: all off, a forward keeps a copy.
    fn unsaved() -> AccountSettings {
        AccountSettings {
            forward_keep: true,
            ..AccountSettings::default()
        }
    }
}

impl Store {
    /// The user's vacation and forwarding settings (all off if never saved).
    pub async fn account_settings(&self, user_id: i64) -> Result<AccountSettings> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SETTINGS_COLUMNS} FROM account_settings WHERE user_id = $1"
        )))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => settings_from_row(&r),
            None => Ok(AccountSettings::unsaved()),
        }
    }

    /// What delivery to the user runs, in one query: the account settings (see
    /// [`Store::account_settings`]), the active Sieve script, if any (see
    /// [`Store::active_sieve_script`]), and how much the junk statistics were trained (see
    /// [`Store::junk_training`]).
    pub async fn delivery_filters(&self, user_id: i64) -> Result<DeliveryFilters> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SETTINGS_COLUMNS}, v.name, v.content, v.active, v.updated_at, \
             j.spam AS junk_spam, j.ham AS junk_ham FROM users u \
             LEFT JOIN account_settings s ON s.user_id = u.id \
             LEFT JOIN sieve_scripts v ON v.user_id = u.id AND v.active = 1 \
             LEFT JOIN junk_totals j ON j.user_id = u.id WHERE u.id = $1"
        )))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(DeliveryFilters {
                settings: AccountSettings::unsaved(),
                script: None,
                junk: JunkTraining::default(),
            });
        };
        let settings = match get::<Option<i64>>(&r, "forward_enabled")? {
            Some(_) => settings_from_row(&r)?,
            None => AccountSettings::unsaved(),
        };
        let script = match get::<Option<String>>(&r, "name")? {
            Some(_) => Some(crate::sieve::script_from_row(&r)?),
            None => None,
        };
        let junk = JunkTraining {
            spam: get::<Option<i64>>(&r, "junk_spam")?.unwrap_or(0),
            ham: get::<Option<i64>>(&r, "junk_ham")?.unwrap_or(0),
        };
        Ok(DeliveryFilters {
            settings,
            script,
            junk,
        })
    }

    /// Validates ([`AccountSettings::normalized`]) and stores the user's settings; forwarding
    /// to any address that delivers back to the user (directly, by `+tag` or through an alias)
    /// is refused, as it would loop. Returns what was stored.
    pub async fn set_account_settings(
        &self,
        user_id: i64,
        settings: &AccountSettings,
    ) -> Result<AccountSettings> {
        let s = settings.normalized()?;
        for destination in s.forward_destinations() {
            if let Resolution::Deliver { local, .. } = self.resolve_recipient(destination).await? {
                if local.contains(&user_id) {
                    return Err(StoreError::invalid(
                        "forward_destination",
                        format!(
                            "{destination} delivers back to this mailbox; forwarding would loop"
                        ),
                    ));
                }
            }
        }
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO account_settings (user_id, forward_enabled, forward_destination, \
             forward_keep, reply_enabled, reply_subject, reply_body, reply_startdate, \
             reply_enddate, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (user_id) DO UPDATE SET forward_enabled = excluded.forward_enabled, \
             forward_destination = excluded.forward_destination, \
             forward_keep = excluded.forward_keep, reply_enabled = excluded.reply_enabled, \
             reply_subject = excluded.reply_subject, reply_body = excluded.reply_body, \
             reply_startdate = excluded.reply_startdate, reply_enddate = excluded.reply_enddate, \
             updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(i64::from(s.forward_enabled))
        .bind(&s.forward_destination)
        .bind(i64::from(s.forward_keep))
        .bind(i64::from(s.reply_enabled))
        .bind(&s.reply_subject)
        .bind(&s.reply_body)
        .bind(s.reply_startdate.clone())
        .bind(s.reply_enddate.clone())
        .bind(unix_now())
        .execute(&mut *tx)
        .await?;
        self.commit(tx, vec![]).await?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            optional_date("d", Some("2028-02-29")).unwrap().as_deref(),
            Some("2028-02-29")
        );
        assert_eq!(optional_date("d", Some(" ")).unwrap(), None);
        for bad in [
            "2027-02-29",
            "2026-13-01",
            "2026-1-01",
            "20261201",
            "2026-12-00",
            "+026-12-01",
        ] {
            assert!(optional_date("d", Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalisation() {
        let s = AccountSettings {
            reply_enabled: true,
            reply_subject: "  Away ".into(),
            reply_body: "a\nb\r\n.\rc\n\n".into(),
            forward_destination: " Bob@Example.ORG ".into(),
            ..AccountSettings::default()
        }
        .normalized()
        .unwrap();
        assert_eq!(s.reply_subject, "Away");
        assert_eq!(s.reply_body, "a\r\nb\r\n.\r\nc");
        assert_eq!(s.forward_destination, "bob@example.org");
        let s = AccountSettings {
            forward_destination: "b@x.org, ,A@Y.org,b@x.org".into(),
            ..AccountSettings::default()
        }
        .normalized()
        .unwrap();
        assert_eq!(s.forward_destination, "b@x.org,a@y.org");
        assert_eq!(
            s.forward_destinations().collect::<Vec<_>>(),
            ["b@x.org", "a@y.org"]
        );
        let bad = |f: &dyn Fn(&mut AccountSettings)| {
            let mut s = AccountSettings {
                reply_body: "x".into(),
                ..AccountSettings::default()
            };
            f(&mut s);
            s.normalized().is_err()
        };
        assert!(bad(&|s| s.reply_subject = "a\r\nBcc: x".into()));
        assert!(bad(&|s| s.reply_subject = "x".repeat(256)));
        assert!(bad(&|s| s.reply_body = "x\u{0}".into()));
        assert!(bad(&|s| s.reply_body = "cost: ${amount}".into()));
        assert!(bad(&|s| s.reply_body = "x".repeat(MAX_REPLY_BODY_BYTES + 1)));
        assert!(bad(&|s| {
            s.reply_enabled = true;
            s.reply_body = " \n".into();
        }));
        assert!(bad(&|s| s.forward_enabled = true));
        assert!(bad(&|s| s.forward_destination = "not an address".into()));
        assert!(bad(
            &|s| s.forward_destination = "a@x.org, not an address".into()
        ));
        assert!(bad(&|s| {
            s.forward_destination = (0..=MAX_FORWARD_DESTINATIONS)
                .map(|i| format!("a{i}@x.org"))
                .collect::<Vec<_>>()
                .join(",")
        }));
        assert!(bad(&|s| {
            s.reply_startdate = Some("2026-12-24".into());
            s.reply_enddate = Some("2026-12-01".into());
        }));
    }
}
