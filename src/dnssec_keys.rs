//! DNSSEC keys between the store and the DNS crate, and `postern dns key ...` / `postern dns ds`:
//! keys are kept in the store per zone name, so every view and every node signs a zone with the
//! same keys. A signed zone without keys gets an ECDSA P-256 combined signing key (CSK) the first
//! time the server or the CLI needs one. Rollovers are CLI-driven in three runs, like the DKIM
//! rotation: ZSKs by pre-publication (RFC 6781 §4.1.1.1), KSKs and CSKs by double-DS with CDS and
//! CDNSKEY telling the parent (RFC 6781 §4.1.2, RFC 7344).

use anyhow::{bail, Context};
use postern_dns::dnssec::{generate, KeyRole, KeyState, ZoneKey, ECDSAP256SHA256, ED25519};
use postern_dns::DnsConfig;
use postern_store::{DnssecKey, DnssecKeyState, DnssecRole, Store};

use crate::cli::DnsKeyCmd;
use crate::output::outln;

/// The signed zones of a configuration, lower-case without the trailing dot.
pub fn signed_zones(config: &DnsConfig) -> Vec<String> {
    let mut zones: Vec<String> = config
        .view
        .iter()
        .flat_map(|v| v.zone.iter())
        .filter(|z| z.dnssec)
        .map(|z| z.name.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    zones.sort();
    zones.dedup();
    zones
}

/// The keys of every zone, for the DNS server; a signed zone without keys gets a CSK first.
pub async fn load(store: &Store, config: &DnsConfig) -> anyhow::Result<Vec<ZoneKey>> {
    for zone in signed_zones(config) {
        ensure_keys(store, &zone).await?;
    }
    store
        .all_dnssec_keys()
        .await?
        .iter()
        .map(zone_key)
        .collect()
}

/// Creates an active ECDSA P-256 CSK for a zone that has no key; of nodes doing this at once,
/// one wins and the others keep its key.
async fn ensure_keys(store: &Store, zone: &str) -> anyhow::Result<()> {
    if !store.dnssec_keys(zone).await?.is_empty() {
        return Ok(());
    }
    let key = new_key(
        zone,
        ECDSAP256SHA256,
        DnssecRole::Csk,
        DnssecKeyState::Active,
    )
    .await?;
    if store.add_first_dnssec_key(&key).await? {
        tracing::info!(
            zone,
            tag = key.key_tag,
            "generated a DNSSEC signing key (CSK, ECDSA P-256)"
        );
    }
    Ok(())
}

fn zone_key(key: &DnssecKey) -> anyhow::Result<ZoneKey> {
    let role = match key.role {
        DnssecRole::Csk => KeyRole::Csk,
        DnssecRole::Ksk => KeyRole::Ksk,
        DnssecRole::Zsk => KeyRole::Zsk,
    };
    let state = match key.state {
        DnssecKeyState::Published => KeyState::Published,
        DnssecKeyState::Active => KeyState::Active,
        DnssecKeyState::Retired => KeyState::Retired,
    };
    ZoneKey::new(
        &key.zone,
        key.algorithm,
        role,
        state,
        key.private_pkcs8.clone(),
    )
    .with_context(|| format!("DNSSEC key {} of {}", key.key_tag, key.zone))
}

/// Generates and stores a key; returns its tag.
async fn add_key(
    store: &Store,
    zone: &str,
    algorithm: u8,
    role: DnssecRole,
    state: DnssecKeyState,
) -> anyhow::Result<u16> {
    let key = new_key(zone, algorithm, role, state).await?;
    store.add_dnssec_key(&key).await?;
    Ok(key.key_tag)
}

/// Generates a key (not stored yet).
async fn new_key(
    zone: &str,
    algorithm: u8,
    role: DnssecRole,
    state: DnssecKeyState,
) -> anyhow::Result<DnssecKey> {
    let pkcs8 = tokio::task::spawn_blocking(move || generate(algorithm)).await??;
    let mut key = DnssecKey {
        zone: zone.to_owned(),
        key_tag: 0,
        algorithm,
        role,
        state,
        private_pkcs8: pkcs8,
        created_at: 0,
    };
    key.key_tag = zone_key(&key)?.key_tag()?;
    Ok(key)
}

/// The zone as the store names it, checked to be signed in the configuration.
fn signed_zone(config: &DnsConfig, zone: &str) -> anyhow::Result<String> {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    if !signed_zones(config).contains(&zone) {
        bail!("zone {zone} is not signed: set `dnssec = true` on it in the [dns] config");
    }
    Ok(zone)
}

/// Runs `postern dns ds ZONE`: the DS records of the zone's entry-point keys for the parent.
pub async fn ds(store: &Store, config: &DnsConfig, zone: &str) -> anyhow::Result<()> {
    let zone = signed_zone(config, zone)?;
    ensure_keys(store, &zone).await?;
    for key in store.dnssec_keys(&zone).await? {
        let entry_point = matches!(key.role, DnssecRole::Csk | DnssecRole::Ksk);
        if entry_point && key.state != DnssecKeyState::Retired {
            outln!("{}", zone_key(&key)?.ds_line()?);
        }
    }
    Ok(())
}

fn parse_role(role: &str) -> anyhow::Result<DnssecRole> {
    DnssecRole::parse(role).with_context(|| format!("role `{role}`: use csk, ksk or zsk"))
}

fn parse_algorithm(algorithm: &str) -> anyhow::Result<u8> {
    match algorithm {
        "ecdsa" | "13" => Ok(ECDSAP256SHA256),
        "ed25519" | "15" => Ok(ED25519),
        other => bail!("algorithm `{other}`: use ecdsa (13) or ed25519 (15)"),
    }
}

/// Runs `postern dns key ...`.
pub async fn key(store: &Store, config: &DnsConfig, cmd: DnsKeyCmd) -> anyhow::Result<()> {
    match cmd {
        DnsKeyCmd::List { zone } => {
            let zone = signed_zone(config, &zone)?;
            for key in store.dnssec_keys(&zone).await? {
                outln!(
                    "{} {} algorithm {} {} created {}",
                    key.key_tag,
                    key.role.as_str(),
                    key.algorithm,
                    key.state.as_str(),
                    crate::manage::rfc3339(key.created_at)
                );
                outln!("  {}", zone_key(&key)?.dnskey_line()?);
            }
        }
        DnsKeyCmd::Generate {
            zone,
            algorithm,
            role,
            publish_only,
        } => {
            let zone = signed_zone(config, &zone)?;
            let state = if publish_only {
                DnssecKeyState::Published
            } else {
                DnssecKeyState::Active
            };
            let tag = add_key(
                store,
                &zone,
                parse_algorithm(&algorithm)?,
                parse_role(&role)?,
                state,
            )
            .await?;
            outln!("{zone}: key {tag} added ({})", state.as_str());
        }
        DnsKeyCmd::Rollover { zone, role } => {
            let zone = signed_zone(config, &zone)?;
            rollover(store, &zone, parse_role(&role)?).await?;
        }
        DnsKeyCmd::Remove { zone, tag } => {
            let zone = signed_zone(config, &zone)?;
            store.delete_dnssec_key(&zone, tag).await?;
            outln!("{zone}: key {tag} removed");
        }
    }
    Ok(())
}

/// One step of a rollover of the keys with `role`: publish a new key; then sign with it and
/// retire the old one; then remove the old one. Run each step once caches (the DNSKEY TTL, and
/// for a KSK or CSK the parent's DS TTL) have seen the previous one.
async fn rollover(store: &Store, zone: &str, role: DnssecRole) -> anyhow::Result<()> {
    let keys: Vec<DnssecKey> = store
        .dnssec_keys(zone)
        .await?
        .into_iter()
        .filter(|k| k.role == role)
        .collect();
    let in_state = |s: DnssecKeyState| keys.iter().filter(move |k| k.state == s);
    let entry_point = role != DnssecRole::Zsk;
    if in_state(DnssecKeyState::Retired).next().is_some() {
        for key in in_state(DnssecKeyState::Retired) {
            store.delete_dnssec_key(zone, key.key_tag).await?;
            outln!(
                "{zone}: step 3 of 3: key {} removed; rollover done",
                key.key_tag
            );
        }
    } else if in_state(DnssecKeyState::Published).next().is_some() {
        for key in in_state(DnssecKeyState::Active) {
            store
                .set_dnssec_key_state(zone, key.key_tag, DnssecKeyState::Retired)
                .await?;
            outln!("{zone}: key {} retired (still published)", key.key_tag);
            if entry_point {
                outln!(
                    "  remove its DS from the parent: {}",
                    zone_key(key)?.ds_line()?
                );
            }
        }
        for key in in_state(DnssecKeyState::Published) {
            store
                .set_dnssec_key_state(zone, key.key_tag, DnssecKeyState::Active)
                .await?;
            outln!("{zone}: step 2 of 3: key {} signs now; run again to remove the old key once caches have the new signatures", key.key_tag);
        }
    } else {
        let Some(algorithm) = in_state(DnssecKeyState::Active).map(|k| k.algorithm).next() else {
            bail!(
                "{zone} has no active {} key to roll over (see `dns key list`, `dns key generate`)",
                role.as_str()
            );
        };
        let tag = add_key(store, zone, algorithm, role, DnssecKeyState::Published).await?;
        outln!("{zone}: step 1 of 3: key {tag} published ({}); run again once caches have the new DNSKEY RRset", role.as_str());
        if entry_point {
            let added = store.dnssec_keys(zone).await?;
            if let Some(key) = added.iter().find(|k| k.key_tag == tag) {
                outln!(
                    "  add its DS at the parent, beside the old one (CDS/CDNSKEY list both): {}",
                    zone_key(key)?.ds_line()?
                );
            }
        }
    }
    Ok(())
}
