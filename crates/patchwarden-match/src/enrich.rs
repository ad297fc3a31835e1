//! The facts a policy judges a finding by: CISA KEV, EPSS and SSVC by CVE, and the CVSS and
//! vendor ratings of every advisory that speaks of the vulnerability.
//!
//! A finding names one vulnerability with its aliases; any of those names may be the CVE that
//! KEV, EPSS and Vulnrichment list. Ratings come from all the vulnerability's sources,
//! including CVE records that match no package themselves but carry the CNA's and CISA's CVSS.
//! Whether a source was loaded at all is kept apart from whether it lists the CVE: "not in KEV"
//! and "KEV not loaded" lead to different decisions (BOD 26-04's "no CISA data").

use patchwarden_core::advisory::{EpssScore, KevEntry, Severity, VendorSeverity};
use patchwarden_core::finding::Finding;
use patchwarden_core::policy::{Lookup, Ssvc};
use rustc_hash::FxHashMap as HashMap;

use crate::Index;

/// KEV, EPSS and SSVC by CVE id; each `None` until its source is loaded.
#[derive(Debug, Default)]
pub struct Enrichment {
    kev: Option<HashMap<String, KevEntry>>,
    epss: Option<HashMap<String, EpssScore>>,
    ssvc: Option<HashMap<String, Ssvc>>,
}

/// The ratings of a finding's vulnerability.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ratings {
    pub cvss: Vec<Severity>,
    pub vendor: Vec<VendorSeverity>,
}

impl Enrichment {
    /// Adds CISA KEV entries (and marks the catalogue loaded, even if it is empty).
    pub fn add_kev(&mut self, entries: impl IntoIterator<Item = KevEntry>) {
        let map = self.kev.get_or_insert_with(HashMap::default);
        for e in entries {
            map.insert(e.cve.clone(), e);
        }
    }

    /// Adds EPSS scores by CVE.
    pub fn add_epss(&mut self, scores: impl IntoIterator<Item = (String, EpssScore)>) {
        self.epss
            .get_or_insert_with(HashMap::default)
            .extend(scores);
    }

    /// Adds SSVC decision points by CVE (from CISA Vulnrichment).
    pub fn add_ssvc(&mut self, entries: impl IntoIterator<Item = (String, Ssvc)>) {
        self.ssvc
            .get_or_insert_with(HashMap::default)
            .extend(entries);
    }

    pub fn kev_loaded(&self) -> bool {
        self.kev.is_some()
    }

    pub fn epss_loaded(&self) -> bool {
        self.epss.is_some()
    }

    pub fn ssvc_loaded(&self) -> bool {
        self.ssvc.is_some()
    }

    pub fn kev(&self, finding: &Finding) -> Lookup<&KevEntry> {
        lookup(&self.kev, finding)
    }

    pub fn epss(&self, finding: &Finding) -> Lookup<EpssScore> {
        match lookup(&self.epss, finding) {
            Lookup::Listed(s) => Lookup::Listed(*s),
            Lookup::NotListed => Lookup::NotListed,
            Lookup::NotLoaded => Lookup::NotLoaded,
        }
    }

    pub fn ssvc(&self, finding: &Finding) -> Lookup<&Ssvc> {
        lookup(&self.ssvc, finding)
    }
}

/// Looks a finding up by its vulnerability id and then its aliases.
fn lookup<'a, T>(map: &'a Option<HashMap<String, T>>, finding: &Finding) -> Lookup<&'a T> {
    let Some(map) = map else {
        return Lookup::NotLoaded;
    };
    let names = std::iter::once(&finding.vulnerability).chain(&finding.aliases);
    Lookup::from_loaded(names.filter_map(|n| map.get(n)).next())
}

impl Index {
    /// Every CVSS rating and vendor rating that the vulnerability's advisories publish, the
    /// package-specific ones of the matching advisories included.
    pub fn ratings(&self, finding: &Finding) -> Ratings {
        let mut out = Ratings::default();
        for a in self.vulnerability_sources(&finding.vulnerability) {
            out.cvss.extend(a.cvss().iter().cloned());
            out.vendor.extend(a.vendor_severity().cloned());
            if finding.advisories.iter().any(|id| id == a.id()) {
                out.cvss.extend(a.package_cvss().iter().cloned());
                out.vendor
                    .extend(a.package_vendor_severity().iter().cloned());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchwarden_core::inventory::Manager;

    fn finding(vuln: &str, aliases: &[&str]) -> Finding {
        Finding {
            vulnerability: vuln.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            advisories: vec![],
            manager: Manager::Dpkg,
            package: "p".into(),
            arch: None,
            source_package: None,
            installed: "1".into(),
            fixed: None,
            ecosystem: "Debian:12".into(),
            available_at: None,
            published_at: None,
            explanation: String::new(),
        }
    }

    #[test]
    fn not_loaded_is_not_the_same_as_not_listed() {
        let mut e = Enrichment::default();
        let f = finding("GHSA-1", &["CVE-2024-1"]);
        assert!(matches!(e.epss(&f), Lookup::NotLoaded));
        e.add_epss([(
            "CVE-2024-2".to_owned(),
            EpssScore {
                epss: 0.5,
                percentile: 0.9,
            },
        )]);
        assert!(matches!(e.epss(&f), Lookup::NotListed));
        e.add_epss([(
            "CVE-2024-1".to_owned(),
            EpssScore {
                epss: 0.1,
                percentile: 0.5,
            },
        )]);
        assert!(matches!(e.epss(&f), Lookup::Listed(s) if s.epss == 0.1));
    }
}
