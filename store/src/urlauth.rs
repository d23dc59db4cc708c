//! URLAUTH access keys (RFC 4467 §3, §7): each mailbox gets a random 256-bit key the first time
//! its owner authorizes a URL for it. The key stays here: the IMAP server asks for the token of
//! a URL's rump (HMAC-SHA256, the `INTERNAL` mechanism) and for a token's check, which is
//! constant-time. Deleting a key (RESETKEY) makes every token made with it fail.

use ring::hmac;

use crate::db::{get, Store};
use crate::error::Result;
use crate::mailboxes::Mailbox;

fn signing_key(secret: &str) -> Option<hmac::Key> {
    let bytes = hex::decode(secret).ok()?;
    Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

impl Store {
    async fn urlauth_secret(&self, mailbox_id: i64) -> Result<Option<String>> {
        sqlx::query("SELECT secret FROM urlauth_keys WHERE mailbox_id = $1")
            .bind(mailbox_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| get(&r, "secret"))
            .transpose()
    }

    /// The token authorizing `rump` (RFC 4467 §2.3: the URL up to `;URLAUTH=access`) under the
    /// mailbox's key, made now if the mailbox has none: lowercase hex HMAC-SHA256.
    pub async fn urlauth_token(&self, mailbox: &Mailbox, rump: &str) -> Result<String> {
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        sqlx::query(
            "INSERT INTO urlauth_keys (mailbox_id, user_id, secret) VALUES ($1, $2, $3) \
             ON CONFLICT (mailbox_id) DO NOTHING",
        )
        .bind(mailbox.id)
        .bind(mailbox.user_id)
        .bind(&fresh)
        .execute(&self.pool)
        .await?;
        let secret = self.urlauth_secret(mailbox.id).await?.unwrap_or(fresh);
        let key = signing_key(&secret)
            .ok_or_else(|| crate::StoreError::invalid("urlauth key", "not hex"))?;
        Ok(hex::encode(hmac::sign(&key, rump.as_bytes()).as_ref()))
    }

    /// Whether `token` (hex) authorizes `rump` under the mailbox's current key; false when the
    /// mailbox has no key (never made, or reset).
    pub async fn urlauth_verify(&self, mailbox: &Mailbox, rump: &str, token: &str) -> Result<bool> {
        let Some(key) = self
            .urlauth_secret(mailbox.id)
            .await?
            .as_deref()
            .and_then(signing_key)
        else {
            return Ok(false);
        };
        let Ok(tag) = hex::decode(token) else {
            return Ok(false);
        };
        Ok(hmac::verify(&key, rump.as_bytes(), &tag).is_ok())
    }

    /// RESETKEY (RFC 4467 §7.1): forgets the key of one of the user's mailboxes, or of all of
    /// them; the next GENURLAUTH makes a new one.
    pub async fn reset_urlauth_keys(&self, user_id: i64, mailbox_id: Option<i64>) -> Result<()> {
        match mailbox_id {
            Some(id) => {
                sqlx::query("DELETE FROM urlauth_keys WHERE user_id = $1 AND mailbox_id = $2")
                    .bind(user_id)
                    .bind(id)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM urlauth_keys WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(())
    }
}
