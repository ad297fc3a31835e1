//! Shared by the policy tests: a finding with its facts built in one line, and the real KEV
//! catalogue and CISA Vulnrichment records from `shared/data`.
//!
//! Every test file uses a different part of this module, so unused parts are expected.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jiff::Timestamp;
use patchwarden_core::advisory::{EpssScore, KevEntry, RansomwareUse, Severity, VendorSeverity};
use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::Manager;
use patchwarden_core::policy::{
    Assessment, AssetLabels, Exploitation, FindingFacts, Lookup, Override, Policy, Ssvc,
    TechnicalImpact, assess, classify, preset, ssvc_from_cve5,
};

pub(crate) fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("kev").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// CVSS 3.1 vectors with the base score in their name. The scores were checked against the
/// CVSS 3.1 specification's equations (FIRST, section 7) independently of the `cvss` crate.
pub(crate) mod v3 {
    pub(crate) const S3_9: &str = "CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:L/A:L";
    pub(crate) const S4_0: &str = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:N/I:N/A:L";
    pub(crate) const S6_9: &str = "CVSS:3.1/AV:N/AC:L/PR:H/UI:R/S:C/C:N/I:L/A:H";
    pub(crate) const S7_0: &str = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:H";
    pub(crate) const S7_5: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H";
    pub(crate) const S8_9: &str = "CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:H/A:H";
    pub(crate) const S9_0: &str = "CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:H/A:H";
    pub(crate) const S9_8: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
}

/// One finding and everything known about it, owned, so that a test builds it in a line and
/// borrows [`FindingFacts`] from it.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) finding: Finding,
    pub(crate) asset: AssetLabels,
    pub(crate) host: Option<String>,
    pub(crate) kev: Lookup<KevEntry>,
    pub(crate) epss: Lookup<EpssScore>,
    pub(crate) ssvc: Lookup<Ssvc>,
    pub(crate) cvss: Vec<Severity>,
    pub(crate) vendor: Vec<VendorSeverity>,
    pub(crate) detected_at: Option<Timestamp>,
    pub(crate) evaluated_at: Option<Timestamp>,
    pub(crate) manual_override: Option<Override>,
}

/// When the default case's fix was published.
pub(crate) const AVAILABLE: &str = "2025-03-03T12:00:00Z";
/// When the default case was first detected.
pub(crate) const DETECTED: &str = "2025-03-10T08:00:00Z";
/// The default `now`.
pub(crate) const NOW: &str = "2025-03-12T00:00:00Z";

impl Case {
    /// An openssl finding on a Debian 12 host with a fix published at [`AVAILABLE`], detected
    /// at [`DETECTED`], with the KEV catalogue, EPSS and SSVC loaded and not listing it.
    pub(crate) fn new(cve: &str) -> Case {
        Case {
            finding: Finding {
                vulnerability: cve.to_owned(),
                aliases: Vec::new(),
                advisories: vec!["DSA-5900-1".to_owned()],
                manager: Manager::Dpkg,
                package: "libssl3".to_owned(),
                arch: Some("amd64".to_owned()),
                source_package: Some("openssl".to_owned()),
                installed: "3.0.15-1~deb12u1".to_owned(),
                fixed: Some("3.0.16-1~deb12u1".to_owned()),
                ecosystem: "Debian:12".to_owned(),
                available_at: Some(ts(AVAILABLE)),
                published_at: Some(ts("2025-02-11T00:00:00Z")),
                explanation: "test finding".to_owned(),
            },
            asset: AssetLabels::default(),
            host: Some("host-1".to_owned()),
            kev: Lookup::NotListed,
            epss: Lookup::NotListed,
            ssvc: Lookup::NotListed,
            cvss: Vec::new(),
            vendor: Vec::new(),
            detected_at: Some(ts(DETECTED)),
            evaluated_at: None,
            manual_override: None,
        }
    }

    pub(crate) fn cvss(mut self, vector: &str) -> Case {
        let s = Severity::cvss(vector, None);
        assert!(s.error.is_none(), "{vector}: {:?}", s.error);
        self.cvss.push(s);
        self
    }

    /// A Red Hat style vendor rating (Critical, Important, Moderate, Low).
    pub(crate) fn vendor(mut self, text: &str) -> Case {
        self.vendor.push(VendorSeverity::red_hat("Red Hat", text));
        self
    }

    pub(crate) fn labels(mut self, labels: &str) -> Case {
        self.asset = labels.parse().unwrap_or_else(|e| panic!("{labels}: {e}"));
        self
    }

    /// Listed in KEV with these dates.
    pub(crate) fn kev(mut self, date_added: &str, due_date: &str) -> Case {
        self.kev = Lookup::Listed(KevEntry {
            cve: self.finding.vulnerability.clone(),
            vendor_project: "test".into(),
            product: "test".into(),
            vulnerability_name: "test".into(),
            date_added: date_added.parse().unwrap_or_else(|e| panic!("{e}")),
            due_date: due_date.parse().unwrap_or_else(|e| panic!("{e}")),
            known_ransomware_use: RansomwareUse::Unknown,
            short_description: String::new(),
            required_action: String::new(),
            notes: String::new(),
            cwes: Vec::new(),
        });
        self
    }

    /// Listed in KEV as the real catalogue lists it.
    pub(crate) fn real_kev(mut self) -> Case {
        let entry = kev_catalogue()
            .get(&self.finding.vulnerability)
            .unwrap_or_else(|| panic!("{} is not in the KEV catalogue", self.finding.vulnerability))
            .clone();
        self.kev = Lookup::Listed(entry);
        self
    }

    pub(crate) fn ssvc(
        mut self,
        exploitation: Exploitation,
        automatable: bool,
        ti: TechnicalImpact,
    ) -> Case {
        self.ssvc = Lookup::Listed(Ssvc {
            exploitation,
            automatable,
            technical_impact: ti,
            version: Some("2.0.3".into()),
            timestamp: None,
        });
        self
    }

    pub(crate) fn epss(mut self, epss: f64, percentile: f64) -> Case {
        self.epss = Lookup::Listed(EpssScore { epss, percentile });
        self
    }

    pub(crate) fn no_fix(mut self) -> Case {
        self.finding.fixed = None;
        self.finding.available_at = None;
        self
    }

    pub(crate) fn facts(&self) -> FindingFacts<'_> {
        let mut f = FindingFacts::new(&self.finding, &self.asset);
        f.host = self.host.as_deref();
        f.kev = match &self.kev {
            Lookup::NotLoaded => Lookup::NotLoaded,
            Lookup::NotListed => Lookup::NotListed,
            Lookup::Listed(k) => Lookup::Listed(k),
        };
        f.epss = self.epss;
        f.ssvc = match &self.ssvc {
            Lookup::NotLoaded => Lookup::NotLoaded,
            Lookup::NotListed => Lookup::NotListed,
            Lookup::Listed(s) => Lookup::Listed(s),
        };
        f.cvss = &self.cvss;
        f.vendor_severity = &self.vendor;
        f.detected_at = self.detected_at;
        f.evaluated_at = self.evaluated_at;
        f.manual_override = self.manual_override.as_ref();
        f
    }

    /// Assessed under the named presets at [`NOW`].
    pub(crate) fn under(&self, presets: &[&str]) -> Assessment {
        self.under_at(presets, NOW)
    }

    /// Every case assessed here is also classified, and the two must agree on the decision:
    /// `classify` is what the server runs on every finding of every host, so each table of
    /// the policy suites checks it too.
    pub(crate) fn under_at(&self, presets: &[&str], now: &str) -> Assessment {
        let policies: Vec<Policy> = presets.iter().map(|p| load(p)).collect();
        self.assessed(&policies, now)
    }

    /// Assessed under `policies` at `now`, and classified: see [`Case::under_at`].
    pub(crate) fn assessed(&self, policies: &[Policy], now: &str) -> Assessment {
        let full = assess(policies, &self.facts(), ts(now));
        let lean = classify(policies, &self.facts(), ts(now));
        let ids: Vec<&str> = policies.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            (
                lean.class,
                &lean.class_set_by,
                lean.due_at,
                &lean.due_set_by
            ),
            (
                full.class,
                &full.class_set_by,
                full.due_at,
                &full.due_set_by
            ),
            "classify and assess disagree on {} under {ids:?}",
            self.finding.vulnerability
        );
        assert!(
            lean.notes.is_empty()
                && lean.missing.is_empty()
                && lean.milestones.is_empty()
                && lean.verdicts.is_empty(),
            "classify words an explanation: {lean:?}"
        );
        full
    }
}

pub(crate) fn load(name: &str) -> Policy {
    preset(name)
        .unwrap_or_else(|| panic!("no preset {name}"))
        .policy()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The class, due date and the rule that set each, in one line, for table rows.
pub(crate) fn outcome(a: &Assessment) -> String {
    let class = a.class.map_or("-".to_owned(), |c| c.to_string());
    let due = a.due_at.map_or("-".to_owned(), |d| d.to_string());
    let by = |d: &Option<patchwarden_core::policy::Decision>| {
        d.as_ref().map_or("-".to_owned(), |d| d.label())
    };
    format!(
        "{class} by {} | due {due} by {}",
        by(&a.class_set_by),
        by(&a.due_set_by)
    )
}

/// The real KEV catalogue (2025.08.25), keyed by CVE.
pub(crate) fn kev_catalogue() -> &'static BTreeMap<String, KevEntry> {
    static KEV: OnceLock<BTreeMap<String, KevEntry>> = OnceLock::new();
    KEV.get_or_init(|| {
        let path = shared_data().join("kev/known_exploited_vulnerabilities.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut out = BTreeMap::new();
        for v in doc["vulnerabilities"].as_array().unwrap() {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            let entry = KevEntry {
                cve: s("cveID"),
                vendor_project: s("vendorProject"),
                product: s("product"),
                vulnerability_name: s("vulnerabilityName"),
                date_added: s("dateAdded").parse().unwrap(),
                due_date: s("dueDate").parse().unwrap(),
                known_ransomware_use: if s("knownRansomwareCampaignUse") == "Known" {
                    RansomwareUse::Known
                } else {
                    RansomwareUse::Unknown
                },
                short_description: s("shortDescription"),
                required_action: s("requiredAction"),
                notes: s("notes"),
                cwes: Vec::new(),
            };
            out.insert(entry.cve.clone(), entry);
        }
        out
    })
}

/// Every record of the Vulnrichment sample, as parsed JSON, keyed by CVE.
pub(crate) fn vulnrichment_records() -> &'static BTreeMap<String, serde_json::Value> {
    static RECORDS: OnceLock<BTreeMap<String, serde_json::Value>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let path = shared_data().join("vulnrichment/vulnrichment-sample.zip");
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut zip = zip::ZipArchive::new(file).unwrap();
        let mut out = BTreeMap::new();
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).unwrap();
            if !entry.name().ends_with(".json") {
                continue;
            }
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            let record: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", entry.name()));
            let cve = record["cveMetadata"]["cveId"].as_str().unwrap().to_owned();
            out.insert(cve, record);
        }
        out
    })
}

/// The SSVC decision of each Vulnrichment record that has one.
pub(crate) fn vulnrichment_ssvc() -> &'static BTreeMap<String, Ssvc> {
    static SSVC: OnceLock<BTreeMap<String, Ssvc>> = OnceLock::new();
    SSVC.get_or_init(|| {
        vulnrichment_records()
            .iter()
            .filter_map(|(cve, r)| {
                ssvc_from_cve5(r)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .map(|s| (cve.clone(), s))
            })
            .collect()
    })
}
