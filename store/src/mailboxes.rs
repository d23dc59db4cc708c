//! Per-user mailboxes (IMAP folders) with the counters IMAP needs: UIDVALIDITY, UIDNEXT and
//! HIGHESTMODSEQ (RFC 3501 §2.3.1.1, RFC 7162 §3.1.1).

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::db::{get, Store};
use crate::error::{unique_as_exists, Result, StoreError};

/// Mailboxes every new user gets: INBOX and the RFC 6154 special-use folders clients look for.
pub const DEFAULT_MAILBOXES: [(&str, Option<&str>); 6] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

/// A user's mailbox. Obtained only through a user-scoped lookup, so holding one proves ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Full name with `/` as hierarchy separator; `INBOX` is always spelled so.
    pub name: String,
    /// RFC 6154 special-use attribute such as `\Sent`.
    pub special_use: Option<String>,
    /// Whether the mailbox is subscribed (LSUB, LIST (SUBSCRIBED)).
    pub subscribed: bool,
    /// UIDVALIDITY: fixed for the mailbox's life, different for a re-created mailbox of the same name.
    pub uidvalidity: i64,
    /// The UID the next message will get.
    pub uidnext: i64,
    /// Highest MODSEQ of any change in the mailbox.
    pub highestmodseq: i64,
}

fn mailbox_from_row(r: &AnyRow) -> Result<Mailbox> {
    Ok(Mailbox {
        id: get(r, "id")?,
        user_id: get(r, "user_id")?,
        name: get(r, "name")?,
        special_use: get(r, "special_use")?,
        subscribed: get::<i64>(r, "subscribed")? != 0,
        uidvalidity: get(r, "uidvalidity")?,
        uidnext: get(r, "uidnext")?,
        highestmodseq: get(r, "highestmodseq")?,
    })
}

/// Canonical form of a mailbox name: `INBOX` is case-insensitive (RFC 3501 §5.1), other names are
/// kept as given; empty names, empty levels and control characters are refused.
fn canonical_name(name: &str) -> Result<String> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".to_owned());
    }
    let bad = name.is_empty()
        || name.len() > 1000
        || name.split('/').any(str::is_empty)
        || name.chars().any(char::is_control);
    if bad {
        return Err(StoreError::invalid("mailbox name", format!("{name:?}")));
    }
    Ok(name.to_owned())
}

/// Inserts a mailbox with a fresh random UIDVALIDITY.
pub(crate) async fn insert_mailbox(
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
    name: &str,
    special_use: Option<&str>,
) -> Result<i64> {
    let uidvalidity = i64::from(rand::random_range(1..=u32::MAX));
    let row = sqlx::query(
        "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(special_use)
    .bind(uidvalidity)
    .fetch_one(&mut **tx)
    .await
    .map_err(unique_as_exists(format!("mailbox {name}")))?;
    get(&row, "id")
}

impl Store {
    /// The user's mailboxes, by name.
    pub async fn list_mailboxes(&self, user_id: i64) -> Result<Vec<Mailbox>> {
        let rows = sqlx::query("SELECT * FROM mailboxes WHERE user_id = $1 ORDER BY name")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(mailbox_from_row).collect()
    }

    /// The user's mailbox called `name` (`INBOX` in any case), if it exists.
    pub async fn mailbox(&self, user_id: i64, name: &str) -> Result<Option<Mailbox>> {
        let Ok(name) = canonical_name(name) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT * FROM mailboxes WHERE user_id = $1 AND name = $2")
            .bind(user_id)
            .bind(&name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(mailbox_from_row).transpose()
    }

    /// Creates a mailbox for the user.
    pub async fn create_mailbox(
        &self,
        user_id: i64,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<Mailbox> {
        let name = canonical_name(name)?;
        let mut tx = self.write_tx().await?;
        let id = insert_mailbox(&mut tx, user_id, &name, special_use).await?;
        let row = sqlx::query("SELECT * FROM mailboxes WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let mailbox = mailbox_from_row(&row)?;
        self.commit(tx, vec![]).await?;
        Ok(mailbox)
    }
}
