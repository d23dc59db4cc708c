//! Hosted mail domains.

use crate::address::normalize_domain;
use crate::changes::Change;
use crate::db::{get, Store};
use crate::error::{unique_as_exists, Result, StoreError};
use crate::unix_now;

/// A mail domain Postern accepts mail for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Row id.
    pub id: i64,
    /// Lower-case name without trailing dot.
    pub name: String,
}

impl Store {
    /// Adds a hosted domain with a fresh DKIM key pair (RSA-2048 and Ed25519) ready to sign.
    pub async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = normalize_domain(name)?;
        let keys = crate::mail_auth::generate_pair().await?;
        let mut tx = self.write_tx().await?;
        let row =
            sqlx::query("INSERT INTO domains (name, created_at) VALUES ($1, $2) RETURNING id")
                .bind(&name)
                .bind(unix_now())
                .fetch_one(&mut *tx)
                .await
                .map_err(unique_as_exists(format!("domain {name}")))?;
        let id = get(&row, "id")?;
        crate::mail_auth::insert_pair(&mut tx, id, keys, crate::mail_auth::DkimState::Active)
            .await?;
        self.commit(tx, vec![Change::MailDomains]).await?;
        Ok(Domain { id, name })
    }

    /// All hosted domains, by name.
    pub async fn list_domains(&self) -> Result<Vec<Domain>> {
        let rows = sqlx::query("SELECT id, name FROM domains ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Domain {
                    id: get(r, "id")?,
                    name: get(r, "name")?,
                })
            })
            .collect()
    }

    /// The hosted domain called `name`, if any.
    pub async fn domain(&self, name: &str) -> Result<Option<Domain>> {
        let Ok(name) = normalize_domain(name) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT id, name FROM domains WHERE name = $1")
            .bind(&name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Domain {
                id: get(&r, "id")?,
                name: get(&r, "name")?,
            })
        })
        .transpose()
    }

    /// Removes a domain with all its users, mailboxes, messages and aliases.
    pub async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = normalize_domain(name)?;
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM domains WHERE name = $1")
            .bind(&name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("domain {name}")));
        }
        crate::blobs::delete_unreferenced_blobs(&mut tx, self.backend).await?;
        self.commit(tx, vec![Change::MailDomains]).await
    }
}
