//! DNS records managed from the admin UI, per view. The DNS server merges them into the view's zones;
//! a change of content moves the served serial (`dns_zone_serials`).

use crate::changes::Change;
use crate::db::{get, Store};
use crate::error::{unique_as_exists, Result, StoreError};
use crate::unix_now;

/// Record types the admin may manage.
pub const MANAGED_TYPES: [&str; 7] = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA"];

/// One managed record in presentation format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Row id.
    pub id: i64,
    /// View the record is served in.
    pub view: String,
    /// Owner name, lower-case, fully qualified with a trailing dot.
    pub name: String,
    /// Record type, upper-case (one of [`MANAGED_TYPES`]).
    pub rtype: String,
    /// TTL in seconds.
    pub ttl: i64,
    /// RDATA in zone-file presentation format, e.g. `10 mail.example.test.`.
    pub data: String,
}

/// The new content of one RRset after a dynamic update (RFC 2136 §3.4.2); no records
/// deletes the RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRrset {
    /// Owner name (fully qualified or not; stored lower-case with a trailing dot).
    pub name: String,
    /// Record type mnemonic, e.g. `A` or `TYPE65280`.
    pub rtype: String,
    /// The records: (TTL, RDATA in presentation format).
    pub records: Vec<(i64, String)>,
}

/// One journal entry: what an update changed between two served serials of a zone (for
/// IXFR, RFC 1995 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsJournal {
    /// Zone origin, e.g. `example.test.`.
    pub zone: String,
    /// Served serial before the change.
    pub from_serial: u32,
    /// Served serial after it.
    pub to_serial: u32,
    /// Records removed, one `owner ttl type rdata` line each.
    pub removed: String,
    /// Records added, one `owner ttl type rdata` line each.
    pub added: String,
}

/// Journal entries kept per view and zone; older ones are pruned (IXFR from an older serial
/// gets the full zone, which RFC 1995 §4 allows).
const JOURNAL_KEEP: i64 = 200;

impl Store {
    /// Replaces whole RRsets of a view in one transaction (an RFC 2136 update is atomic,
    /// §3.4) and records the change in the zone's journal; the change bus tells the DNS
    /// servers, which serve it under a new serial and notify secondaries. Unlike [`Store::add_dns_record`]
    /// any type is accepted: the DNS crate has parsed and checked the records and the key's
    /// permissions.
    pub async fn replace_dns_rrsets(
        &self,
        view: &str,
        rrsets: &[DnsRrset],
        journal: &DnsJournal,
    ) -> Result<()> {
        if view.is_empty() {
            return Err(StoreError::invalid("view", "must not be empty"));
        }
        let mut tx = self.write_tx().await?;
        let now = unix_now();
        for set in rrsets {
            let name = owner_name(&set.name)?;
            let rtype = set.rtype.trim().to_ascii_uppercase();
            if rtype.is_empty() || !rtype.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(StoreError::invalid("record type", rtype));
            }
            sqlx::query("DELETE FROM dns_records WHERE view = $1 AND name = $2 AND rtype = $3")
                .bind(view)
                .bind(&name)
                .bind(&rtype)
                .execute(&mut *tx)
                .await?;
            for (ttl, data) in &set.records {
                check_ttl_and_data(*ttl, data)?;
                sqlx::query(
                    "INSERT INTO dns_records (view, name, rtype, ttl, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(view)
                .bind(&name)
                .bind(&rtype)
                .bind(*ttl)
                .bind(data.trim())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(unique_as_exists(format!("{name} {rtype} {data} in view {view}")))?;
            }
        }
        sqlx::query(
            "INSERT INTO dns_journal (view, zone, from_serial, to_serial, removed, added, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(view)
        .bind(&journal.zone)
        .bind(i64::from(journal.from_serial))
        .bind(i64::from(journal.to_serial))
        .bind(&journal.removed)
        .bind(&journal.added)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM dns_journal WHERE view = $1 AND zone = $2 AND id NOT IN \
             (SELECT id FROM dns_journal WHERE view = $1 AND zone = $2 ORDER BY id DESC LIMIT $3)",
        )
        .bind(view)
        .bind(&journal.zone)
        .bind(JOURNAL_KEEP)
        .execute(&mut *tx)
        .await?;
        self.commit(
            tx,
            vec![Change::Dns {
                view: view.to_owned(),
            }],
        )
        .await
    }

    /// Adds a record to a view. The caller (admin UI, API) validates RDATA syntax with the DNS crate;
    /// here the view, owner name, type and TTL are checked.
    pub async fn add_dns_record(
        &self,
        view: &str,
        name: &str,
        rtype: &str,
        ttl: i64,
        data: &str,
    ) -> Result<DnsRecord> {
        if view.is_empty() {
            return Err(StoreError::invalid("view", "must not be empty"));
        }
        let name = owner_name(name)?;
        let rtype = rtype.to_ascii_uppercase();
        if !MANAGED_TYPES.contains(&rtype.as_str()) {
            return Err(StoreError::invalid(
                "record type",
                format!("{rtype}: one of {}", MANAGED_TYPES.join(" ")),
            ));
        }
        if !(0..=i64::from(i32::MAX)).contains(&ttl) {
            return Err(StoreError::invalid(
                "TTL",
                "must be 0 to 2147483647 seconds (RFC 2181 §8)",
            ));
        }
        let data = data.trim();
        if data.is_empty() {
            return Err(StoreError::invalid("record data", "must not be empty"));
        }
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "INSERT INTO dns_records (view, name, rtype, ttl, data, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(view)
        .bind(&name)
        .bind(&rtype)
        .bind(ttl)
        .bind(data)
        .bind(unix_now())
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as_exists(format!("{name} {rtype} {data} in view {view}")))?;
        let id = get(&row, "id")?;
        self.commit(
            tx,
            vec![Change::Dns {
                view: view.to_owned(),
            }],
        )
        .await?;
        Ok(DnsRecord {
            id,
            view: view.to_owned(),
            name,
            rtype,
            ttl,
            data: data.to_owned(),
        })
    }

    /// Changes the TTL and data of a record (the admin's "edit").
    pub async fn update_dns_record(&self, id: i64, ttl: i64, data: &str) -> Result<DnsRecord> {
        check_ttl_and_data(ttl, data)?;
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("UPDATE dns_records SET ttl = $1, data = $2 WHERE id = $3 RETURNING id, view, name, rtype, ttl, data")
            .bind(ttl)
            .bind(data.trim())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unique_as_exists(format!("record {}", data.trim())))?
            .ok_or_else(|| StoreError::NotFound(format!("DNS record {id}")))?;
        let record = record_from_row(&row)?;
        self.commit(
            tx,
            vec![Change::Dns {
                view: record.view.clone(),
            }],
        )
        .await?;
        Ok(record)
    }

    /// Removes a record by id.
    pub async fn remove_dns_record(&self, id: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("DELETE FROM dns_records WHERE id = $1 RETURNING view")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("DNS record {id}")))?;
        let view: String = get(&row, "view")?;
        self.commit(tx, vec![Change::Dns { view }]).await
    }

    /// The journal of a view's zones, oldest first.
    pub async fn dns_journal(&self, view: &str) -> Result<Vec<DnsJournal>> {
        let rows = sqlx::query(
            "SELECT zone, from_serial, to_serial, removed, added FROM dns_journal WHERE view = $1 ORDER BY id",
        )
        .bind(view)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DnsJournal {
                    zone: get(r, "zone")?,
                    from_serial: get::<i64>(r, "from_serial")? as u32,
                    to_serial: get::<i64>(r, "to_serial")? as u32,
                    removed: get(r, "removed")?,
                    added: get(r, "added")?,
                })
            })
            .collect()
    }

    /// Managed records of a view (or of every view), by name and type.
    pub async fn dns_records(&self, view: Option<&str>) -> Result<Vec<DnsRecord>> {
        let rows = sqlx::query(
            "SELECT id, view, name, rtype, ttl, data FROM dns_records WHERE ($1 IS NULL OR view = $1) \
             ORDER BY view, name, rtype, id",
        )
        .bind(view)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }
}

/// Validates a record owner name and returns it lower-case and fully qualified. Unlike a mail
/// domain, an owner may hold underscore labels (`_dmarc`, `_imaps._tcp`, `_acme-challenge`;
/// RFC 8552) and a leading `*` label (a wildcard, RFC 4592).
fn owner_name(name: &str) -> Result<String> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| Err(StoreError::invalid("name", format!("{name:?}: {why}")));
    if n.is_empty() || n.len() > 253 {
        return bad("must be 1 to 253 characters");
    }
    for (i, label) in n.split('.').enumerate() {
        if label.is_empty() || label.len() > 63 {
            return bad("each label must be 1 to 63 characters");
        }
        if label == "*" && i == 0 {
            continue;
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("labels hold letters, digits, hyphens and underscores (a wildcard only as `*.` first)");
        }
    }
    Ok(format!("{n}."))
}

fn record_from_row(r: &sqlx::any::AnyRow) -> Result<DnsRecord> {
    Ok(DnsRecord {
        id: get(r, "id")?,
        view: get(r, "view")?,
        name: get(r, "name")?,
        rtype: get(r, "rtype")?,
        ttl: get(r, "ttl")?,
        data: get(r, "data")?,
    })
}

fn check_ttl_and_data(ttl: i64, data: &str) -> Result<()> {
    if !(0..=i64::from(i32::MAX)).contains(&ttl) {
        return Err(StoreError::invalid(
            "TTL",
            "must be 0 to 2147483647 seconds (RFC 2181 §8)",
        ));
    }
    if data.trim().is_empty() {
        return Err(StoreError::invalid("record data", "must not be empty"));
    }
    Ok(())
}
