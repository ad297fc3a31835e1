//! What the policy is told about one finding: the finding itself, its enrichment (KEV, EPSS,
//! CVSS, the vendor's severity, SSVC), the asset's labels, and the times of the events a clock
//! can start from.
//!
//! Enrichment distinguishes "not looked up" from "looked up and not there" ([`Lookup`]): a CVE
//! that is absent from a loaded KEV catalogue is known not to be exploited-in-the-wild as far
//! as CISA knows, while a scan without the catalogue cannot say. Rules that depend on what was
//! not looked up stay undecided, and the assessment says so in words.

use std::collections::BTreeSet;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::model::Override;
use super::ssvc::Ssvc;
use super::words::{UnknownWord, word_enum};
use crate::advisory::{EpssScore, KevEntry, Severity, VendorSeverity};
use crate::finding::Finding;

/// The result of looking a vulnerability up in an enrichment source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lookup<T> {
    /// The source was not loaded: nothing is known.
    NotLoaded,
    /// The source was loaded and does not list the vulnerability.
    NotListed,
    /// The source lists it.
    Listed(T),
}

impl<T> Lookup<T> {
    /// A lookup in a loaded source.
    pub fn from_loaded(entry: Option<T>) -> Lookup<T> {
        match entry {
            Some(t) => Lookup::Listed(t),
            None => Lookup::NotListed,
        }
    }

    pub fn listed(&self) -> Option<&T> {
        match self {
            Lookup::Listed(t) => Some(t),
            _ => None,
        }
    }

    pub fn is_loaded(&self) -> bool {
        !matches!(self, Lookup::NotLoaded)
    }
}

word_enum! {
    /// Whether an asset can be reached from the internet.
    #[derive(Default)]
    pub enum Exposure as "exposure" {
        /// Reachable from the internet (BOD 26-04's "publicly exposed").
        Internet = "internet",
        /// Reachable only from internal networks.
        Internal = "internal",
        /// Not labelled. Some frameworks say what to assume (BOD 26-04: exposed).
        #[default]
        Unknown = "unknown",
    }
}

word_enum! {
    /// What an asset is for, in the words frameworks use to set different deadlines.
    pub enum Role as "asset role" {
        /// Runs an online service (Essential Eight: "online services").
        OnlineService = "online_service",
        Workstation = "workstation",
        Server = "server",
        NetworkDevice = "network_device",
        /// Its operating system faces the internet (Essential Eight: "operating systems of
        /// internet-facing servers and internet-facing network devices").
        InternetFacingOs = "internet_facing_os",
    }
}

word_enum! {
    /// How much the organisation depends on an asset.
    pub enum AssetCriticality as "asset criticality" {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

/// The labels of the asset a finding is on. Hosts carry them (set by operators, or on the
/// command line with `--asset-label key=value`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetLabels {
    #[serde(default)]
    pub exposure: Exposure,
    #[serde(default)]
    pub roles: BTreeSet<Role>,
    /// Scope tags such as `pci-cde` (in the cardholder data environment) or `fedramp-boundary`.
    #[serde(default)]
    pub tags: BTreeSet<String>,
    pub criticality: Option<AssetCriticality>,
}

/// A `key=value` asset label that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error(
        "`{0}` is not a label: write key=value with key exposure, role, tag or criticality \
         (as in exposure=internet, role=workstation, tag=pci-cde, criticality=high)"
    )]
    Syntax(String),
    #[error("label `{label}`: {source}")]
    Value {
        label: String,
        #[source]
        source: UnknownWord,
    },
    #[error("label `{0}`: a tag is letters, digits, `-`, `_`, `.` or `:` (at most 64)")]
    Tag(String),
}

impl AssetLabels {
    /// Applies one `key=value` label: `exposure=internet`, `role=workstation` (roles add up),
    /// `tag=pci-cde` (tags add up), `criticality=high`.
    pub fn apply(&mut self, label: &str) -> Result<(), LabelError> {
        let (key, value) = label
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| LabelError::Syntax(label.to_owned()))?;
        let word = |e| LabelError::Value {
            label: label.to_owned(),
            source: e,
        };
        match key {
            "exposure" => self.exposure = value.parse().map_err(word)?,
            "role" => {
                self.roles.insert(value.parse().map_err(word)?);
            }
            "criticality" => self.criticality = Some(value.parse().map_err(word)?),
            "tag" => {
                if !is_tag(value) {
                    return Err(LabelError::Tag(label.to_owned()));
                }
                self.tags.insert(value.to_owned());
            }
            _ => return Err(LabelError::Syntax(label.to_owned())),
        }
        Ok(())
    }
}

impl FromStr for AssetLabels {
    type Err = LabelError;

    /// Comma-separated labels: `exposure=internet,role=server,tag=pci-cde`.
    fn from_str(s: &str) -> Result<AssetLabels, LabelError> {
        let mut labels = AssetLabels::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            labels.apply(part)?;
        }
        Ok(labels)
    }
}

/// Whether a scope tag is spelt as tags may be.
pub(crate) fn is_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Everything [`super::assess`] needs to know about one finding.
///
/// Build it with [`FindingFacts::new`] and set what is known; everything else starts as not
/// known.
#[derive(Debug, Clone, Copy)]
pub struct FindingFacts<'a> {
    pub finding: &'a Finding,
    /// The host's name, for overrides that name a host.
    pub host: Option<&'a str>,
    pub asset: &'a AssetLabels,
    /// The vulnerability's entry in CISA's KEV catalogue.
    pub kev: Lookup<&'a KevEntry>,
    pub epss: Lookup<EpssScore>,
    /// CISA's SSVC decision points (Vulnrichment).
    pub ssvc: Lookup<&'a Ssvc>,
    /// Every CVSS rating known for the vulnerability (from its advisories and its CVE record).
    /// Conditions on "the" CVSS score take the best one: the highest CVSS version present,
    /// and within it the highest score (several sources may score one version differently;
    /// the higher is the cautious reading).
    pub cvss: &'a [Severity],
    /// The vendors' own ratings (Red Hat's impact, Debian's urgency …). Conditions take the
    /// highest known level, for the same reason.
    pub vendor_severity: &'a [VendorSeverity],
    /// When this finding was first seen on this host.
    pub detected_at: Option<Timestamp>,
    /// When a person evaluated (triaged) it. When absent, an `evaluated` clock starts at the
    /// `now` of the assessment, which is the evaluation happening.
    pub evaluated_at: Option<Timestamp>,
    /// An operator's decision about this finding, which takes precedence over every rule.
    pub manual_override: Option<&'a Override>,
}

impl<'a> FindingFacts<'a> {
    /// Facts with nothing but the finding and the asset's labels known.
    pub fn new(finding: &'a Finding, asset: &'a AssetLabels) -> FindingFacts<'a> {
        FindingFacts {
            finding,
            host: None,
            asset,
            kev: Lookup::NotLoaded,
            epss: Lookup::NotLoaded,
            ssvc: Lookup::NotLoaded,
            cvss: &[],
            vendor_severity: &[],
            detected_at: None,
            evaluated_at: None,
            manual_override: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_apply_and_refuse_unknown_words() {
        let labels: AssetLabels = "exposure=internet, role=server, role=online_service, \
                                   tag=pci-cde, criticality=high"
            .parse()
            .unwrap();
        assert_eq!(labels.exposure, Exposure::Internet);
        assert_eq!(labels.roles.len(), 2);
        assert!(labels.tags.contains("pci-cde"));
        assert_eq!(labels.criticality, Some(AssetCriticality::High));

        let err = "role=webserver".parse::<AssetLabels>().unwrap_err();
        assert!(
            err.to_string().contains("online_service, workstation"),
            "{err}"
        );
        assert!("exposure".parse::<AssetLabels>().is_err());
        assert!("colour=red".parse::<AssetLabels>().is_err());
        assert!("tag=".parse::<AssetLabels>().is_err());
        assert!("tag=a b".parse::<AssetLabels>().is_err());
    }
}
