//! Checks of a single managed record before it is stored (admin UI and API), so that a record
//! the DNS would ignore is refused with a reason instead.

use hickory_proto::rr::Name;

use crate::config::DnsConfig;
use crate::managed::ManagedRecord;

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

/// Refuses a record that names no zone of `view` or whose type or data do not parse.
pub fn validate_managed(
    config: &DnsConfig,
    view: &str,
    record: &ManagedRecord,
) -> Result<(), String> {
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
        .map(|_| ())
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
            assert_eq!(
                validate_managed(&c, "internal", &rec(n, t, d)),
                Ok(()),
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
        assert_eq!(
            validate_managed(&c, "external", &rec("www.example.test", "A", "10.0.0.5")),
            Ok(())
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
