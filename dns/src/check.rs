//! `postern check` for DNS: load every zone like named-checkzone and report what is wrong.

use std::fmt;
use std::path::Path;

use crate::config::DnsConfig;
use crate::error::DnsError;
use crate::state::{build, Inputs, OnZoneError, ZoneReport};
use crate::zone::Severity;

/// The outcome of checking every zone of a configuration; `Display` prints it.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// One entry per zone file loaded (zones shared with `in_view` appear once).
    pub zones: Vec<ZoneReport>,
}

impl CheckReport {
    /// True when every zone loaded (warnings allowed).
    pub fn is_ok(&self) -> bool {
        !self.zones.iter().any(ZoneReport::failed)
    }

    /// Number of errors and warnings.
    pub fn counts(&self) -> (usize, usize) {
        let all = self.zones.iter().flat_map(|z| z.problems.iter());
        all.fold((0, 0), |(e, w), p| match p.severity {
            Severity::Error => (e + 1, w),
            Severity::Warning => (e, w + 1),
        })
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for zone in &self.zones {
            for problem in &zone.problems {
                writeln!(f, "zone {}/IN [{}]: {problem}", zone.zone, zone.view)?;
            }
            match zone.serial {
                Some(serial) if !zone.failed() => writeln!(
                    f,
                    "zone {}/IN [{}]: loaded serial {serial} from {} ({} records)",
                    zone.zone, zone.view, zone.file, zone.records
                )?,
                _ => writeln!(
                    f,
                    "zone {}/IN [{}]: not loaded due to errors",
                    zone.zone, zone.view
                )?,
            }
        }
        let (errors, warnings) = self.counts();
        write!(
            f,
            "dns: {} zones, {errors} errors, {warnings} warnings",
            self.zones.len()
        )
    }
}

/// Validates the configuration (an `Err` for bad ACLs, keys, views...) and loads every
/// zone, reporting problems with file:line (SOA and NS present, CNAME exclusivity,
/// out-of-zone data, data below a delegation, NS/MX/SRV targets).
pub fn check(config: &DnsConfig, base_dir: &Path) -> Result<CheckReport, DnsError> {
    let mut inputs = Inputs::new(config.clone(), base_dir.to_path_buf());
    let (_, zones) = build(&mut inputs, OnZoneError::Report)?;
    Ok(CheckReport { zones })
}
