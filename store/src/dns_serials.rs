//! The SOA serial each view last served for each zone (with a digest of the zone's content), kept
//! across restarts so that changed content never reuses a serial a secondary already holds.

use crate::db::{get, Store};
use crate::error::Result;

/// The served serial of one zone in one view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneSerialRow<'a> {
    /// The view.
    pub view: &'a str,
    /// The zone origin, lower case with a trailing dot.
    pub zone: &'a str,
    /// The served SOA serial.
    pub serial: u32,
    /// The DNS crate's digest of the zone's content.
    pub digest: u64,
}

/// An owned [`ZoneSerialRow`]: (view, zone, serial, digest).
pub type ZoneSerial = (String, String, u32, u64);

impl Store {
    /// Every remembered served serial.
    pub async fn dns_zone_serials(&self) -> Result<Vec<ZoneSerial>> {
        let rows = sqlx::query("SELECT view, zone, serial, digest FROM dns_zone_serials")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    get(r, "view")?,
                    get(r, "zone")?,
                    get::<i64>(r, "serial")? as u32,
                    // The digest is stored as the signed integer with the same bits.
                    get::<i64>(r, "digest")? as u64,
                ))
            })
            .collect()
    }

    /// Remembers served serials (replacing the previous ones of the same view and zone).
    pub async fn save_dns_zone_serials(&self, serials: &[ZoneSerialRow<'_>]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for s in serials {
            sqlx::query(
                "INSERT INTO dns_zone_serials (view, zone, serial, digest) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (view, zone) DO UPDATE SET serial = excluded.serial, digest = excluded.digest",
            )
            .bind(s.view)
            .bind(s.zone)
            .bind(i64::from(s.serial))
            .bind(s.digest as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
