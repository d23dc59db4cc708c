//! Checks of a single managed record before it is stored (admin UI and API), so that a record
//! the DNS would ignore is refused with a reason instead.

use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};

use crate::config::DnsConfig;
use crate::load::{managed_in_zone, zone_file};
use crate::lookup::dname_above;
use crate::managed::{merge, ManagedRecord};
use crate::state::Inputs;
use crate::zone::parse::parse_file;
use crate::zone::{Loc, Problem, Severity, Zone};

/// The zones (origins, without trailing dot) each view owns, in the configured order. Zones a
/// view only borrows from another (`in_view`) are left out: their managed records belong to the
/// owning view.
pub fn view_zones(config: &DnsConfig) -> Vec<(String, Vec<String>)> {
    config
        .view
        .iter()
        .map(|v| {
            let zones = v
                .zone
                .iter()
                .filter(|z| z.in_view.is_none())
                .map(|z| z.name.trim_end_matches('.').to_ascii_lowercase())
                .collect();
            (v.name.clone(), zones)
        })
        .collect()
}

/// Refuses a record that would not be served as given or would stop its zone loading: on
/// top of [`validate_managed`], the record is merged with the zone file and the view's
/// `current` records exactly as at load, and refused if the zone file or an earlier record overrides it
/// (same RRset, CNAME exclusivity, RFC 1034 §3.6.2), if the zone would then fail to load, or
/// if it lies below a delegation or a DNAME or is non-authoritative data at a delegation
/// (RFC 1034 §4.2.1, RFC 6672 §2.3).
pub(crate) fn check_served(
    inputs: &mut Inputs,
    view: &str,
    record: &ManagedRecord,
    current: &[ManagedRecord],
) -> Result<(), String> {
    let origin = validate_managed(&inputs.config, view, record)?;
    let config = inputs.config.clone();
    let Some(zc) = config
        .view
        .iter()
        .filter(|v| v.name == view)
        .flat_map(|v| v.zone.iter())
        .find(|z| {
            z.in_view.is_none()
                && Name::from_ascii(format!("{}.", z.name.trim_end_matches('.')))
                    .is_ok_and(|n| n == origin)
        })
    else {
        return Ok(());
    };
    let (path, display) = zone_file(inputs, view, zc, &origin);
    let parsed = parse_file(&path, &display, &origin).map_err(|e| {
        format!(
            "zone {origin} does not load from its file: {}",
            Problem::from_parse(e)
        )
    })?;
    let mut candidate = record
        .parse(view, &origin)
        .map_err(|p| p.message.trim_start_matches("ignored: ").to_owned())?;
    let loc = Loc {
        file: Arc::from("the new record"),
        line: 0,
    };
    candidate.loc = loc.clone();
    let owner = candidate.record.name.clone();
    let name = LowerName::new(&owner);
    let rtype = candidate.record.record_type();
    let mut managed = managed_in_zone(inputs, view, &origin, current, &mut Vec::new());
    // Editing a CNAME replaces it: the stored one is not a second CNAME.
    managed.retain(|(m, _)| {
        !(rtype == RecordType::CNAME
            && m.record.record_type() == RecordType::CNAME
            && LowerName::new(&m.record.name) == name)
    });
    let before = managed.clone();
    managed.push((candidate, false));
    let (records, problems) = merge(parsed.records.clone(), managed);
    if let Some(p) = problems.iter().find(|p| p.loc.as_ref() == Some(&loc)) {
        return Err(format!(
            "would not be served: {}",
            p.message.trim_start_matches("overridden: ")
        ));
    }
    let (zone, problems) = Zone::build(&origin, &records, 0);
    let Some(zone) = zone else {
        let (old, _) = Zone::build(&origin, &merge(parsed.records.clone(), before).0, 0);
        return match (old, problems.iter().find(|p| p.severity == Severity::Error)) {
            (Some(_), Some(p)) => Err(format!("zone {origin} would not load: {}", p.message)),
            _ => Ok(()),
        };
    };
    if let Some((dname, _)) = dname_above(&zone, &owner) {
        return Err(format!(
            "would not be served: below the DNAME at {dname} (RFC 6672 §2.3)"
        ));
    }
    let glue = matches!(rtype, RecordType::A | RecordType::AAAA);
    match zone.find_cut(&owner, false) {
        Some((cut, _)) if LowerName::new(&cut) != name && !glue => Err(format!(
            "would not be served: below the delegation at {cut} (RFC 1034 §4.2.1)"
        )),
        Some(_) if !glue && !matches!(rtype, RecordType::NS | RecordType::DS) => {
            Err("would not be served: only NS, DS and glue belong at a delegation point".to_owned())
        }
        _ => Ok(()),
    }
}

/// The zone of `view` a record belongs to; refuses a record that names no zone of `view` or
/// whose type or data do not parse.
pub fn validate_managed(
    config: &DnsConfig,
    view: &str,
    record: &ManagedRecord,
) -> Result<Name, String> {
    let zones = view_zones(config)
        .into_iter()
        .find(|(name, _)| name == view)
        .map(|(_, zones)| zones)
        .ok_or_else(|| format!("there is no view {view:?}"))?;
    let owner = record
        .owner()
        .ok_or_else(|| format!("{:?} is not a valid name", record.name))?;
    let origin = zones
        .iter()
        .filter_map(|z| Name::from_ascii(format!("{z}.")).ok())
        .filter(|z| z.zone_of(&owner))
        .max_by_key(Name::num_labels)
        .ok_or_else(|| {
            format!(
                "{} is in no zone of view {view} ({})",
                record.name,
                zones.join(", ")
            )
        })?;
    record
        .parse(view, &origin)
        .map(|_| origin)
        .map_err(|p| p.message.trim_start_matches("ignored: ").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DnsConfig {
        toml::from_str(
            r#"
            [[view]]
            name = "internal"
            match_clients = ["any"]
            [[view.zone]]
            name = "example.test"
            file = "x.zone"
            "#,
        )
        .expect("config")
    }

    fn rec(name: &str, rtype: &str, data: &str) -> ManagedRecord {
        ManagedRecord {
            name: name.into(),
            ttl: 300,
            rtype: rtype.into(),
            data: data.into(),
            synthesised: false,
        }
    }

    #[test]
    fn accepts_good_records() {
        let c = config();
        assert_eq!(
            view_zones(&c),
            [("internal".to_owned(), vec!["example.test".to_owned()])]
        );
        for (n, t, d) in [
            ("www.example.test", "A", "10.0.0.5"),
            ("example.test.", "MX", "10 mail.example.test."),
            ("x.example.test", "TXT", "\"hello\" \"world\""),
            (
                "_imaps._tcp.example.test",
                "SRV",
                "0 1 993 mail.example.test.",
            ),
            ("example.test", "CAA", "0 issue \"letsencrypt.org\""),
        ] {
            assert!(
                validate_managed(&c, "internal", &rec(n, t, d)).is_ok(),
                "{n} {t} {d}"
            );
        }
    }

    #[test]
    fn borrowed_zones_take_no_records() {
        let c: DnsConfig = toml::from_str(
            r#"
            [[view]]
            name = "internal"
            match_clients = ["any"]
            [[view.zone]]
            name = "example.test"
            in_view = "external"
            [[view]]
            name = "external"
            match_clients = ["any"]
            [[view.zone]]
            name = "example.test"
            file = "x.zone"
            "#,
        )
        .expect("config");
        assert!(
            validate_managed(&c, "internal", &rec("www.example.test", "A", "10.0.0.5")).is_err()
        );
        assert!(
            validate_managed(&c, "external", &rec("www.example.test", "A", "10.0.0.5")).is_ok()
        );
    }

    #[test]
    fn refuses_bad_records_with_a_reason() {
        let c = config();
        let e =
            validate_managed(&c, "internal", &rec("www.other.test", "A", "10.0.0.5")).unwrap_err();
        assert!(e.contains("in no zone of view internal"), "{e}");
        assert!(
            validate_managed(&c, "external", &rec("www.example.test", "A", "10.0.0.5"))
                .unwrap_err()
                .contains("no view")
        );
        assert!(
            validate_managed(&c, "internal", &rec("www.example.test", "A", "10.0.0.300")).is_err()
        );
        assert!(validate_managed(
            &c,
            "internal",
            &rec("www.example.test", "MX", "mail.example.test.")
        )
        .is_err());
        assert!(validate_managed(
            &c,
            "internal",
            &rec("www.example.test", "A", "10.0.0.1\n10.0.0.2")
        )
        .is_err());
        assert!(validate_managed(
            &c,
            "internal",
            &rec("bad name!.example.test", "A", "10.0.0.1")
        )
        .is_err());
    }
}
