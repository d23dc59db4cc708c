//! What the DNS keeps of its signed zones (migration 0029): per view and zone, the signatures
//! of every RRset with a digest of the records they cover, and the journal of differences
//! between the signed versions served, so that IXFR (RFC 1995) sends differences after a
//! restart and from every node. The records are opaque DNS wire-format bytes to the store.
//! The journal is pruned on every write to its last entries and bytes per zone.

use std::collections::BTreeMap;

use crate::db::{get, Store};
use crate::error::Result;
use crate::unix_now;

/// The signatures over one RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSignatureRow {
    /// Owner name, lower case, fully qualified.
    pub owner: String,
    /// Type of the RRset signed.
    pub rtype: u16,
    /// The DNS crate's digest of the RRset.
    pub digest: u64,
    /// The RRSIGs as the DNS crate keeps them: each one's RDATA after its two-octet length.
    pub rrsigs: Vec<u8>,
}

/// One journal entry of a signed zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSignedEntry {
    /// Served serial before.
    pub from_serial: u32,
    /// Served serial after.
    pub to_serial: u32,
    /// Records removed, in wire format.
    pub removed: Vec<u8>,
    /// Records added, in wire format.
    pub added: Vec<u8>,
}

/// Everything kept for one signed zone of one view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsSignedZone {
    /// The view.
    pub view: String,
    /// The zone origin.
    pub zone: String,
    /// The signatures, by RRset.
    pub signatures: Vec<DnsSignatureRow>,
    /// The journal, oldest entry first.
    pub journal: Vec<DnsSignedEntry>,
}

/// What one signing changed.
#[derive(Debug, Clone, Copy)]
pub struct DnsSignedChange<'a> {
    /// The view.
    pub view: &'a str,
    /// The zone origin.
    pub zone: &'a str,
    /// The served serial the signatures were made for.
    pub serial: u32,
    /// The new journal entry, if the serial moved.
    pub entry: Option<&'a DnsSignedEntry>,
    /// Signatures replacing those of their RRset.
    pub upserts: &'a [DnsSignatureRow],
    /// RRsets (owner, type) no longer signed.
    pub deletes: &'a [(String, u16)],
}

/// How much journal to keep per zone and view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalLimits {
    /// Entries kept at most.
    pub max_changes: usize,
    /// Bytes (removed plus added records) kept at most; an entry bigger than this is not kept.
    pub max_bytes: u64,
}

/// Rows per multi-row INSERT: 7 parameters each, within both backends' limits.
const BATCH: usize = 500;

impl Store {
    /// Everything kept of every signed zone.
    pub async fn dns_signed_zones(&self) -> Result<Vec<DnsSignedZone>> {
        let mut out: BTreeMap<(String, String), DnsSignedZone> = BTreeMap::new();
        let rows =
            sqlx::query("SELECT view, zone, owner, rtype, digest, rrsigs FROM dns_signatures")
                .fetch_all(&self.pool)
                .await?;
        for r in &rows {
            let row = signature_row(r)?;
            zone_of(&mut out, get(r, "view")?, get(r, "zone")?)
                .signatures
                .push(row);
        }
        drop(rows);
        let rows = sqlx::query(
            "SELECT view, zone, from_serial, to_serial, removed, added FROM dns_signed_journal ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let entry = journal_row(r)?;
            zone_of(&mut out, get(r, "view")?, get(r, "zone")?)
                .journal
                .push(entry);
        }
        Ok(out.into_values().collect())
    }

    /// Stores what one signing changed, in one transaction, and prunes the zone's journal to
    /// `limits`. Of two nodes signing the same version (the same journal step, or signatures
    /// for the same serial) the first to store it wins: the store always holds one node's
    /// consistent signed zone, which every node serves after a restart. Returns false when
    /// another node's version stands (nothing was stored): the caller should adopt it
    /// ([`Store::dns_signed_version`]).
    pub async fn save_dns_signed_change(
        &self,
        change: DnsSignedChange<'_>,
        limits: JournalLimits,
    ) -> Result<bool> {
        let (view, zone) = (change.view, change.zone);
        let mut tx = self.write_tx().await?;
        if let Some(entry) = change.entry {
            let bytes = (entry.removed.len() + entry.added.len()) as i64;
            let stored = sqlx::query(
                "INSERT INTO dns_signed_journal (view, zone, from_serial, to_serial, removed, added, bytes, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (view, zone, from_serial, to_serial) DO NOTHING",
            )
            .bind(view)
            .bind(zone)
            .bind(i64::from(entry.from_serial))
            .bind(i64::from(entry.to_serial))
            .bind(entry.removed.as_slice())
            .bind(entry.added.as_slice())
            .bind(bytes)
            .bind(unix_now())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if stored == 0 {
                // Another node stored this step first: its version stands.
                return Ok(false);
            }
            prune(&mut tx, view, zone, limits).await?;
        }
        for (owner, rtype) in change.deletes {
            sqlx::query(
                "DELETE FROM dns_signatures WHERE view = $1 AND zone = $2 AND owner = $3 AND rtype = $4",
            )
            .bind(view)
            .bind(zone)
            .bind(owner)
            .bind(i64::from(*rtype))
            .execute(&mut *tx)
            .await?;
        }
        for batch in change.upserts.chunks(BATCH) {
            let tuples: Vec<String> = (0..batch.len())
                .map(|i| {
                    let p = i * 7;
                    let params: Vec<String> = (1..=7).map(|c| format!("${}", p + c)).collect();
                    format!("({})", params.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO dns_signatures (view, zone, owner, rtype, digest, serial, rrsigs) VALUES {} \
                 ON CONFLICT (view, zone, owner, rtype) DO UPDATE \
                 SET digest = excluded.digest, serial = excluded.serial, rrsigs = excluded.rrsigs \
                 WHERE dns_signatures.serial <> excluded.serial",
                tuples.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in batch {
                query = query
                    .bind(view)
                    .bind(zone)
                    .bind(row.owner.as_str())
                    .bind(i64::from(row.rtype))
                    .bind(row.digest as i64)
                    .bind(i64::from(change.serial))
                    .bind(row.rrsigs.as_slice());
            }
            if query.execute(&mut *tx).await?.rows_affected() < batch.len() as u64 {
                // Another node stored signatures for this serial first: its version stands.
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The signed version of `view`'s `zone` stored for `serial`: the signatures made for it
    /// and the journal entry leading to it.
    pub async fn dns_signed_version(
        &self,
        view: &str,
        zone: &str,
        serial: u32,
    ) -> Result<DnsSignedZone> {
        let rows = sqlx::query(
            "SELECT owner, rtype, digest, rrsigs FROM dns_signatures \
             WHERE view = $1 AND zone = $2 AND serial = $3",
        )
        .bind(view)
        .bind(zone)
        .bind(i64::from(serial))
        .fetch_all(&self.pool)
        .await?;
        let signatures = rows.iter().map(signature_row).collect::<Result<_>>()?;
        let rows = sqlx::query(
            "SELECT from_serial, to_serial, removed, added FROM dns_signed_journal \
             WHERE view = $1 AND zone = $2 AND to_serial = $3 ORDER BY id",
        )
        .bind(view)
        .bind(zone)
        .bind(i64::from(serial))
        .fetch_all(&self.pool)
        .await?;
        let journal = rows.iter().map(journal_row).collect::<Result<_>>()?;
        Ok(DnsSignedZone {
            view: view.to_owned(),
            zone: zone.to_owned(),
            signatures,
            journal,
        })
    }
}

fn signature_row(r: &sqlx::any::AnyRow) -> Result<DnsSignatureRow> {
    Ok(DnsSignatureRow {
        owner: get(r, "owner")?,
        rtype: get::<i64>(r, "rtype")? as u16,
        // Stored as the signed integer with the same bits.
        digest: get::<i64>(r, "digest")? as u64,
        rrsigs: get(r, "rrsigs")?,
    })
}

fn journal_row(r: &sqlx::any::AnyRow) -> Result<DnsSignedEntry> {
    Ok(DnsSignedEntry {
        from_serial: get::<i64>(r, "from_serial")? as u32,
        to_serial: get::<i64>(r, "to_serial")? as u32,
        removed: get(r, "removed")?,
        added: get(r, "added")?,
    })
}

/// The entry of `view`'s `zone` in `zones`, created empty.
fn zone_of(
    zones: &mut BTreeMap<(String, String), DnsSignedZone>,
    view: String,
    zone: String,
) -> &mut DnsSignedZone {
    zones
        .entry((view.clone(), zone.clone()))
        .or_insert_with(|| DnsSignedZone {
            view,
            zone,
            ..DnsSignedZone::default()
        })
}

/// Deletes the zone's journal entries beyond the newest `max_changes` and `max_bytes`.
async fn prune(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    view: &str,
    zone: &str,
    limits: JournalLimits,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT id, bytes FROM dns_signed_journal WHERE view = $1 AND zone = $2 ORDER BY id DESC",
    )
    .bind(view)
    .bind(zone)
    .fetch_all(&mut **tx)
    .await?;
    let mut total: u64 = 0;
    let mut cut = None;
    for (kept, row) in rows.iter().enumerate() {
        total = total.saturating_add(get::<i64>(row, "bytes")?.max(0) as u64);
        if kept >= limits.max_changes || total > limits.max_bytes {
            cut = Some(get::<i64>(row, "id")?);
            break;
        }
    }
    if let Some(id) = cut {
        sqlx::query("DELETE FROM dns_signed_journal WHERE view = $1 AND zone = $2 AND id <= $3")
            .bind(view)
            .bind(zone)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
